"""Fail fast, and say how to fix it, when the test suite's PostgreSQL or Redis is unreachable."""

import os
import socket
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from testenv import DEFAULTS  # noqa: E402


def reachable(url: str, default_port: int) -> tuple[bool, str]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return True, f"{host}:{port}"
    except OSError as exc:
        return False, f"{host}:{port} ({exc})"


def main() -> int:
    db = os.environ.get("DATABASE_URL", DEFAULTS["DATABASE_URL"])
    broker = os.environ.get("CELERY_BROKER_URL", DEFAULTS["CELERY_BROKER_URL"])
    ok = True
    if not db.startswith(("postgres://", "postgresql://")):
        print(f"DATABASE_URL must point at PostgreSQL for the tests (got {db!r}); they never fall back to SQLite.")
        ok = False
    else:
        up, where = reachable(db, 5432)
        if not up:
            ok = False
            print(
                f"PostgreSQL is not reachable at {where}.\n"
                "  Start it, e.g.: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
                "  or point DATABASE_URL=postgres://USER@HOST:PORT/DB at a running server."
            )
    up, where = reachable(broker, 6379)
    if not up:
        ok = False
        print(
            f"Redis is not reachable at {where}.\n"
            "  Start it, e.g.: redis-server --daemonize yes --bind 127.0.0.1 --port 6379\n"
            "  or point CELERY_BROKER_URL=redis://HOST:PORT/N at a running server."
        )
    if ok:
        print(f"services ok: PostgreSQL {db.split('@')[-1]}, Redis {broker.split('@')[-1]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
