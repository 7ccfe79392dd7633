"""The runner works with nothing but the buildq_runner role."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.runner.conftest import RUNNER, Cli, write_jobset


@pytest.fixture
def runner_login(db: Any, conn: psycopg.Connection) -> Iterator[str]:
    """Create a login role that is a member of buildq_runner only and return its conninfo."""
    name = f"buildq_test_{os.getpid()}_runner_login"
    role = sql.Identifier(name)
    conn.execute(sql.SQL("drop role if exists {}").format(role))
    conn.execute(sql.SQL("create role {} login").format(role))
    conn.execute(sql.SQL("grant buildq_runner to {}").format(role))
    params = conninfo_to_dict(db.dsn)
    params["user"] = name
    params.pop("password", None)
    try:
        yield make_conninfo(**params)
    finally:
        conn.execute(sql.SQL("drop role {}").format(role))


def test_runner_role_builds_queue(
    db: Any, conn: psycopg.Connection, runner_login: str, tmp_path: Path
) -> None:
    jobset = write_jobset(
        tmp_path,
        {"ok": {"command": "echo ok > \"$out/ok\""}, "bad": {"command": "exit 1"}},
    )
    Cli(dsn=db.dsn, cwd=tmp_path).enqueue(jobset)

    result = Cli(dsn=runner_login, cwd=tmp_path).run(
        "run", "--runner-id", RUNNER, "--until-idle", "--poll-interval", "0.5"
    )
    statuses = dict(conn.execute("select job, build_status from buildq.builds").fetchall())

    assert result.returncode == 0, result.stderr
    assert statuses == {"ok": 0, "bad": 1}


def test_runner_without_role_fails_fast(db: Any, conn: psycopg.Connection, tmp_path: Path) -> None:
    name = f"buildq_test_{os.getpid()}_no_role_login"
    role = sql.Identifier(name)
    conn.execute(sql.SQL("drop role if exists {}").format(role))
    conn.execute(sql.SQL("create role {} login").format(role))
    params = conninfo_to_dict(db.dsn)
    params["user"] = name
    params.pop("password", None)
    try:
        result = Cli(dsn=make_conninfo(**params), cwd=tmp_path).run(
            "run", "--runner-id", RUNNER, "--until-idle", timeout=30
        )
    finally:
        conn.execute(sql.SQL("drop role {}").format(role))

    assert result.returncode == 1
    assert "grant the buildq_runner role" in result.stderr
