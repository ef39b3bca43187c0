"""Shared fixtures: a SQLite file per test, and a real PostgreSQL server.

PostgreSQL: TEST_DATABASE_URL if set; otherwise the tests start a throwaway server of their own from the
installed PostgreSQL binaries (on loopback, in a temporary folder). With REQUIRE_POSTGRES=1 (as in CI) a
missing server fails the run instead of skipping.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll `cond` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _ThrowawayPostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.port = free_port()
        self.proc_user: list[str] = []
        bindir = self._bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) found")
        self.bindir = bindir
        if os.geteuid() == 0:  # initdb refuses root; run it as the postgres user
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root and runuser is missing")
            self.proc_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        try:
            self._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
                       "-E", "UTF8"])
            self.start()
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server (again, after halt(): same data, same port); returns once it accepts connections."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                   "-t", "30", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                   "start"])

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data (pg_ctl stop -m fast|immediate); returns once it is down."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "-t", "30", "stop"])

    @staticmethod
    def _bindir() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if found:
            return found[-1].parent
        w = shutil.which("initdb")
        return Path(w).parent if w else None

    def _run(self, cmd: list[str]) -> None:
        subprocess.run(self.proc_user + cmd, check=True, capture_output=True, cwd=self.dir)

    def stop(self) -> None:
        """Stop the server if it runs, and delete it."""
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _no_postgres(reason: str) -> None:
    """Skip, or fail with REQUIRE_POSTGRES=1 (CI)."""
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(reason.replace("skipped", "required (REQUIRE_POSTGRES=1) but unavailable"))
    pytest.skip(reason)


@pytest.fixture
def private_pg():
    """A PostgreSQL server of this test's own (never TEST_DATABASE_URL's shared one), which the test may stop
    and start again (halt()/start()); deleted afterwards."""
    try:
        server = _ThrowawayPostgres()
    except Exception as e:  # noqa: BLE001 - reported as the skip reason
        _no_postgres(f"PostgreSQL tests skipped: no private server could be started ({e})")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a PostgreSQL server whose user may create databases, or skip (fail in CI)."""
    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not url:
        try:
            server = _ThrowawayPostgres()
            url = server.url
        except Exception as e:  # noqa: BLE001 - reported as the skip reason
            _no_postgres(f"PostgreSQL tests skipped: no TEST_DATABASE_URL and no server could be started ({e})")
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def pg_url(pg_server_url):
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(pg_server_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    import db
    db.dispose_engines()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Run a test against both databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
    else:
        yield request.getfixturevalue("pg_url")
