"""Fixtures for the analyzers: a real PostgreSQL server, and a prediction log per back end.

- ``postgres_server`` (session): a PostgreSQL server from Debian's packages, made with
  ``initdb`` in a temporary directory and started with ``pg_ctl`` on a free loopback
  port (as the ``postgres`` user when the tests run as root, since PostgreSQL refuses
  root). Skipped, with the reason, only where the server binaries are not installed.
- ``postgres_url``: a fresh, empty database on that server for one test.
- ``log_target``: parametrised over ``sqlite`` (a file in ``tmp_path``) and ``postgresql``
  (``postgres_url``), so one test function runs against both back ends.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all(os.access(Path(candidate) / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    run_as: dict[str, Any] = {}
    root = tempfile.mkdtemp(prefix="inferwatch-pg-")
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data = Path(root) / "data"
    port = free_port()

    def pg(*args: str) -> None:
        done = subprocess.run(
            [str(bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=root,
            **run_as,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    pg("initdb", "-D", str(data), "-U", "inferwatch", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    try:
        pg("pg_ctl", "-D", str(data), "-o", options, "-l", f"{root}/server.log", "-w", "start")
        yield PostgresServer("127.0.0.1", port, "inferwatch")
    finally:
        try:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


_database_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    import psycopg

    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def log_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a prediction log lives: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "predictions.db")
    url: str = request.getfixturevalue("postgres_url")
    return url
