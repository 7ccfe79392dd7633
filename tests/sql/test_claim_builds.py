"""buildq.claim_builds: hands queued builds to one runner in dispatch order."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row


def claim(conn, runner="runner-a", max_count=1, systems=None):
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from buildq.claim_builds(%s, max_count => %s, systems => %s)",
            (runner, max_count, systems),
        ).fetchall()


def test_claim_returns_build_marks_busy(conn, new_build, build_row):
    build_id = new_build(job="hello", system="x86_64-linux", drv_path="/nix/store/a.drv")

    claimed = claim(conn, runner="runner-a")

    assert len(claimed) == 1
    assert claimed[0]["id"] == build_id
    assert claimed[0]["attempt"] == 1
    assert claimed[0]["job"] == "hello"
    assert claimed[0]["system"] == "x86_64-linux"
    assert claimed[0]["drv_path"] == "/nix/store/a.drv"
    row = build_row(build_id)
    assert row["busy"] == 1
    assert row["claimed_by"] == "runner-a"
    assert row["claimed_at"] is not None
    assert row["attempt"] == 1
    assert row["finished"] == 0


def test_claim_psql_literal_one_build(conn, new_build):
    first = new_build()
    new_build()

    rows = conn.execute("select id, attempt from buildq.claim_builds('runner-a')").fetchall()

    assert rows == [(first, 1)]


def test_claim_dispatch_order_up_to_max(conn, new_build):
    low = new_build(priority=0)
    high = new_build(priority=10)
    bumped = new_build(priority=0, global_priority=1)
    new_build(priority=0)

    claimed = claim(conn, max_count=3)

    assert [row["id"] for row in claimed] == [bumped, high, low]


def test_claim_filters_by_system(conn, new_build):
    new_build(system="x86_64-linux")
    arm = new_build(system="aarch64-linux")

    claimed = claim(conn, max_count=10, systems=["aarch64-linux"])

    assert [row["id"] for row in claimed] == [arm]


def test_claim_repeated_returns_nothing(conn, new_build, table_state):
    new_build()
    claim(conn, runner="runner-a")
    before = table_state()

    second = claim(conn, runner="runner-b")

    assert second == []
    assert table_state() == before


def test_claim_skips_finished_builds(conn, new_build):
    finished = new_build()
    conn.execute("select buildq.finish_build(%s, 0)", (finished,))

    assert claim(conn) == []


def test_claim_after_clear_busy_new_attempt(conn, new_build):
    build_id = new_build()
    claim(conn, runner="runner-a")
    conn.execute("select buildq.clear_busy('runner-a')")

    claimed = claim(conn, runner="runner-b")

    assert [row["id"] for row in claimed] == [build_id]
    assert claimed[0]["attempt"] == 2


# Each case: name, query, expected SQLSTATE, text the message must contain.
BAD_CLAIMS = [
    ("empty runner", "select * from buildq.claim_builds('')", "22023", "runner"),
    ("null runner", "select * from buildq.claim_builds(null)", "22023", "runner"),
    ("zero max_count", "select * from buildq.claim_builds('runner-a', 0)", "22023", "0"),
    ("negative max_count", "select * from buildq.claim_builds('runner-a', -4)", "22023", "-4"),
    ("null max_count", "select * from buildq.claim_builds('runner-a', null)", "22023", "NULL"),
]


def test_claim_rejects_bad_input(conn, new_build, table_state, subtests):
    new_build()

    for case, query, sqlstate, named in BAD_CLAIMS:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query)

            assert excinfo.value.sqlstate == sqlstate
            assert named in excinfo.value.diag.message_primary
            assert table_state() == before
