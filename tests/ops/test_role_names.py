"""Choosing the role names with custom settings when migrating."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from buildq.errors import InvalidArgument
from buildq.migrate import migrate

PREFIX = f"bq_test_{os.getpid()}"
ROLES = {purpose: f"{PREFIX}_{purpose}" for purpose in ("runner", "operator", "reader")}


@pytest.fixture
def custom_dsn(conn: psycopg.Connection, db) -> Iterator[str]:
    """Return the connection string of a new, empty database that sets custom role names.

    The tests migrate it themselves. The database and the three roles are dropped afterwards.
    """
    dbname = f"{PREFIX}_roles"
    conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    params = conninfo_to_dict(db.dsn)
    params["dbname"] = dbname
    settings = " ".join(f"-c buildq.{purpose}_role={name}" for purpose, name in ROLES.items())
    try:
        yield make_conninfo(**params, options=settings)
    finally:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(dbname)))
        for name in ROLES.values():
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def test_custom_names_recorded(custom_dsn):
    migrate(custom_dsn)

    with psycopg.connect(custom_dsn) as connection:
        recorded = dict(connection.execute("select purpose, role_name from buildq.role_names").fetchall())

    assert recorded == ROLES


def test_custom_roles_granted(custom_dsn):
    migrate(custom_dsn)

    with psycopg.connect(custom_dsn) as connection:
        operator_cancels, runner_claims, reader_reads = connection.execute(
            "select"
            " has_function_privilege(%s, 'buildq.cancel_build(bigint, text)', 'execute'),"
            " has_function_privilege(%s, 'buildq.claim_builds(text, integer, text[])', 'execute'),"
            " has_table_privilege(%s, 'buildq.queued_builds', 'select')",
            (ROLES["operator"], ROLES["runner"], ROLES["reader"]),
        ).fetchone()

    assert operator_cancels is True
    assert runner_claims is True
    assert reader_reads is True


def test_remigrate_keeps_grants(custom_dsn):
    migrate(custom_dsn)
    migrate(custom_dsn)

    with psycopg.connect(custom_dsn) as connection:
        allowed = connection.execute(
            "select has_function_privilege(%s, 'buildq.finish_build(bigint, integer, timestamptz,"
            " timestamptz, boolean, bigint, bigint, text, text, text, integer)', 'execute')",
            (ROLES["runner"],),
        ).fetchone()[0]

    assert allowed is True


def test_same_name_twice_rejected(conn, db):
    dbname = f"{PREFIX}_clash"
    conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    params = conninfo_to_dict(db.dsn)
    params["dbname"] = dbname
    dsn = make_conninfo(
        **params, options="-c buildq.runner_role=buildq_runner -c buildq.operator_role=buildq_runner"
    )
    try:
        with pytest.raises(InvalidArgument, match="already chosen for another purpose"):
            migrate(dsn)
    finally:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(dbname)))
