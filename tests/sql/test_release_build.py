"""buildq.release_build: returns one build claimed by a runner to the queue."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

THREADS = 8
RACED_BUILDS = 40
# Seconds a thread waits at the barrier before the race is declared stuck.
BARRIER_TIMEOUT = 60


@pytest.fixture
def claimed(conn, new_build):
    """Return the id of a build that runner-a claimed in attempt 1."""
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    return build_id


def notices_of(conn: psycopg.Connection, query: str, params: tuple) -> tuple[object, list[str]]:
    """Run a one-value query and return its value and the notices it raised."""
    notices: list[str] = []

    def collect(diagnostic: psycopg.errors.Diagnostic) -> None:
        notices.append(diagnostic.message_primary or "")

    conn.add_notice_handler(collect)
    try:
        row = conn.execute(query, params).fetchone()
    finally:
        conn.remove_notice_handler(collect)
    assert row is not None
    return row[0], notices


def test_release_requeues_build(scalar, claimed, build_row):
    released = scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    row = build_row(claimed)
    assert released is True
    assert row["busy"] == 0
    assert row["claimed_by"] is None
    assert row["claimed_at"] is None
    assert row["finished"] == 0
    assert row["attempt"] == 1


def test_release_without_attempt(scalar, claimed, build_row):
    released = scalar("select buildq.release_build(%s, 'runner-a')", (claimed,))

    assert released is True
    assert build_row(claimed)["busy"] == 0


def test_release_records_released_event(conn, scalar, claimed):
    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    events = conn.execute(
        "select event, old_state, new_state from buildq.build_events"
        " where build_id = %s and step_nr is null order by id",
        (claimed,),
    ).fetchall()
    assert events[-1] == ("released", "running", "queued")


def test_release_aborts_busy_step(scalar, claimed, step_row):
    scalar("select buildq.create_build_step(%s, runner => 'runner-a', attempt => 1)", (claimed,))

    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    step = step_row(claimed, 1)
    assert step["busy"] == 0
    assert step["status"] == 3
    assert step["stop_time"] >= step["start_time"]
    assert "runner-a released" in step["error_msg"]


def test_release_keeps_other_runners_step(scalar, claimed, step_row):
    scalar("select buildq.create_build_step(%s, runner => 'runner-b', attempt => 1)", (claimed,))
    before = step_row(claimed, 1)

    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    assert step_row(claimed, 1) == before


def test_released_build_claimable_again(conn, scalar, claimed):
    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    again = conn.execute("select id, attempt from buildq.claim_builds('runner-b')").fetchall()

    assert again == [(claimed, 2)]


def test_release_repeated_returns_false(conn, scalar, claimed, table_state):
    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))
    before = table_state()

    again, notices = notices_of(conn, "select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    assert again is False
    assert notices == [f"build {claimed} is not claimed; nothing released"]
    assert table_state() == before


def test_release_wrong_runner_returns_false(conn, claimed, table_state):
    before = table_state()

    released, notices = notices_of(
        conn, "select buildq.release_build(%s, 'runner-b', 1)", (claimed,)
    )

    assert released is False
    expected = f"build {claimed} is claimed by runner runner-a, not runner-b; nothing released"
    assert notices == [expected]
    assert table_state() == before


def test_release_wrong_attempt_returns_false(conn, claimed, table_state):
    before = table_state()

    released, notices = notices_of(
        conn, "select buildq.release_build(%s, 'runner-a', 2)", (claimed,)
    )

    assert released is False
    assert notices == [f"build {claimed} is in attempt 1, not attempt 2; nothing released"]
    assert table_state() == before


def test_release_finished_returns_false(conn, scalar, claimed, table_state):
    scalar("select buildq.finish_build(%s, 0)", (claimed,))
    before = table_state()

    released, notices = notices_of(
        conn, "select buildq.release_build(%s, 'runner-a', 1)", (claimed,)
    )

    assert released is False
    assert notices == [f"build {claimed} is already finished; nothing released"]
    assert table_state() == before


def test_release_old_attempt_finish_lands(scalar, claimed):
    scalar("select buildq.release_build(%s, 'runner-a', 1)", (claimed,))

    late = scalar("select buildq.finish_build(%s, 0, attempt => 1)", (claimed,))

    assert late is True


def test_release_granted_to_runner_role(scalar):
    signature = "buildq.release_build(bigint, text, integer)"

    runner_may = scalar(
        "select has_function_privilege('buildq_runner', %s, 'execute')", (signature,)
    )
    public_may = scalar(
        "select coalesce(bool_or(a.privilege_type = 'EXECUTE'), false)"
        " from pg_proc as p cross join lateral aclexplode(p.proacl) as a"
        " where p.oid = %s::regprocedure and a.grantee = 0",
        (signature,),
    )

    assert runner_may is True
    assert public_may is False


# Each case: name, query, expected SQLSTATE, text the message must contain.
BAD_RELEASES = [
    ("unknown id", "select buildq.release_build(999999, 'runner-a')", "BQ001", "999999"),
    ("null id", "select buildq.release_build(null, 'runner-a')", "22004", "build_id"),
    ("empty runner", "select buildq.release_build(1, '')", "22023", "runner"),
    ("null runner", "select buildq.release_build(1, null)", "22023", "runner"),
]


def test_release_rejects_bad_input(conn, claimed, table_state, subtests):
    for case, query, sqlstate, named in BAD_RELEASES:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query)

            assert excinfo.value.sqlstate == sqlstate
            assert named in excinfo.value.diag.message_primary
            assert table_state() == before


def race_rounds(db, build_ids: list[int], query_of_thread) -> list[list[object]]:
    """Run query_of_thread(thread_nr) on THREADS threads, one round per build.

    Each query may name the round's build as %(build_id)s.

    A barrier releases all threads at the start of each round. Returns the value or the
    psycopg.Error of every call, by round and thread.
    """
    barrier = threading.Barrier(THREADS, timeout=BARRIER_TIMEOUT)
    outcomes: list[list[object]] = [[None] * THREADS for _ in build_ids]

    def run_thread(thread_nr: int) -> None:
        query = query_of_thread(thread_nr)
        try:
            with db.connect() as connection:
                for round_nr, build_id in enumerate(build_ids):
                    barrier.wait()
                    try:
                        row = connection.execute(query, {"build_id": build_id}).fetchone()
                        outcomes[round_nr][thread_nr] = row[0] if row else None
                    except psycopg.Error as exc:
                        outcomes[round_nr][thread_nr] = exc
        except BaseException:
            barrier.abort()
            raise

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(run_thread, number) for number in range(THREADS)]:
            future.result()
    return outcomes


def claimed_builds(conn, count: int, with_steps: bool = False) -> list[int]:
    """Queue ``count`` builds, claim them all for runner-a, and return their ids."""
    build_ids = []
    for number in range(count):
        row = conn.execute(
            "select buildq.queue_build('race', 'x86_64-linux', %s)", (f"/store/{number}.recipe",)
        ).fetchone()
        assert row is not None
        build_ids.append(row[0])
    conn.execute("select count(*) from buildq.claim_builds('runner-a', max_count => %s)", (count,))
    if with_steps:
        for build_id in build_ids:
            conn.execute(
                "select buildq.create_build_step(%s, runner => 'runner-a', attempt => 1)",
                (build_id,),
            )
    return build_ids


def test_release_races_clear_busy(db, conn):
    """Threads 0-3 release one build with a busy step while threads 4-7 clear the runner.

    Both take the step's lock before the build's, so no call meets a deadlock.
    """
    build_ids = claimed_builds(conn, RACED_BUILDS, with_steps=True)

    outcomes = race_rounds(
        db,
        build_ids,
        lambda thread_nr: "select buildq.release_build(%(build_id)s, 'runner-a', 1)"
        if thread_nr < THREADS // 2
        else "select buildq.clear_busy('runner-a')",
    )

    errors = [o for round_outcomes in outcomes for o in round_outcomes if isinstance(o, Exception)]
    builds = conn.execute(
        "select distinct busy, claimed_by from buildq.builds where id = any(%s)", (build_ids,)
    ).fetchall()
    step_states = conn.execute(
        "select distinct busy, status from buildq.build_steps where build_id = any(%s)",
        (build_ids,),
    ).fetchall()
    assert errors == []
    assert builds == [(0, None)]
    assert step_states == [(0, 3)]


def test_release_races_finish(db, conn):
    """Threads 0-3 release and threads 4-7 finish the same claimed build, once per round.

    A release that commits first leaves attempt 1 in place, so a finish still lands. A
    finish that commits first makes every release return false. Either way exactly one
    finish wins and the build ends finished.
    """
    build_ids = claimed_builds(conn, RACED_BUILDS)

    outcomes = race_rounds(
        db,
        build_ids,
        lambda thread_nr: "select buildq.release_build(%(build_id)s, 'runner-a', 1)"
        if thread_nr < THREADS // 2
        else "select buildq.finish_build(%(build_id)s, 0, attempt => 1)",
    )

    errors = [o for round_outcomes in outcomes for o in round_outcomes if isinstance(o, Exception)]
    finish_wins = [round_outcomes[THREADS // 2 :].count(True) for round_outcomes in outcomes]
    release_wins = [round_outcomes[: THREADS // 2].count(True) for round_outcomes in outcomes]
    states = conn.execute(
        "select finished, busy, build_status from buildq.builds where id = any(%s)", (build_ids,)
    ).fetchall()
    released_after_finish = conn.execute(
        "select count(*) from buildq.build_events as r"
        " join buildq.build_events as f on f.build_id = r.build_id and f.event = 'finished'"
        " where r.event = 'released' and r.id > f.id and r.build_id = any(%s)",
        (build_ids,),
    ).fetchone()
    assert errors == []
    assert finish_wins == [1] * RACED_BUILDS
    assert max(release_wins) <= 1
    assert set(states) == {(1, 0, 0)}
    assert released_after_finish == (0,)
