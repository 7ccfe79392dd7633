"""buildq.abort_build: finishes a build as aborted (status 3) through finish_build's guard."""

from __future__ import annotations

import psycopg
import pytest

GC_REASON = "derivation was garbage-collected prior to build"


def test_abort_records_reason(scalar, new_build, build_row):
    build_id = new_build()

    aborted = scalar("select buildq.abort_build(%s, %s)", (build_id, GC_REASON))

    row = build_row(build_id)
    assert aborted is True
    assert row["finished"] == 1
    assert row["build_status"] == 3
    assert row["error_msg"] == GC_REASON
    assert row["start_time"] is not None
    assert row["stop_time"] is not None


def test_abort_psql_literal_call(scalar, build_row):
    scalar("select setval(pg_get_serial_sequence('buildq.builds', 'id'), 41)")
    assert scalar("select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv')") == 42

    aborted = scalar(
        "select buildq.abort_build(42, 'derivation was garbage-collected prior to build')"
    )

    assert aborted is True
    assert build_row(42)["build_status"] == 3


def test_abort_records_finished_by(scalar, new_build, build_row):
    by_monitor = new_build()
    by_user = new_build()

    scalar(
        "select buildq.abort_build(%s, 'no machine', finished_by => 'queue-monitor')",
        (by_monitor,),
    )
    scalar("select buildq.abort_build(%s, 'cancelled in psql')", (by_user,))

    assert build_row(by_monitor)["finished_by"] == "queue-monitor"
    assert build_row(by_user)["finished_by"] == scalar("select session_user")


def test_abort_claimed_build_clears_claim(conn, scalar, new_build, build_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")

    scalar("select buildq.abort_build(%s, 'runner stopped')", (build_id,))

    row = build_row(build_id)
    assert row["busy"] == 0
    assert row["claimed_by"] is None


def test_abort_repeated_returns_false(scalar, new_build, build_row):
    build_id = new_build()
    scalar("select buildq.abort_build(%s, 'first reason')", (build_id,))
    before = build_row(build_id)

    again = scalar("select buildq.abort_build(%s, 'second reason')", (build_id,))

    assert again is False
    assert build_row(build_id) == before


def test_abort_after_finish_returns_false(scalar, new_build, build_row):
    build_id = new_build()
    scalar("select buildq.finish_build(%s, 0)", (build_id,))
    before = build_row(build_id)

    aborted = scalar("select buildq.abort_build(%s, %s)", (build_id, GC_REASON))

    assert aborted is False
    assert build_row(build_id) == before


def test_abort_only_current_attempt_lands(conn, scalar, new_build, build_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    conn.execute("select buildq.clear_busy('runner-a')")
    conn.execute("select * from buildq.claim_builds('runner-b')")
    before = build_row(build_id)

    late = scalar("select buildq.abort_build(%s, 'late abort', attempt => 1)", (build_id,))
    unchanged = build_row(build_id)
    current = scalar("select buildq.abort_build(%s, 'runner stopped', attempt => 2)", (build_id,))

    assert late is False
    assert unchanged == before
    assert current is True
    assert build_row(build_id)["error_msg"] == "runner stopped"


# Each case: name, query, expected SQLSTATE, text the message must contain.
# The queries get the id of a queued, unfinished build as %(id)s, and the
# expected text may name it as {id} or the unknown id as {unknown}.
BAD_ABORTS = [
    ("unknown id", "select buildq.abort_build(%(id)s + 1000, 'gone')", "BQ001", "{unknown}"),
    ("null id", "select buildq.abort_build(null, 'gone')", "22004", "build_id"),
    ("empty reason", "select buildq.abort_build(%(id)s, '')", "22023", "build {id}"),
    ("null reason", "select buildq.abort_build(%(id)s, null)", "22023", "build {id}"),
]


def test_abort_rejects_bad_input(conn, new_build, table_state, subtests):
    build_id = new_build()

    for case, query, sqlstate, named in BAD_ABORTS:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query, {"id": build_id})

            assert excinfo.value.sqlstate == sqlstate
            assert named.format(id=build_id, unknown=build_id + 1000) in (
                excinfo.value.diag.message_primary
            )
            assert table_state() == before
