"""Bad input to the operator functions raises a documented SQLSTATE, names the value and changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from buildq.errors import InvalidArgument, map_database_error

MAX_INTEGER = 2147483647


def table_rows(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Return the rows of the tables that the operator functions write, as sorted JSON text."""
    return {
        table: sorted(
            row[0]
            for row in conn.execute(f"select to_jsonb(t)::text from buildq.{table} as t").fetchall()
        )
        for table in ("builds", "build_steps", "build_events")
    }


@pytest.mark.parametrize("call", ["cancel_builds", "restart_builds"])
def test_two_dimensional_ids_rejected(conn, queue, call):
    first = queue("first")
    second = queue("second")
    nested_ids = f"{{{{{first},{second}}},{{{first},{second}}}}}"
    before = table_rows(conn)

    with pytest.raises(psycopg.Error) as caught:
        conn.execute(f"select * from buildq.{call}(%s::bigint[])", (nested_ids,))

    assert caught.value.sqlstate == "22023"
    assert isinstance(map_database_error(caught.value), InvalidArgument)
    assert "[1:2][1:2]" in caught.value.diag.message_primary
    assert caught.value.diag.message_hint
    assert table_rows(conn) == before


def test_bump_past_max_priority_rejected(conn, queue, scalar):
    scalar(
        "select buildq.queue_build('front', 'x86_64-linux', '/nix/store/front.drv',"
        " global_priority => %s)",
        (MAX_INTEGER,),
    )
    build_id = queue("behind")
    before = table_rows(conn)

    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select buildq.bump_build(%s)", (build_id,))

    assert caught.value.sqlstate == "22003"
    assert isinstance(map_database_error(caught.value), InvalidArgument)
    assert f"build {build_id}" in caught.value.diag.message_primary
    assert str(MAX_INTEGER) in caught.value.diag.message_primary
    assert caught.value.diag.message_hint
    assert table_rows(conn) == before


def test_bump_tied_at_max_priority_rejected(conn, scalar):
    build_ids = [
        scalar(
            "select buildq.queue_build(%s, 'x86_64-linux', %s, global_priority => %s)",
            (job, f"/nix/store/{job}.drv", MAX_INTEGER),
        )
        for job in ("first", "second")
    ]

    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select buildq.bump_build(%s)", (build_ids[1],))

    assert caught.value.sqlstate == "22003"
    assert f"build {build_ids[1]}" in caught.value.diag.message_primary


def test_bump_finished_at_max_names_status(conn, queue, scalar, notices):
    scalar(
        "select buildq.queue_build('front', 'x86_64-linux', '/nix/store/front.drv',"
        " global_priority => %s)",
        (MAX_INTEGER,),
    )
    build_id = queue("behind")
    scalar("select buildq.finish_build(%s, 0)", (build_id,))

    assert scalar("select buildq.bump_build(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} is already finished as succeeded (status 0); not bumped"]
