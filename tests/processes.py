"""Real processes for tests, on loopback: Celery workers, the app server, Redis servers, an SMTP peer.

A test that uses them is `django_db(transaction=True)` (STACK.md pitfall 1): the processes see only
what the test has committed, in this test process's own PostgreSQL test database. Workers and
servers run `tests.served_settings` (the test settings with tasks sent through the broker and email
over SMTP, to the peers this module starts), or `config.settings.test` on the shared Redis.

Waits poll until a condition holds or DEADLINE passes (then the test fails with the process's
log): they bound how long a broken run hangs, and are never what a test asserts.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.celery import app

DEADLINE = 60  # seconds: generous, these are waits, not timed assertions
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once


def wait_for(condition: Callable[[], Any], what: str, *logs: Path) -> Any:
    """Poll `condition` until it is truthy and return its value; fail with `what` and the logs' tails after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "".join(
                f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}" for log in logs if log.exists()
            )
            pytest.fail(f"{what} within {DEADLINE} s{tails}")
        time.sleep(0.05)


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice from its ephemeral range)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """This test process's PostgreSQL test database, for the processes it starts."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER'] or 'postgres'}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def _process_env(settings_module: str, extra: dict[str, str] | None) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url(),
        "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "gw0"),
        "TEST_REDIS_DB_BASE": os.environ.get("TEST_REDIS_DB_BASE", "1"),  # or the process uses another db
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # config/settings/test.py rewrites the db number
        **(extra or {}),
    }


def _spawn(args: list[str], *, log: Path, settings_module: str, env: dict[str, str] | None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=django_settings.BASE_DIR,
            env=_process_env(settings_module, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_worker(
    log: Path,
    *,
    queues: tuple[str, ...] = ("ingest",),
    settings_module: str = "config.settings.test",
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """A real `celery worker` process (solo pool) consuming `queues`, on this test's database."""
    args = ["-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues), "--pool", "solo", "--concurrency", "1"]
    return _spawn([*args, "-l", "INFO", "-n", f"test-{log.stem}@%h"], log=log, settings_module=settings_module, env=env)


def start_app_server(log: Path, *, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """The app under `manage.py runserver` (threaded, no reloader) on a free port; returns it and its base URL.

    It runs `tests.served_settings`: tasks are published to the broker, never run inline.
    """
    port = free_port()
    server = _spawn(
        ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        log=log,
        settings_module="tests.served_settings",
        env={"DJANGO_MEDIA_ROOT": str(log.parent / "media"), **(env or {})},  # readiness writes a file there
    )
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if server.poll() is not None:
            pytest.fail(f"the app server exited\n{log.read_text(errors='replace')[-4000:]}")
        try:
            return http("GET", f"{base_url}/health/")[0] == 200
        except OSError:  # refused: not listening yet
            return False

    wait_for(answers, "the app server did not start", log)
    return server, base_url


def http(method: str, url: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
    """One JSON request to a served process (urllib: its real HTTP client, no test client); (status, JSON body)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM (a worker's warm shutdown), then SIGKILL if it does not end."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


# --- Redis ----------------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of the test's own on a free port, stopped and started again to make an outage.

    Nothing is persisted: a restarted server is empty, as a Redis without persistence is after a crash.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            return client.ping()
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*args, "--dir", str(self.log.parent)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(self.ping, f"redis-server did not start on port {self.port}", self.log)

    def stop(self) -> None:
        stop(self.process)
        self.process = None
        assert not self.ping(), "redis-server still answers"


# --- The broker as this process sees it -----------------------------------------------------------


def purge(*queues: str) -> None:
    with app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)  # acks_late leaves messages from aborted runs


def queue_length(queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


def forget_unacked() -> None:
    """A SIGKILLed worker leaves its message in Redis's unacked set; with the one-hour visibility
    timeout a worker of a later run would restore it. Nothing of this process runs a worker now."""
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("unacked", "unacked_index")


def _detach_pools() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point this process's Celery app at another broker (a test's own Redis, or a closed port).

    The app's cached connection and producer pools are detached so the next publish connects anew
    to `url`; on the way out the URLs are restored and the pools detached again, so the app goes
    back to its own broker's pools (kombu's registry keeps them, keyed by URL).
    """
    previous = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = url
    _detach_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url = previous
        _detach_pools()


def broker_unreachable() -> Any:
    """Simulate "the broker stopped" for this process only: publishing is refused at once."""
    return broker_at(CLOSED_PORT_REDIS)


class Records(logging.Handler):
    """Keeps the log records it is handed, for a test to read."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --- SMTP -----------------------------------------------------------------------------------------


class _Collect:
    def __init__(self, messages: list[tuple[list[str], str]]) -> None:
        self.messages = messages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode(errors="replace")))
        return "250 OK"


@contextmanager
def smtp_peer() -> Iterator[tuple[int, list[tuple[list[str], str]]]]:
    """A real SMTP server (aiosmtpd) on a free port; yields the port and the list every delivered
    message is appended to, as (recipients, raw message)."""
    messages: list[tuple[list[str], str]] = []
    controller = Controller(_Collect(messages), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, messages
    finally:
        controller.stop()
