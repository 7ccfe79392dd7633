"""End-to-end recovery tests of the runner.

A runner builds a claim whose result was lost, and its heartbeat goes on during the grace
period of a shutdown.
"""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg

from buildq.jobset import read_jobset, write_recipe

from .conftest import RUN_TIMEOUT, RUNNER, Cli, is_running, runner_counters, wait_for, write_jobset

# Seconds that a running build may take to end after SIGTERM in the grace period test.
# The test sends a second signal as soon as it has seen a heartbeat, so the happy path
# never waits this long.
LONG_GRACE_PERIOD = 40


def log_contains(directory: Path, text: str) -> bool:
    """Return whether a runner log written by Cli.start in ``directory`` contains ``text``."""
    return any(text in path.read_text() for path in directory.glob("runner-*.log"))


def test_orphaned_claim_is_built(cli: Cli, tmp_path: Path, conn: psycopg.Connection) -> None:
    jobset = read_jobset(write_jobset(tmp_path, {"orphan": {"command": "echo built"}}))
    job = jobset.jobs[0]
    drv_path = str(write_recipe(tmp_path / "store", jobset, job))
    runner = cli.start("run", "--runner-id", RUNNER, "--poll-interval", "0.5")
    try:
        # Builders start after clear_busy, so from now on only the monitor can release.
        wait_for(lambda: log_contains(tmp_path, "builder-1 started"), description="the builders")
        # Leave the build claimed by this runner but run by no builder, as a
        # claim_builds call whose result was lost does.
        with conn.transaction():
            [[build_id]] = conn.execute(
                "select buildq.queue_build('orphan', %s, %s)", (job.system, drv_path)
            )
            conn.execute("select buildq.claim_builds(%s)", (RUNNER,))
        wait_for(
            lambda: conn.execute(
                "select finished = 1 from buildq.builds where id = %s", (build_id,)
            ).fetchone() == (True,),
            timeout=RUN_TIMEOUT,
            description="the orphaned build to be built",
        )
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(RUN_TIMEOUT) == 0
    finally:
        runner.kill()

    row = conn.execute(
        "select build_status, attempt, finished_by from buildq.builds where id = %s", (build_id,)
    ).fetchone()
    events = conn.execute(
        "select event from buildq.build_events where build_id = %s and step_nr is null order by id",
        (build_id,),
    ).fetchall()
    assert row == (0, 2, RUNNER)
    assert [event for (event,) in events][:4] == ["queued", "claimed", "released", "claimed"]
    assert runner_counters(conn)["nr_builds_released"] == 1


def heartbeat_at(conn: psycopg.Connection) -> object:
    query = "select heartbeat_at from buildq.runners where id = %s"
    row = conn.execute(query, (RUNNER,)).fetchone()
    assert row is not None
    return row[0]


def test_heartbeat_during_grace_period(
    cli: Cli, tmp_path: Path, conn: psycopg.Connection
) -> None:
    cli.enqueue(write_jobset(tmp_path, {"sleeper": {"command": "exec sleep 60"}}))
    runner = cli.start(
        "run", "--runner-id", RUNNER, "--poll-interval", "0.5",
        "--heartbeat-interval", "0.5", "--grace-period", str(LONG_GRACE_PERIOD),
    )
    try:
        wait_for(lambda: is_running(conn, "sleeper"), description="the sleeper to start")
        runner.send_signal(signal.SIGTERM)
        # Once this line is logged, the main loop has ended. A runner that wrote heartbeats
        # only in the main loop would write the next one with the stop, after the whole
        # grace period.
        wait_for(
            lambda: log_contains(tmp_path, "stop requested"), description="the stop to begin"
        )
        before = heartbeat_at(conn)
        wait_for(
            lambda: conn.execute(
                "select heartbeat_at > %s and stopped_at is null from buildq.runners"
                " where id = %s",
                (before, RUNNER),
            ).fetchone() == (True,),
            timeout=LONG_GRACE_PERIOD / 2,
            description="a heartbeat during the grace period",
        )
        # A second signal ends the grace period at once.
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(RUN_TIMEOUT) == 0
    finally:
        runner.kill()

    row = conn.execute(
        "select stopped_at is not null from buildq.runners where id = %s", (RUNNER,)
    ).fetchone()
    assert row == (True,)
