"""The client reads text as str even from a database whose encoding is SQL_ASCII."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from buildq.client import BuildqClient
from buildq.migrate import migrate


@pytest.fixture
def sql_ascii_dsn(db: Any) -> Iterator[str]:
    """A migrated database created with encoding SQL_ASCII, as initdb makes under the POSIX locale."""
    params = conninfo_to_dict(db.dsn)
    name = f"buildq_test_{os.getpid()}_extra_sql_ascii"
    identifier = sql.Identifier(name)
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {}").format(identifier))
        admin.execute(
            sql.SQL(
                "create database {} template template0 encoding 'SQL_ASCII' locale 'C'"
            ).format(identifier)
        )
    dsn = make_conninfo(**{**params, "dbname": name})
    try:
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(identifier))


def test_sql_ascii_database_returns_str(sql_ascii_dsn: str) -> None:
    with BuildqClient(conninfo=sql_ascii_dsn, max_size=1) as client:
        client.queue_build(job="hello", system="x86_64-linux", drv_path="/store/a-hello.recipe")
        summary = client.list_builds(limit=10)[0]

    assert summary.job == "hello"
    assert summary.status_name == "queued"
