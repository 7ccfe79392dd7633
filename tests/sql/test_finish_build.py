"""buildq.finish_build: records a build's result exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
STOP = START + timedelta(minutes=3)


def make_build_42(scalar):
    """Queue one build with id 42, the id of the psql examples, by moving the id sequence."""
    scalar("select setval(pg_get_serial_sequence('buildq.builds', 'id'), 41)")
    return scalar("select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv')")


def test_finish_psql_literal_call(scalar, build_row):
    assert make_build_42(scalar) == 42

    finished = scalar("select buildq.finish_build(42, 0)")

    assert finished is True
    assert build_row(42)["build_status"] == 0


def test_finish_psql_named_error_msg(scalar, build_row):
    assert make_build_42(scalar) == 42

    finished = scalar("select buildq.finish_build(42, 1, error_msg => 'oops')")

    assert finished is True
    assert build_row(42)["build_status"] == 1
    assert build_row(42)["error_msg"] == "oops"


def test_finish_records_result(scalar, new_build, build_row):
    build_id = new_build()

    finished = scalar(
        "select buildq.finish_build(%s, 6, start_time => %s, stop_time => %s,"
        " size => 1024, closure_size => 4096, release_name => 'hello-1.0',"
        " error_msg => 'build marked itself failed', finished_by => 'runner-a')",
        (build_id, START, STOP),
    )

    row = build_row(build_id)
    assert finished is True
    assert row["finished"] == 1
    assert row["build_status"] == 6
    assert row["start_time"] == START
    assert row["stop_time"] == STOP
    assert row["size"] == 1024
    assert row["closure_size"] == 4096
    assert row["release_name"] == "hello-1.0"
    assert row["error_msg"] == "build marked itself failed"
    assert row["finished_by"] == "runner-a"
    assert row["is_cached_build"] is False
    assert row["notification_pending_since"] is not None


def test_finish_defaults(scalar, new_build, build_row):
    build_id = new_build()

    scalar("select buildq.finish_build(%s, 0)", (build_id,))

    row = build_row(build_id)
    assert row["finished_by"] == scalar("select session_user")
    assert row["start_time"] == row["stop_time"]
    assert row["is_cached_build"] is False
    assert row["size"] is None
    assert row["error_msg"] is None


def test_finish_cached_build(scalar, new_build, build_row):
    build_id = new_build()

    scalar("select buildq.finish_build(%s, 0, is_cached => true)", (build_id,))

    assert build_row(build_id)["is_cached_build"] is True


def test_finish_claimed_build_clears_claim(conn, scalar, new_build, build_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")

    # Without attempt, the finish lands whatever the build's attempt is.
    finished = scalar("select buildq.finish_build(%s, 4)", (build_id,))

    row = build_row(build_id)
    assert finished is True
    assert row["busy"] == 0
    assert row["claimed_by"] is None
    assert row["finished"] == 1


def test_finish_repeated_returns_false(conn, scalar, new_build, table_state):
    build_id = new_build()
    scalar("select buildq.finish_build(%s, 0, finished_by => 'first')", (build_id,))
    before = table_state()
    notices = []
    # A Diagnostic is valid only inside the handler, so keep copies of its fields.
    conn.add_notice_handler(
        lambda diag: notices.append((diag.severity_nonlocalized, diag.message_primary))
    )

    again = scalar(
        "select buildq.finish_build(%s, 1, error_msg => 'late', finished_by => 'second')",
        (build_id,),
    )

    assert again is False
    assert table_state() == before
    assert len(notices) == 1
    assert notices[0][0] == "NOTICE"
    assert str(build_id) in notices[0][1]


def test_finish_only_current_attempt_lands(conn, scalar, new_build, build_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    conn.execute("select buildq.clear_busy('runner-a')")
    conn.execute("select * from buildq.claim_builds('runner-b')")
    before = build_row(build_id)

    late = scalar("select buildq.finish_build(%s, 1, attempt => 1)", (build_id,))
    unchanged = build_row(build_id)
    current = scalar("select buildq.finish_build(%s, 0, attempt => 2)", (build_id,))

    assert late is False
    assert unchanged == before
    assert current is True
    assert build_row(build_id)["build_status"] == 0


# Each case: name, query, expected SQLSTATE, text the message must contain.
# The queries get the id of a queued, unfinished build as %(id)s, and the
# expected text may name it as {id} or the unknown id as {unknown}.
BAD_FINISHES = [
    ("unknown id", "select buildq.finish_build(%(id)s + 1000, 0)", "BQ001", "{unknown}"),
    ("null id", "select buildq.finish_build(null, 0)", "22004", "build_id"),
    ("unknown status", "select buildq.finish_build(%(id)s, 55)", "BQ003", "55"),
    ("obsolete status 5", "select buildq.finish_build(%(id)s, 5)", "BQ003", "status 5"),
    ("step-only status 8", "select buildq.finish_build(%(id)s, 8)", "BQ003", "status 8"),
    ("null status", "select buildq.finish_build(%(id)s, null)", "22004", "status"),
    (
        "stop before start",
        "select buildq.finish_build(%(id)s, 0,"
        " start_time => '2024-05-01 12:00+00', stop_time => '2024-05-01 11:59+00')",
        "BQ004",
        "build {id}",
    ),
    (
        "null start_time",
        "select buildq.finish_build(%(id)s, 0, start_time => null)",
        "22004",
        "start_time",
    ),
    (
        "null stop_time",
        "select buildq.finish_build(%(id)s, 0, stop_time => null)",
        "22004",
        "stop_time",
    ),
    ("negative size", "select buildq.finish_build(%(id)s, 0, size => -7)", "22023", "-7"),
    (
        "negative closure_size",
        "select buildq.finish_build(%(id)s, 0, closure_size => -9)",
        "22023",
        "-9",
    ),
    (
        "null is_cached",
        "select buildq.finish_build(%(id)s, 0, is_cached => null)",
        "22004",
        "is_cached",
    ),
    (
        "empty finished_by",
        "select buildq.finish_build(%(id)s, 0, finished_by => '')",
        "22023",
        "finished_by",
    ),
]


def test_finish_rejects_bad_input(conn, new_build, table_state, subtests):
    build_id = new_build()

    for case, query, sqlstate, named in BAD_FINISHES:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query, {"id": build_id})

            assert excinfo.value.sqlstate == sqlstate
            assert named.format(id=build_id, unknown=build_id + 1000) in (
                excinfo.value.diag.message_primary
            )
            assert table_state() == before

