"""buildq.queue_build: adds one unfinished build to the queue and returns its id."""

from __future__ import annotations

import psycopg
import pytest

DRV = "/nix/store/aaaa-hello.drv"


def test_queue_returns_unfinished_build(scalar, build_row):
    build_id = scalar(
        "select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/aaaa-hello.drv')"
    )

    row = build_row(build_id)
    assert row is not None
    assert row["job"] == "hello"
    assert row["system"] == "x86_64-linux"
    assert row["drv_path"] == DRV
    assert row["finished"] == 0
    assert row["busy"] == 0
    assert row["attempt"] == 0
    assert row["last_step_nr"] == 0
    assert row["build_status"] is None
    assert row["start_time"] is None
    assert row["stop_time"] is None
    assert row["claimed_by"] is None
    assert row["finished_by"] is None
    assert row["queued_at"] is not None
    assert row["priority"] == 0
    assert row["global_priority"] == 0
    assert row["timeout"] is None
    assert row["max_silent"] is None


def test_queue_stores_limits_and_priorities(scalar, build_row):
    build_id = scalar(
        "select buildq.queue_build('hello', 'x86_64-linux', %s,"
        " priority => 5, global_priority => 2, timeout => 3600, max_silent => 600)",
        (DRV,),
    )

    row = build_row(build_id)
    assert row["priority"] == 5
    assert row["global_priority"] == 2
    assert row["timeout"] == 3600
    assert row["max_silent"] == 600


def test_queue_twice_adds_two_builds(scalar):
    first = scalar("select buildq.queue_build('hello', 'x86_64-linux', %s)", (DRV,))
    second = scalar("select buildq.queue_build('hello', 'x86_64-linux', %s)", (DRV,))

    assert second != first
    assert scalar("select count(*) from buildq.builds") == 2


# Each case: name, query, expected SQLSTATE, text the message must contain.
BAD_QUEUES = [
    (
        "empty job",
        "select buildq.queue_build('', 'x86_64-linux', '/nix/store/a.drv')",
        "22023",
        "''",
    ),
    (
        "null job",
        "select buildq.queue_build(null, 'x86_64-linux', '/nix/store/a.drv')",
        "22023",
        "NULL",
    ),
    (
        "empty system",
        "select buildq.queue_build('hello', '', '/nix/store/a.drv')",
        "22023",
        "''",
    ),
    (
        "null system",
        "select buildq.queue_build('hello', null, '/nix/store/a.drv')",
        "22023",
        "NULL",
    ),
    (
        "empty drv_path",
        "select buildq.queue_build('hello', 'x86_64-linux', '')",
        "22023",
        "''",
    ),
    (
        "null drv_path",
        "select buildq.queue_build('hello', 'x86_64-linux', null)",
        "22023",
        "NULL",
    ),
    (
        "null priority",
        "select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv',"
        " priority => null)",
        "22004",
        "priority",
    ),
    (
        "null global_priority",
        "select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv',"
        " global_priority => null)",
        "22004",
        "global_priority",
    ),
    (
        "zero timeout",
        "select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv', timeout => 0)",
        "22023",
        "timeout 0",
    ),
    (
        "negative max_silent",
        "select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv',"
        " max_silent => -30)",
        "22023",
        "-30",
    ),
]


def test_queue_rejects_bad_input(conn, new_build, table_state, subtests):
    new_build()

    for case, query, sqlstate, named in BAD_QUEUES:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query)

            assert excinfo.value.sqlstate == sqlstate
            assert named in excinfo.value.diag.message_primary
            assert table_state() == before
