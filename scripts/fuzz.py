"""Schema-driven fuzzing of the running service: `make fuzz`.

Builds a throwaway PostgreSQL database, migrates it, seeds the demo, serves the app with gunicorn on
loopback (throttles and lockout relaxed, so the run measures input handling rather than rate limits),
then runs schemathesis over every operation of `/api/schema/` once per identity:

    anonymous   no credentials (login, register, reset and every refusal path)
    patient     a demo patient with readings, targets, alerts, devices
    clinician   a clinician holding that patient's consent
    staff       the demo staff user
    device      a device API key (ingest, heartbeat)
    enders      a throwaway patient, for the operations that end its own sessions (logout, change-password)

Each identity prints one summary line; the last line is `fuzz: ... N server errors[, M schema violations]`.
Exit status is non-zero when any response was a 5xx (or, with --conformance, broke the documented schema).
Failing cases are kept in the report directory (JUnit, and a pytest file reproducing them).

    .venv/bin/python scripts/fuzz.py [--examples 10] [--conformance] [--keep] [--report-dir .local/fuzz]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse
from xml.etree import ElementTree

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEMO_PASSWORD = "OpenVitals-demo-2026"  # accounts/management/commands/seed_demo.py
PATIENT = "alice@openvitals.local"  # has readings, a device and grants to clinicians
CLINICIAN = "dr.chen@openvitals.local"  # holds Alice's consent
STAFF = "admin@openvitals.local"

# Operations that end the caller's own sessions or change its credentials: fuzzed by "enders" only, so
# the other identities keep their tokens for the whole run.
SESSION_ENDERS = r"/auth/(logout|change-password)/$"
DEVICE_PATHS = r"/iot-devices/(ingest|heartbeat)/"


def log(message: str) -> None:
    print(f"fuzz: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin_connection(database_url: str) -> psycopg.Connection:
    url = urlparse(database_url)
    return psycopg.connect(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


def request(base: str, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def login(base: str, email: str, password: str = DEMO_PASSWORD) -> str:
    return request(base, "POST", "/api/v1/auth/login/", {"email": email, "password": password})["tokens"]["access"]


def wait_until_serving(base: str, server: subprocess.Popen, server_log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"{base}/health/", timeout=2)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    sys.stderr.write(server_log.read_text(errors="replace")[-4000:])
    raise SystemExit("fuzz: the app server did not start")


def schemathesis(
    base: str,
    identity: str,
    args: argparse.Namespace,
    report_dir: Path,
    headers: list[str],
    include: str = "",
    exclude: str = "",
) -> dict:
    """One schemathesis run; answers its counts from its JUnit report."""
    checks = ["not_a_server_error"]
    if args.conformance:
        checks += ["response_schema_conformance", "content_type_conformance", "status_code_conformance"]
    command = [
        str(VENV_BIN / "schemathesis"),
        "run",
        f"{base}/api/schema/",
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(args.examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--no-shrink",
        "--continue-on-failure",
        "--warnings",
        "off",
        "--report",
        "junit,pytest",
        "--report-junit-path",
        str(report_dir / f"{identity}.xml"),
        "--report-pytest-path",
        str(report_dir / f"{identity}_repro.py"),
    ]
    for header in headers:
        command += ["--header", header]
    if include:
        command += ["--include-path-regex", include]
    if exclude:
        command += ["--exclude-path-regex", exclude]
    output = report_dir / f"{identity}.log"
    started = time.monotonic()
    with output.open("w") as sink:
        subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    return {
        "identity": identity,
        "seconds": time.monotonic() - started,
        **count_failures(report_dir / f"{identity}.xml", output),
        "log": output,
    }


SERVER_ERRORS = {"ST101", "ST102"}
TOOL_ERRORS = {"Runtime Error"}  # schemathesis' title for its own exceptions (engine/errors.py)
SCHEMA_VIOLATIONS = {"ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110", "ST111"}


def count_failures(junit: Path, log_file: Path) -> dict:
    """Operations, cases and failures by kind from schemathesis' JUnit report and its output."""
    counts = {
        "operations": 0,
        "cases": 0,
        "server_errors": 0,
        "schema_violations": 0,
        "other_failures": 0,
        "tool_errors": 0,
    }
    failing: list[tuple[str, str]] = []
    if not junit.exists():
        return counts
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        counts["operations"] += 1
        for failure in case.iter("failure"):
            codes = set(re.findall(r"^- (ST\d{3}) ", failure.text or "", flags=re.MULTILINE)) or {
                failure.get("message")
            }
            for code in sorted(codes):
                failing.append((case.get("name", ""), code))
                if code in SERVER_ERRORS:
                    counts["server_errors"] += 1
                elif code in SCHEMA_VIOLATIONS:
                    counts["schema_violations"] += 1
                else:
                    counts["other_failures"] += 1
        for error in case.iter("error"):
            title = (error.text or error.get("message") or "error").strip().splitlines()[0]
            if title in TOOL_ERRORS:  # schemathesis itself failed to make a case (CPython 3.11's AST check, say)
                counts["tool_errors"] += 1
            else:  # the server dropped or timed out a request, or the document is unusable: a failure
                failing.append((case.get("name", ""), title))
                counts["other_failures"] += 1
    generated = re.search(r"^\s*(\d+) generated", log_file.read_text(errors="replace"), flags=re.MULTILINE)
    counts["cases"] = int(generated.group(1)) if generated else 0
    counts["failing"] = failing
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", 10)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 20261203)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--conformance", action="store_true", default=os.environ.get("FUZZ_CONFORMANCE") == "1")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--report-dir", type=Path, default=ROOT / ".local" / "fuzz")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/openvitals")
    db_name = f"openvitals_fuzz_{uuid.uuid4().hex[:8]}"
    database_url = base_url.rsplit("/", 1)[0] + f"/{db_name}"
    report_dir = args.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    for old in report_dir.iterdir():
        old.unlink()

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "TEST_REDIS_DB_BASE": os.environ.get("FUZZ_REDIS_DB", "14"),
        "PYTEST_XDIST_WORKER": "gw0",
        "THROTTLE_AUTH_IP_RATE": "1000000/min",
        "THROTTLE_AUTH_ACCOUNT_RATE": "1000000/min",
        "AXES_FAILURE_LIMIT": "1000000",
        "JWT_ACCESS_MINUTES": "240",
        "LOG_LEVEL": "WARNING",
    }
    with admin_connection(base_url) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    server = None
    try:
        log(f"database {db_name}: migrating and seeding the demo")
        manage = [str(VENV_BIN / "python"), "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [*manage, "shell", "-c", "from django.core.cache import cache; cache.clear()"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server_log = report_dir / "server.log"
        server = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "60",
                # gunicorn's own 414 (an HTML page) for a request line over 4,094 bytes is the front server's
                # limit, not the API's answer: unlimited here, so the app answers every generated URL.
                "--limit-request-line",
                "0",
                "--access-logfile",
                "-",
            ],
            cwd=ROOT,
            env=env,
            stdout=server_log.open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_until_serving(base, server, server_log)
        log(f"serving on {base}; {args.examples} examples per operation and phase, seed {args.seed}")

        patient = login(base, PATIENT)
        clinician = login(base, CLINICIAN)
        staff = login(base, STAFF)
        device = request(
            base,
            "POST",
            "/api/v1/iot-devices/",
            {"name": "Fuzz cuff", "device_type": "blood_pressure_monitor"},
            patient,
        )
        ender_email = f"fuzz-{uuid.uuid4().hex[:8]}@example.org"
        ender_password = "Fuzz-sessions-2026!"
        ender = request(
            base,
            "POST",
            "/api/v1/auth/register/",
            {
                "email": ender_email,
                "password": ender_password,
                "password_confirm": ender_password,
                "first_name": "Fuzz",
                "last_name": "Enders",
            },
        )["tokens"]["access"]

        runs = [
            ("anonymous", [], "", ""),
            ("patient", [f"Authorization: Bearer {patient}"], "", SESSION_ENDERS),
            ("clinician", [f"Authorization: Bearer {clinician}"], "", SESSION_ENDERS),
            ("staff", [f"Authorization: Bearer {staff}"], "", SESSION_ENDERS),
            ("device", [f"Authorization: Api-Key {device['api_key']}"], DEVICE_PATHS, ""),
            ("enders", [f"Authorization: Bearer {ender}"], SESSION_ENDERS, ""),
        ]
        results = []
        for identity, headers, include, exclude in runs:
            result = schemathesis(base, identity, args, report_dir, headers, include, exclude)
            results.append(result)
            line = (
                f"{identity:<10} {result['operations']:>3} operations {result['cases']:>6} cases "
                f"{result['server_errors']} server errors"
            )
            if args.conformance:
                line += f", {result['schema_violations']} schema violations"
            if result["tool_errors"]:
                line += f" ({result['tool_errors']} operations schemathesis could not generate for, see its log)"
            log(f"{line} ({result['seconds']:.0f} s)")
            for label, code in result.get("failing", []):
                log(f"    {code} {label}  (see {os.path.relpath(result['log'], ROOT)})")
            if result["operations"] == 0:
                log(f"    schemathesis ran nothing; its output: {result['log']}")
                sys.stdout.write(result["log"].read_text(errors="replace")[-3000:])
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            with admin_connection(base_url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    server_errors = sum(r["server_errors"] for r in results)
    violations = sum(r["schema_violations"] for r in results)
    empty = sum(1 for r in results if r["operations"] == 0)
    total_cases = sum(r["cases"] for r in results)
    summary = f"{total_cases} cases over {len(results)} identities, {server_errors} server errors"
    if args.conformance:
        summary += f", {violations} schema violations"
    log(summary)
    other = sum(r["other_failures"] for r in results)
    if other:
        summary += f", {other} other failures"
    failed = server_errors or empty or other or (args.conformance and violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
