"""Cancelling a build while a runner builds it, across connections."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from tests.conftest import Database

RUNNER = "runner-1"


def simulate_builder(db: Database, ready: threading.Event) -> dict[str, Any]:
    """Claim a build, start a step, wait for its cancel, then finish as a runner would."""
    outcome: dict[str, Any] = {}
    with db.connect() as runner:
        runner.execute("listen builds_cancelled")
        claimed = runner.execute("select id, attempt from buildq.claim_builds(%s)", (RUNNER,)).fetchone()
        assert claimed is not None, "the builder claimed nothing"
        build_id, attempt = claimed
        step_row = runner.execute(
            "select buildq.create_build_step(%s, runner => %s, attempt => %s)",
            (build_id, RUNNER, attempt),
        ).fetchone()
        assert step_row is not None
        ready.set()

        notifications = list(runner.notifies(timeout=5, stop_after=1))
        outcome["noticed_at"] = time.monotonic()
        outcome["payloads"] = [n.payload for n in notifications]

        # The runner kills the process, then records what it saw.
        outcome["step_finished"] = runner.execute(
            "select buildq.finish_build_step(%s, %s, 4)", (build_id, step_row[0])
        ).fetchone()[0]
        outcome["build_finished"] = runner.execute(
            "select buildq.finish_build(%s, 0, finished_by => %s, attempt => %s)",
            (build_id, RUNNER, attempt),
        ).fetchone()[0]
    return outcome


def test_cancel_reaches_running_builder(db, conn, queue, scalar):
    build_id = queue()
    ready = threading.Event()

    with ThreadPoolExecutor(max_workers=1) as pool:
        builder = pool.submit(simulate_builder, db, ready)
        assert ready.wait(5), "the builder did not start its step"
        cancelled_at = time.monotonic()
        cancelled = scalar("select buildq.cancel_build(%s)", (build_id,))
        outcome = builder.result(timeout=10)

    assert cancelled is True
    assert outcome["payloads"] == [str(build_id)]
    assert outcome["noticed_at"] - cancelled_at < 2
    assert outcome["step_finished"] is True
    assert outcome["build_finished"] is False
    assert scalar("select build_status from buildq.builds where id = %s", (build_id,)) == 4
    assert scalar("select finished_by from buildq.builds where id = %s", (build_id,)) == "postgres"


def test_finish_waiting_on_cancel_returns_false(db, conn, queue, scalar):
    build_id = queue()
    attempt = scalar("select attempt from buildq.claim_builds(%s)", (RUNNER,))

    with db.connect() as operator, ThreadPoolExecutor(max_workers=1) as pool:
        operator.execute("begin")
        assert operator.execute("select buildq.cancel_build(%s)", (build_id,)).fetchone()[0] is True

        def finish() -> bool:
            with db.connect() as runner:
                return runner.execute(
                    "select buildq.finish_build(%s, 0, attempt => %s)", (build_id, attempt)
                ).fetchone()[0]

        late = pool.submit(finish)
        time.sleep(0.3)
        blocked = not late.done()
        operator.execute("commit")
        finished = late.result(timeout=5)

    assert blocked, "finish_build did not wait for the cancel's row lock"
    assert finished is False
    assert scalar("select build_status from buildq.builds where id = %s", (build_id,)) == 4


def test_cancel_of_other_build_not_noticed(db, conn, queue, scalar):
    running = queue("running")
    other = queue("other")
    scalar("select count(*) from buildq.claim_builds(%s)", (RUNNER,))

    with db.connect() as runner:
        runner.execute("listen builds_cancelled")
        scalar("select buildq.cancel_build(%s)", (other,))
        payloads = [n.payload for n in runner.notifies(timeout=2, stop_after=1)]

    assert payloads == [str(other)]
    assert scalar("select busy from buildq.builds where id = %s", (running,)) == 1


def test_cancel_rolled_back_not_notified(db, conn, queue):
    build_id = queue()

    with db.connect() as runner, db.connect() as operator:
        runner.execute("listen builds_cancelled")
        operator.execute("begin")
        operator.execute("select buildq.cancel_build(%s)", (build_id,))
        operator.execute("rollback")
        payloads = [n.payload for n in runner.notifies(timeout=1)]

    assert payloads == []


def test_cancel_from_psql_session(db, queue, scalar):
    build_id = queue()

    with psycopg.connect(db.dsn, autocommit=True, application_name="psql") as person:
        person.execute("select buildq.cancel_build(%s, 'wrong branch')", (build_id,))

    assert scalar(
        "select application_name from buildq.build_events where build_id = %s and event = 'cancelled'",
        (build_id,),
    ) == "psql"


def test_cancel_builds_lost_race_keeps_others(db, conn, queue, scalar):
    raced, second, third = queue("raced"), queue("second"), queue("third")

    with db.connect() as runner, ThreadPoolExecutor(max_workers=1) as pool:
        runner.execute("begin")
        runner.execute("select buildq.finish_build(%s, 0)", (raced,))

        def cancel_all() -> list[int]:
            with db.connect() as operator:
                rows = operator.execute(
                    "select * from buildq.cancel_builds(%s)", ([raced, second, third],)
                ).fetchall()
            return [row[0] for row in rows]

        cancelling = pool.submit(cancel_all)
        time.sleep(0.3)
        blocked = not cancelling.done()
        runner.execute("commit")
        cancelled = cancelling.result(timeout=5)

    assert blocked, "cancel_builds did not wait for the runner's row lock"
    assert cancelled == [second, third]
    assert scalar("select build_status from buildq.builds where id = %s", (raced,)) == 0
