"""buildq.clear_busy: after a runner crash, aborts its busy steps and requeues its builds."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def crashed_runner(conn, scalar, new_build):
    """Return the id of a build that runner-a claimed and started two steps of."""
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    for _ in range(2):
        scalar("select buildq.create_build_step(%s, runner => 'runner-a')", (build_id,))
    return build_id


def test_clear_aborts_busy_steps(scalar, crashed_runner, step_row):
    changed = scalar("select buildq.clear_busy('runner-a')")

    # Two steps and one build.
    assert changed == 3
    for step_nr in (1, 2):
        row = step_row(crashed_runner, step_nr)
        assert row["busy"] == 0
        assert row["status"] == 3
        assert row["stop_time"] >= row["start_time"]
        assert "runner-a" in row["error_msg"]


def test_clear_requeues_claimed_build(scalar, crashed_runner, build_row):
    scalar("select buildq.clear_busy('runner-a')")

    row = build_row(crashed_runner)
    assert row["busy"] == 0
    assert row["claimed_by"] is None
    assert row["claimed_at"] is None
    assert row["finished"] == 0
    assert row["attempt"] == 1


def test_clear_aborts_step_without_runner(conn, scalar, new_build, step_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    step_nr = scalar("select buildq.create_build_step(%s)", (build_id,))

    scalar("select buildq.clear_busy('runner-a')")

    row = step_row(build_id, step_nr)
    assert row["runner"] == "runner-a"
    assert row["busy"] == 0
    assert row["status"] == 3


def test_clear_skips_finished_steps(scalar, crashed_runner, step_row):
    scalar("select buildq.finish_build_step(%s, 1, 0)", (crashed_runner,))
    finished = step_row(crashed_runner, 1)

    scalar("select buildq.clear_busy('runner-a')")

    assert step_row(crashed_runner, 1) == finished


def test_clear_skips_other_runners(conn, scalar, crashed_runner, new_build, build_row, step_row):
    other = new_build()
    conn.execute("select * from buildq.claim_builds('runner-b')")
    scalar("select buildq.create_build_step(%s, runner => 'runner-b')", (other,))
    build_before = build_row(other)
    step_before = step_row(other, 1)

    scalar("select buildq.clear_busy('runner-a')")

    assert build_row(other) == build_before
    assert step_row(other, 1) == step_before


def test_clear_skips_finished_builds(conn, scalar, new_build, build_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    scalar("select buildq.finish_build(%s, 0)", (build_id,))
    before = build_row(build_id)

    cleared = scalar("select buildq.clear_busy('runner-a')")

    assert cleared == 0
    assert build_row(build_id) == before


def test_clear_repeated_returns_zero(scalar, crashed_runner, table_state):
    scalar("select buildq.clear_busy('runner-a')")
    before = table_state()

    again = scalar("select buildq.clear_busy('runner-a')")
    unknown = scalar("select buildq.clear_busy('runner-z')")

    assert again == 0
    assert unknown == 0
    assert table_state() == before


def test_clear_build_claimable_again(conn, scalar, crashed_runner):
    scalar("select buildq.clear_busy('runner-a')")

    claimed = conn.execute("select id, attempt from buildq.claim_builds('runner-b')").fetchall()

    assert claimed == [(crashed_runner, 2)]


def test_clear_old_attempt_finish_lands(scalar, crashed_runner):
    scalar("select buildq.clear_busy('runner-a')")

    late = scalar("select buildq.finish_build(%s, 0, attempt => 1)", (crashed_runner,))

    assert late is True


# Each case: name, query, expected SQLSTATE, text the message must contain.
BAD_CLEARS = [
    ("empty runner", "select buildq.clear_busy('')", "22023", "runner"),
    ("null runner", "select buildq.clear_busy(null)", "22023", "runner"),
]


def test_clear_rejects_bad_input(conn, crashed_runner, table_state, subtests):
    for case, query, sqlstate, named in BAD_CLEARS:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query)

            assert excinfo.value.sqlstate == sqlstate
            assert named in excinfo.value.diag.message_primary
            assert table_state() == before
