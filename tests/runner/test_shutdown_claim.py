"""A build claimed after the shutdown stopped the running builds is never started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from buildq.builder import Builder, BuilderSettings
from buildq.client import Build, BuildqClient
from buildq.counters import Counters
from buildq.jobset import read_jobset, write_recipe
from buildq.runstate import RunState, StopReason

from .conftest import RUNNER, write_jobset

SHUTDOWN_MESSAGE = "the runner shut down before the build ended"


@pytest.fixture
def client(db: Any) -> Iterator[BuildqClient]:
    with BuildqClient(conninfo=db.dsn, runner_id=RUNNER, retry_base_delay=0.01) as opened:
        yield opened


def test_running_build_added_after_stop_all() -> None:
    state = RunState(Counters())
    state.stop_all_running(SHUTDOWN_MESSAGE)

    running = state.add_running(Build(id=1, job="late", system="x", drv_path="/x", attempt=1))

    assert running.stop.is_set()
    assert running.stop_reason is StopReason.SHUTDOWN
    assert running.stop_message == SHUTDOWN_MESSAGE


def test_claim_after_stop_all_is_not_built(
    client: BuildqClient, conn: psycopg.Connection, tmp_path: Path
) -> None:
    jobset = read_jobset(write_jobset(tmp_path, {"late": {"command": "true"}}))
    job = jobset.jobs[0]
    recipe_path = write_recipe(tmp_path / "store", jobset, job)
    build_id = client.queue_build(job=job.name, system=job.system, drv_path=str(recipe_path))
    state = RunState(client.counters)
    state.first_scan_done.set()
    settings = BuilderSettings(
        systems=(job.system,),
        log_dir=tmp_path / "logs",
        work_dir=tmp_path / "work",
        max_log_bytes=10_000,
        poll_interval=0.1,
    )
    builder = Builder(number=1, client=client, state=state, settings=settings)
    # The builder's claim returns after the main thread stopped every running build.
    state.stop_all_running(SHUTDOWN_MESSAGE)

    assert builder._claim_and_build() is True

    row = conn.execute(
        "select finished, busy, claimed_by from buildq.builds where id = %s", (build_id,)
    ).fetchone()
    assert row == (0, 1, RUNNER)
    assert conn.execute("select count(*) from buildq.build_steps").fetchone() == (0,)
    assert state.running_builds() == []
