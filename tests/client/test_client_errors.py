"""Database errors as buildq exceptions, and retries of transient ones."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from buildq.client import Build, BuildqClient
from buildq.errors import (
    BuildNotFound,
    InvalidArgument,
    InvalidStatus,
    InvalidTimeRange,
    StepNotFound,
    TransientDatabaseError,
)

MISSING_ID = 999_999


def missing_build() -> Build:
    return Build(id=MISSING_ID, job="ghost", system="x86_64-linux", drv_path="/store/x.recipe")


def terminate_backends(conn: psycopg.Connection, application_name: str) -> int:
    """Kill the server processes of every connection with this application_name."""
    row = conn.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity"
        " where application_name = %s and pid <> pg_backend_pid()",
        (application_name,),
    ).fetchone()
    assert row is not None
    return row[0]


def test_unknown_build_raises_not_found(client: BuildqClient) -> None:
    with pytest.raises(BuildNotFound) as caught:
        client.finish_build(missing_build(), 0)

    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert caught.value.__cause__.sqlstate == "BQ001"
    assert caught.value.sqlstate == "BQ001"


def test_error_leaves_flag_unset(client: BuildqClient) -> None:
    build = missing_build()

    with pytest.raises(BuildNotFound):
        client.abort_build(build, "gone")

    assert build.finished_in_db is False


def test_unknown_status_raises_invalid_status(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    with pytest.raises(InvalidStatus) as caught:
        client.finish_build(queued(), 5)

    assert caught.value.__cause__.sqlstate == "BQ003"  # type: ignore[union-attr]


def test_stop_before_start_raises_time_range(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    start = datetime.now(timezone.utc)

    with pytest.raises(InvalidTimeRange):
        client.finish_build(queued(), 0, start_time=start, stop_time=start - timedelta(seconds=1))


def test_empty_reason_raises_invalid_argument(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.abort_build(queued(), "")

    assert caught.value.__cause__.sqlstate == "22023"  # type: ignore[union-attr]


def test_unknown_step_raises_step_not_found(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    with pytest.raises(StepNotFound):
        client.finish_build_step(queued().id, 99, 0)


def test_permanent_error_is_not_retried(client: BuildqClient) -> None:
    with pytest.raises(BuildNotFound):
        client.finish_build(missing_build(), 0)

    assert client.counters.nr_retries == 0


def test_lost_connection_is_retried(
    make_client: Callable[..., BuildqClient],
    queued: Callable[..., Build],
    conn: psycopg.Connection,
) -> None:
    client = make_client(min_size=1, max_size=1, application_name="buildq-retry-test")
    client.count_queued()
    assert terminate_backends(conn, "buildq-retry-test") == 1

    assert client.finish_build(queued(), 0) is True
    assert client.counters.nr_retries >= 1
    assert client.counters.nr_builds_done == 1


def test_retries_end_with_transient_error(
    make_client: Callable[..., BuildqClient],
    queued: Callable[..., Build],
    conn: psycopg.Connection,
) -> None:
    client = make_client(
        min_size=1, max_size=1, retry_attempts=1, application_name="buildq-give-up-test"
    )
    build = queued()
    client.count_queued()
    terminate_backends(conn, "buildq-give-up-test")

    with pytest.raises(TransientDatabaseError) as caught:
        client.finish_build(build, 0)

    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert build.finished_in_db is False


class _LoseResultAfterCommit:
    """Stand-in for the client's pool whose first call of ``function`` commits and then fails.

    The failure looks like a connection that broke before the result arrived.
    """

    def __init__(self, pool: Any, function: str) -> None:
        self._pool = pool
        self._function = function
        self.failures = 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            yield _Connection(conn, self)


@dataclasses.dataclass
class _Connection:
    conn: psycopg.Connection
    owner: _LoseResultAfterCommit

    def execute(self, query: Any, params: Any = None) -> Any:
        cursor = self.conn.execute(query, params)
        text = query.as_string(self.conn) if hasattr(query, "as_string") else str(query)
        if self.owner._function in text and self.owner.failures == 0:
            self.owner.failures += 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return cursor


def test_result_lost_after_commit_counts_once(
    client: BuildqClient, queued: Callable[..., Build], monkeypatch: pytest.MonkeyPatch
) -> None:
    build = queued()
    stop_time = datetime.now(timezone.utc)
    flaky = _LoseResultAfterCommit(client._pool, '"finish_build"')
    monkeypatch.setattr(client, "_pool", flaky)

    assert client.finish_build(build, 0, start_time=stop_time, stop_time=stop_time) is True
    assert flaky.failures == 1
    assert client.counters.nr_builds_done == 1
    assert client.counters.nr_builds_lost == 0


def test_result_lost_after_other_finish_is_lost(
    client: BuildqClient, queued: Callable[..., Build], monkeypatch: pytest.MonkeyPatch
) -> None:
    build = queued()
    client.finish_build(dataclasses.replace(build), 1, error_msg="someone else")
    flaky = _LoseResultAfterCommit(client._pool, '"finish_build"')
    monkeypatch.setattr(client, "_pool", flaky)

    assert client.finish_build(build, 0) is False
    assert flaky.failures == 1
    assert client.counters.nr_builds_done == 1
    assert client.counters.nr_builds_lost == 1
