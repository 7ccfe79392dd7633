"""Database fixtures: one template migrated per session, a fresh copy per test.

The server is chosen in this order:
- PGHOST is set: the tests use that server through postgresql_noproc, with
  PGPORT, PGUSER and PGPASSWORD as libpq reads them, but PGUSER defaults to
  postgres.
- running as a non-root user: pytest-postgresql starts a private cluster with
  the newest pg_ctl under /usr/lib/postgresql, else the one on PATH.
  BUILDQ_PG_CTL overrides the choice.
- running as root with no PGHOST: PostgreSQL does not run as root, so the
  tests use 127.0.0.1:5432 as user postgres.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories

from buildq.migrate import migrate

REQUIRE_EXTENSIONS_ENV = "BUILDQ_REQUIRE_EXTENSIONS"

# A name per pytest process, so that two test runs on one server never share
# a template or test database.
_DBNAME = f"buildq_test_{os.getpid()}"


def _conninfo(host: str, port: int | str, user: str, dbname: str, password: str | None) -> str:
    params: dict[str, Any] = {"host": host, "port": port, "user": user, "dbname": dbname}
    if password:
        params["password"] = password
    return make_conninfo(**params)


_STALE_NAME = re.compile(r"^buildq_test_(\d+)(_tmpl|_extra_\d+)?$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_databases(host: str, port: int | str, user: str, password: str | None) -> None:
    """Drop the test databases of pytest processes on this machine that died.

    A run killed before its teardown leaves its template behind, and nothing else
    would ever remove it. Only a server on this machine is cleaned, because only
    there does the process id in a database name identify a run.
    """
    if not (host.startswith("/") or host in {"127.0.0.1", "localhost", "::1"}):
        return
    with psycopg.connect(_conninfo(host, port, user, "postgres", password), autocommit=True) as admin:
        names = [row[0] for row in admin.execute("select datname from pg_database where datname like 'buildq_test_%'")]
        for name in names:
            match = _STALE_NAME.match(name)
            if match is None or _process_alive(int(match.group(1))):
                continue
            identifier = sql.Identifier(name)
            admin.execute(sql.SQL("alter database {} is_template false").format(identifier))
            admin.execute(sql.SQL("drop database {} with (force)").format(identifier))


def load_schema(host: str, port: int | str, user: str, dbname: str, password: str | None, **_: Any) -> None:
    """Build the template database with the real migrator."""
    drop_stale_databases(host, port, user, password)
    migrate(_conninfo(host, port, user, dbname, password))


def _find_pg_ctl() -> str:
    configured = os.environ.get("BUILDQ_PG_CTL")
    if configured:
        return configured
    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versioned:
        return versioned[-1]
    return shutil.which("pg_ctl") or "pg_ctl"


def _use_existing_server() -> bool:
    return bool(os.environ.get("PGHOST")) or os.geteuid() == 0


if _use_existing_server():
    postgresql_server = factories.postgresql_noproc(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD"),
        dbname=_DBNAME,
        load=[load_schema],
    )
else:
    postgresql_server = factories.postgresql_proc(
        executable=_find_pg_ctl(),
        dbname=_DBNAME,
        load=[load_schema],
    )

postgresql = factories.postgresql("postgresql_server")


@dataclass(frozen=True)
class Database:
    """Fresh test database, with its connection string and a way to connect."""

    dsn: str

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """Open an autocommit connection, as psql and the daemon use."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)


@pytest.fixture
def db(postgresql: psycopg.Connection) -> Database:
    """A fresh copy of the migrated template for this test."""
    info = postgresql.info
    return Database(
        dsn=_conninfo(info.host, info.port, info.user, info.dbname, info.password or None)
    )


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test database."""
    with db.connect() as connection:
        yield connection


def require_extension(connection: psycopg.Connection, name: str) -> None:
    """Create an extension, or skip the test when the server lacks it.

    With BUILDQ_REQUIRE_EXTENSIONS=1 (as in .ci/run) a missing extension fails
    the test instead, so CI cannot pass by skipping.
    """
    available = connection.execute(
        "select 1 from pg_available_extensions where name = %s", (name,)
    ).fetchone()
    if available is None:
        message = f"PostgreSQL extension {name} is not installed on the server"
        if os.environ.get(REQUIRE_EXTENSIONS_ENV) == "1":
            pytest.fail(f"{message}. Install it (Debian: postgresql-15-{name.replace('_', '-')}).")
        pytest.skip(message)
    connection.execute(sql.SQL("create extension if not exists {}").format(sql.Identifier(name)))
