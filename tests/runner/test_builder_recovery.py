"""A builder gives back a build it cannot record and skips cached builds.

The monitor releases claims that no builder runs. The tests call the threads' methods
directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from buildq.builder import Builder, BuilderSettings
from buildq.client import Build, BuildqClient
from buildq.errors import InvalidArgument, TransientDatabaseError
from buildq.jobset import read_jobset, write_recipe
from buildq.monitor import QueueMonitor
from buildq.runstate import RunState

from .conftest import RUNNER, write_jobset


class FailingClient(BuildqClient):
    """Client whose finish_build or finish_build_step raises a chosen error."""

    def __init__(self, *, failing: str, error: Exception, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failing = failing
        self.error = error

    def finish_build(self, *args: Any, **kwargs: Any) -> bool:
        if self.failing == "finish_build":
            raise self.error
        return super().finish_build(*args, **kwargs)

    def finish_build_step(self, *args: Any, **kwargs: Any) -> bool:
        if self.failing == "finish_build_step":
            raise self.error
        return super().finish_build_step(*args, **kwargs)


@pytest.fixture
def open_client(db: Any) -> Iterator[Any]:
    """Return a function that opens a ``cls`` client for RUNNER, closing each at teardown."""
    clients: list[BuildqClient] = []

    def make(cls: type[BuildqClient] = BuildqClient, **kwargs: Any) -> BuildqClient:
        client = cls(conninfo=db.dsn, runner_id=RUNNER, retry_base_delay=0.01, **kwargs)
        client.open()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def recipe(tmp_path: Path) -> tuple[str, str]:
    """Write the recipe of a job that succeeds and return (system, drv_path)."""
    jobset = read_jobset(write_jobset(tmp_path, {"job": {"command": "echo 42 > $out/answer"}}))
    job = jobset.jobs[0]
    return job.system, str(write_recipe(tmp_path / "store", jobset, job))


def make_builder(client: BuildqClient, system: str, tmp_path: Path) -> Builder:
    state = RunState(client.counters)
    state.first_scan_done.set()
    settings = BuilderSettings(
        systems=(system,),
        log_dir=tmp_path / "logs",
        work_dir=tmp_path / "work",
        max_log_bytes=10_000,
        poll_interval=0.1,
    )
    return Builder(number=1, client=client, state=state, settings=settings)


def build_row(conn: psycopg.Connection, build_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "select finished, busy, claimed_by, attempt, build_status, is_cached_build"
        " from buildq.builds where id = %s",
        (build_id,),
    ).fetchone()
    assert row is not None
    return row


def steps(conn: psycopg.Connection, build_id: int) -> list[tuple[int, int | None]]:
    return conn.execute(
        "select busy, status from buildq.build_steps where build_id = %s order by step_nr",
        (build_id,),
    ).fetchall()


def test_failed_finish_releases_build(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    system, drv_path = recipe
    error = TransientDatabaseError("connection lost")
    client = open_client(FailingClient, failing="finish_build", error=error)
    build_id = client.queue_build(job="job", system=system, drv_path=drv_path)
    builder = make_builder(client, system, tmp_path)

    assert builder._claim_and_build() is True

    assert build_row(conn, build_id) == (0, 0, None, 1, None, False)
    assert steps(conn, build_id) == [(0, 0)]
    assert client.counters.nr_builds_released == 1
    assert client.counters.nr_errors == 1


def test_failed_step_finish_aborts_step(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    system, drv_path = recipe
    error = TransientDatabaseError("connection lost")
    client = open_client(FailingClient, failing="finish_build_step", error=error)
    build_id = client.queue_build(job="job", system=system, drv_path=drv_path)
    builder = make_builder(client, system, tmp_path)

    builder._claim_and_build()

    assert build_row(conn, build_id) == (0, 0, None, 1, None, False)
    assert steps(conn, build_id) == [(0, 3)]


def test_invalid_finish_aborts_build(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    system, drv_path = recipe
    error = InvalidArgument("size -1 must not be negative")
    client = open_client(FailingClient, failing="finish_build", error=error)
    build_id = client.queue_build(job="job", system=system, drv_path=drv_path)
    builder = make_builder(client, system, tmp_path)

    builder._claim_and_build()

    message = conn.execute("select error_msg from buildq.builds where id = %s", (build_id,))
    assert build_row(conn, build_id) == (1, 0, None, 1, 3, False)
    expected = "the runner cannot record the result: size -1 must not be negative"
    assert message.fetchone() == (expected,)
    assert client.counters.nr_builds_released == 0


def test_claimed_build_of_built_recipe_is_cached(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    system, drv_path = recipe
    client = open_client()
    first = client.queue_build(job="job", system=system, drv_path=drv_path)
    conn.execute(
        "select buildq.finish_build(%s, 0, size => 3, release_name => 'answer-1')", (first,)
    )
    second = client.queue_build(job="job", system=system, drv_path=drv_path)
    # No queue monitor runs, so the builder claims the build before any scan saw it.
    builder = make_builder(client, system, tmp_path)

    assert builder._claim_and_build() is True

    size = conn.execute("select size, release_name from buildq.builds where id = %s", (second,))
    assert build_row(conn, second) == (1, 0, None, 1, 0, True)
    assert size.fetchone() == (3, "answer-1")
    assert steps(conn, second) == []
    assert client.counters.nr_builds_cached == 1
    assert client.counters.nr_builds_done == 1


def make_monitor(client: BuildqClient, system: str) -> QueueMonitor:
    return QueueMonitor(
        client=client, state=RunState(client.counters), systems=(system,), poll_interval=60
    )


def claim_in_sql(conn: psycopg.Connection, system: str, drv_path: str) -> int:
    """Queue a build and claim it for RUNNER in one transaction, and return its id.

    The build ends up claimed by RUNNER with no builder running it, as after a claim
    whose result was lost with its connection.
    """
    with conn.transaction():
        conn.execute("select buildq.queue_build('job', %s, %s)", (system, drv_path))
        [[build_id]] = conn.execute("select id from buildq.claim_builds(%s)", (RUNNER,))
    return build_id


def test_monitor_releases_orphaned_claim(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection
) -> None:
    system, drv_path = recipe
    client = open_client()
    build_id = claim_in_sql(conn, system, drv_path)
    monitor = make_monitor(client, system)

    monitor.release_orphaned_claims()

    assert build_row(conn, build_id) == (0, 0, None, 1, None, False)
    assert client.counters.nr_builds_released == 1


def test_monitor_keeps_running_claim(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection
) -> None:
    system, drv_path = recipe
    client = open_client()
    build_id = claim_in_sql(conn, system, drv_path)
    monitor = make_monitor(client, system)
    running = Build(id=build_id, job="job", system=system, drv_path=drv_path, attempt=1)
    monitor.state.add_running(running)

    monitor.release_orphaned_claims()

    assert build_row(conn, build_id) == (0, 1, RUNNER, 1, None, False)


def test_monitor_waits_for_pending_claim(
    open_client: Any, recipe: tuple[str, str], conn: psycopg.Connection
) -> None:
    system, drv_path = recipe
    client = open_client()
    build_id = claim_in_sql(conn, system, drv_path)
    monitor = make_monitor(client, system)
    # A builder's claim_builds call has not returned yet, and its build may be this one.
    monitor.state.begin_claim()

    monitor.release_orphaned_claims()

    assert build_row(conn, build_id) == (0, 1, RUNNER, 1, None, False)
