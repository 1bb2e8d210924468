"""Say plainly which service the test suite cannot reach, before pytest starts."""

import os
import sys
from urllib.parse import urlparse

import psycopg
import redis


def main() -> int:
    problems = []
    database_url = os.environ["DATABASE_URL"]
    try:
        parsed = urlparse(database_url)
        with psycopg.connect(
            host=parsed.hostname,
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            dbname="postgres",
            connect_timeout=3,
        ):
            pass
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL is unreachable at {database_url}: {str(exc).strip()}")
    redis_url = os.environ["REDIS_URL"]
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis is unreachable at {redis_url}: {exc}")
    for problem in problems:
        print(f"make test: {problem}", file=sys.stderr)
    if problems:
        print(
            "make test: start the missing service (bash .ci/run does it for you) "
            "or point TEST_DATABASE_URL / TEST_REDIS_URL elsewhere.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
