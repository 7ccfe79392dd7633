"""Fixtures for the tests of the SQL functions in schema buildq."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

Row = dict[str, Any]


@pytest.fixture
def new_build(conn: psycopg.Connection) -> Callable[..., int]:
    """Return a function that queues a build through buildq.queue_build and returns its id."""

    def queue(
        job: str = "hello",
        system: str = "x86_64-linux",
        drv_path: str = "/nix/store/aaaa-hello.drv",
        priority: int = 0,
        global_priority: int = 0,
    ) -> int:
        row = conn.execute(
            "select buildq.queue_build("
            "job => %s, system => %s, drv_path => %s,"
            " priority => %s, global_priority => %s)",
            (job, system, drv_path, priority, global_priority),
        ).fetchone()
        assert row is not None
        return row[0]

    return queue


@pytest.fixture
def build_row(conn: psycopg.Connection) -> Callable[[int], Row | None]:
    """Return a function that reads one row of buildq.builds as a dict, or None."""

    def read(build_id: int) -> Row | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute("select * from buildq.builds where id = %s", (build_id,)).fetchone()

    return read


@pytest.fixture
def step_row(conn: psycopg.Connection) -> Callable[[int, int], Row | None]:
    """Return a function that reads one row of buildq.build_steps as a dict, or None."""

    def read(build_id: int, step_nr: int) -> Row | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "select * from buildq.build_steps where build_id = %s and step_nr = %s",
                (build_id, step_nr),
            ).fetchone()

    return read


@pytest.fixture
def table_state(conn: psycopg.Connection) -> Callable[[], dict[str, list[str]]]:
    """Return a function that reads every row of every table in schema buildq.

    Each table maps to its rows as JSON text, sorted. Tests of bad input
    compare the result before and after a call, so a change to any table
    fails them.
    """

    def read() -> dict[str, list[str]]:
        tables = conn.execute(
            "select c.relname from pg_class as c"
            " where c.relnamespace = 'buildq'::regnamespace and c.relkind in ('r', 'p')"
            " order by c.relname"
        ).fetchall()
        state = {}
        for (table,) in tables:
            query = sql.SQL("select to_jsonb(t)::text from {} as t").format(
                sql.Identifier("buildq", table)
            )
            state[table] = sorted(row[0] for row in conn.execute(query).fetchall())
        return state

    return read


@pytest.fixture
def scalar(conn: psycopg.Connection) -> Callable[..., Any]:
    """Return a function that runs one query and returns the first column of its one row."""

    def run(query: str, params: Any = None) -> Any:
        row = conn.execute(query, params).fetchone()
        assert row is not None, f"query returned no row: {query}"
        return row[0]

    return run
