"""docs/errors.md lists every SQLSTATE the functions raise, with the Python exception it maps to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from buildq import errors
from buildq.errors import DatabaseError, map_database_error

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "db" / "functions"
ERRORS_DOC = ROOT / "docs" / "errors.md"

# A row of the first table in docs/errors.md: | `CODE` | condition | raised by | `Class` |
DOC_ROW = re.compile(r"^\| `(?P<code>[0-9A-Z]{5})` \|.*\| `(?P<exception>\w+)` \|$")
ERRCODE = re.compile(r"errcode = '(?P<errcode>[^']+)'")


@pytest.fixture
def server_conn(postgresql_server) -> Iterator[psycopg.Connection]:
    """Autocommit connection to the server's maintenance database, since raising needs no schema."""
    with psycopg.connect(
        host=postgresql_server.host,
        port=postgresql_server.port,
        user=postgresql_server.user,
        password=postgresql_server.password,
        dbname=postgresql_server.maintenance_dbname,
        autocommit=True,
    ) as connection:
        yield connection


def raised_errcodes() -> set[str]:
    """Return the value of every `errcode = '...'` in db/functions: a SQLSTATE or a condition name."""
    return {
        match.group("errcode")
        for path in FUNCTIONS_DIR.glob("*.sql")
        for match in ERRCODE.finditer(path.read_text())
    }


def documented_exceptions() -> dict[str, str]:
    """Return SQLSTATE -> Python exception name from the first table of docs/errors.md."""
    first_table = ERRORS_DOC.read_text().split("\n## ")[0]
    return {
        match.group("code"): match.group("exception")
        for match in map(DOC_ROW.match, first_table.splitlines())
        if match
    }


def raise_errcode(conn: psycopg.Connection, errcode: str) -> psycopg.Error:
    """Raise an exception with this errcode in PL/pgSQL and return what psycopg raised.

    The server resolves condition names, because a name can stand for two
    SQLSTATEs (null_value_not_allowed is 22004 and 39004) and PL/pgSQL picks one.
    """
    block = sql.SQL("do $$ begin raise exception 'probe' using errcode = {}; end $$").format(
        sql.Literal(errcode)
    )
    with pytest.raises(psycopg.Error) as excinfo:
        conn.execute(block)
    return excinfo.value


def test_functions_raise_known_codes():
    expected = {"BQ001", "BQ002", "BQ003", "BQ004", "null_value_not_allowed", "invalid_parameter_value"}

    assert expected <= raised_errcodes()


def test_documented_exceptions_exist():
    documented = documented_exceptions()

    assert [name for name in documented.values() if name not in errors.__all__] == []


def test_raised_codes_documented_and_mapped(server_conn, subtests):
    documented = documented_exceptions()

    for errcode in sorted(raised_errcodes()):
        with subtests.test(errcode):
            error = raise_errcode(server_conn, errcode)
            mapped = map_database_error(error)

            assert error.sqlstate in documented
            assert type(mapped).__name__ == documented[error.sqlstate]
            assert mapped.sqlstate == error.sqlstate
            if error.sqlstate.startswith("BQ"):
                assert type(mapped) is not DatabaseError
