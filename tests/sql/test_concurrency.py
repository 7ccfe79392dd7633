"""Races between callers of the buildq functions, on real threads and connections.

Every test runs rounds in which THREADS threads, each on its own autocommit
connection, are released together by a barrier and call a function on the
same build, step or runner. The guarded functions must let exactly one
caller change each row and tell every other caller that it changed nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

THREADS = 8
RACED_BUILDS = 200
RACED_STEPS = 100
# Seconds a thread waits at a barrier before the race is declared stuck.
BARRIER_TIMEOUT = 60

Outcome = Any  # a call's return value, or the psycopg.Error it raised


def race(
    db,
    rounds: int,
    call: Callable[[psycopg.Connection, int, int], Any],
    stop: Callable[[list[Outcome]], bool] | None = None,
) -> list[list[Outcome]]:
    """Run call(conn, round_nr, thread_nr) on THREADS threads for up to `rounds` rounds.

    Each thread has its own connection. A barrier releases all threads at the
    start of a round, and a second one waits until all have returned, so that
    every thread has the outcomes of the whole round when `stop` decides
    whether the race ends there. Returns one list of THREADS outcomes per
    round that ran.
    """
    round_start = threading.Barrier(THREADS, timeout=BARRIER_TIMEOUT)
    round_end = threading.Barrier(THREADS, timeout=BARRIER_TIMEOUT)
    outcomes: list[list[Outcome]] = [[None] * THREADS for _ in range(rounds)]
    rounds_run = [rounds]

    def run_thread(thread_nr: int) -> None:
        try:
            with db.connect() as conn:
                for round_nr in range(rounds):
                    round_start.wait()
                    try:
                        outcomes[round_nr][thread_nr] = call(conn, round_nr, thread_nr)
                    except psycopg.Error as exc:
                        outcomes[round_nr][thread_nr] = exc
                    round_end.wait()
                    if stop is not None and stop(outcomes[round_nr]):
                        rounds_run[0] = round_nr + 1
                        return
        except BaseException:
            # Release the other threads instead of leaving them at a barrier.
            round_start.abort()
            round_end.abort()
            raise

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        threads = [pool.submit(run_thread, thread_nr) for thread_nr in range(THREADS)]
        for thread in threads:
            thread.result()
    return outcomes[: rounds_run[0]]


def errors_in(outcomes: list[list[Outcome]]) -> list[str]:
    return [
        f"round {round_nr}, thread {thread_nr}: {outcome.sqlstate} {outcome}"
        for round_nr, round_outcomes in enumerate(outcomes)
        for thread_nr, outcome in enumerate(round_outcomes)
        if isinstance(outcome, psycopg.Error)
    ]


def one_value(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def queue_builds(conn: psycopg.Connection, count: int) -> list[int]:
    rows = conn.execute(
        "select buildq.queue_build('race', 'x86_64-linux', '/nix/store/r-race-' || n || '.drv')"
        " from generate_series(1, %s) as n",
        (count,),
    ).fetchall()
    return [row[0] for row in rows]


# Even threads finish the build with their own status, odd threads abort it.
FINISH_STATUSES = {0: 0, 2: 1, 4: 6, 6: 7}


def expected_finish(thread_nr: int) -> dict[str, Any]:
    """Return the build row columns that thread_nr writes when it wins."""
    name = f"thread-{thread_nr}"
    if thread_nr in FINISH_STATUSES:
        return {
            "finished_by": name,
            "build_status": FINISH_STATUSES[thread_nr],
            "error_msg": f"finished by {name}",
            "size": 100 * (thread_nr + 1),
        }
    return {
        "finished_by": name,
        "build_status": 3,
        "error_msg": f"aborted by {name}",
        "size": None,
    }


def test_finish_abort_race_one_winner(db, conn):
    build_ids = queue_builds(conn, RACED_BUILDS)

    def finish_or_abort(conn, round_nr, thread_nr):
        build_id = build_ids[round_nr]
        values = expected_finish(thread_nr)
        if thread_nr in FINISH_STATUSES:
            return one_value(
                conn,
                "select buildq.finish_build(%s, %s, size => %s, error_msg => %s,"
                " finished_by => %s)",
                (
                    build_id,
                    values["build_status"],
                    values["size"],
                    values["error_msg"],
                    values["finished_by"],
                ),
            )
        return one_value(
            conn,
            "select buildq.abort_build(%s, %s, finished_by => %s)",
            (build_id, values["error_msg"], values["finished_by"]),
        )

    outcomes = race(db, RACED_BUILDS, finish_or_abort)

    assert errors_in(outcomes) == []
    winners = {
        build_ids[round_nr]: [t for t, outcome in enumerate(results) if outcome is True]
        for round_nr, results in enumerate(outcomes)
    }
    losers = Counter(outcome for results in outcomes for outcome in results if outcome is not True)
    assert {build_id: len(w) for build_id, w in winners.items() if len(w) != 1} == {}
    assert losers == Counter({False: RACED_BUILDS * (THREADS - 1)})

    rows = conn.execute(
        "select id, finished_by, build_status, error_msg, size from buildq.builds"
    ).fetchall()
    mismatched = [
        row
        for row in rows
        if dict(zip(("finished_by", "build_status", "error_msg", "size"), row[1:]))
        != expected_finish(winners[row[0]][0])
    ]
    assert mismatched == []


def test_concurrent_claims_each_build_once(db, conn):
    build_ids = queue_builds(conn, 400)

    def claim(conn, round_nr, thread_nr):
        rows = conn.execute(
            "select id from buildq.claim_builds(%s, max_count => 3)", (f"runner-{thread_nr}",)
        ).fetchall()
        return [row[0] for row in rows]

    # The race ends with the first round in which no claimer got a build.
    outcomes = race(db, 500, claim, stop=lambda results: all(r == [] for r in results))

    assert errors_in(outcomes) == []
    handed_out = Counter(
        build_id for results in outcomes for claimed in results for build_id in claimed
    )
    assert [build_id for build_id, count in handed_out.items() if count > 1] == []
    assert sorted(handed_out) == sorted(build_ids)

    receivers = {
        build_id: f"runner-{thread_nr}"
        for results in outcomes
        for thread_nr, claimed in enumerate(results)
        for build_id in claimed
    }
    rows = conn.execute("select id, claimed_by, attempt from buildq.builds").fetchall()
    assert [row for row in rows if row[1] != receivers.get(row[0])] == []
    assert [row for row in rows if row[2] != 1] == []


def test_concurrent_step_allocation_no_gaps(db, conn, new_build):
    build_id = new_build()
    rounds = 25

    def create_step(conn, round_nr, thread_nr):
        return one_value(
            conn,
            "select buildq.create_build_step(%s, runner => %s)",
            (build_id, f"runner-{thread_nr}"),
        )

    outcomes = race(db, rounds, create_step)

    assert errors_in(outcomes) == []
    numbers = [step_nr for results in outcomes for step_nr in results]
    assert sorted(numbers) == list(range(1, rounds * THREADS + 1))

    rows = conn.execute(
        "select step_nr, runner from buildq.build_steps where build_id = %s order by step_nr",
        (build_id,),
    ).fetchall()
    owners = {
        step_nr: f"runner-{thread_nr}"
        for results in outcomes
        for thread_nr, step_nr in enumerate(results)
    }
    assert [row[0] for row in rows] == list(range(1, rounds * THREADS + 1))
    assert [row for row in rows if owners[row[0]] != row[1]] == []
    assert one_value(
        conn, "select last_step_nr from buildq.builds where id = %s", (build_id,)
    ) == rounds * THREADS


# Status that thread_nr records when it finishes a step.
STEP_STATUSES = [0, 1, 3, 4, 6, 7, 8, 9]


def test_finish_step_race_one_winner(db, conn, new_build):
    build_id = new_build()
    conn.execute(
        "select buildq.create_build_step(%s) from generate_series(1, %s)",
        (build_id, RACED_STEPS),
    )

    def finish_step(conn, round_nr, thread_nr):
        return one_value(
            conn,
            "select buildq.finish_build_step(%s, %s, %s, machine => %s)",
            (build_id, round_nr + 1, STEP_STATUSES[thread_nr], f"machine-{thread_nr}"),
        )

    outcomes = race(db, RACED_STEPS, finish_step)

    assert errors_in(outcomes) == []
    winners = {
        round_nr + 1: [t for t, outcome in enumerate(results) if outcome is True]
        for round_nr, results in enumerate(outcomes)
    }
    assert {step_nr: len(w) for step_nr, w in winners.items() if len(w) != 1} == {}

    rows = conn.execute(
        "select step_nr, status, machine from buildq.build_steps where build_id = %s",
        (build_id,),
    ).fetchall()
    mismatched = [
        row
        for row in rows
        if (row[1], row[2])
        != (STEP_STATUSES[winners[row[0]][0]], f"machine-{winners[row[0]][0]}")
    ]
    assert mismatched == []


def test_concurrent_clear_busy_counts_once(db, conn):
    rounds = 25
    build_ids = queue_builds(conn, rounds)
    for round_nr, build_id in enumerate(build_ids):
        runner = f"runner-{round_nr}"
        conn.execute("select * from buildq.claim_builds(%s)", (runner,))
        conn.execute(
            "select buildq.create_build_step(%s, runner => %s) from generate_series(1, 2)",
            (build_id, runner),
        )

    def clear(conn, round_nr, thread_nr):
        return one_value(conn, "select buildq.clear_busy(%s)", (f"runner-{round_nr}",))

    outcomes = race(db, rounds, clear)

    assert errors_in(outcomes) == []
    # One claimed build and two busy steps per runner: three rows in all.
    assert [sum(results) for results in outcomes] == [3] * rounds
    assert one_value(conn, "select count(*) from buildq.build_steps where busy <> 0") == 0
    assert one_value(conn, "select count(*) from buildq.builds where busy <> 0") == 0


def test_concurrent_queue_distinct_ids(db, conn):
    rounds = 25

    def queue(conn, round_nr, thread_nr):
        return one_value(
            conn, "select buildq.queue_build('race', 'x86_64-linux', '/nix/store/q-race.drv')"
        )

    outcomes = race(db, rounds, queue)

    assert errors_in(outcomes) == []
    ids = [build_id for results in outcomes for build_id in results]
    assert len(set(ids)) == rounds * THREADS
    assert one_value(conn, "select count(*) from buildq.builds") == rounds * THREADS

