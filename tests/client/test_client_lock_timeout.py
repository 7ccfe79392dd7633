"""The client's lock_timeout, which is set on every connection.

A row lock held in an open transaction makes a finish fail after its retries instead of
waiting forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from buildq.client import Build, BuildqClient
from buildq.errors import TransientDatabaseError

# Seconds a test waits for a call that must end on its own. It only bounds a failing
# test, so it is far above the lock timeouts of these tests.
CALL_DEADLINE = 120.0


def show_lock_timeout(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("show lock_timeout").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def lock_holder(db: Any) -> Iterator[psycopg.Connection[Any]]:
    """Connection outside autocommit, like a psql session after `begin`, rolled back at the end."""
    with db.connect(autocommit=False) as holder:
        yield holder
        holder.rollback()


def lock_build_row(holder: psycopg.Connection[Any], build_id: int) -> None:
    """Take the row lock of a build in the holder's open transaction."""
    holder.execute("select id from buildq.builds where id = %s for update", (build_id,))


@pytest.fixture
def background(lock_holder: psycopg.Connection[Any]) -> Iterator[ThreadPoolExecutor]:
    """One worker thread for a call that may block on the lock holder's locks.

    The teardown does not wait for the thread, because a call still blocked by a failing
    test ends when the lock holder's teardown, which runs after this one, rolls back.
    """
    executor = ThreadPoolExecutor(max_workers=1)
    yield executor
    executor.shutdown(wait=False)


def test_default_lock_timeout_is_30s(make_client: Callable[..., BuildqClient]) -> None:
    client = make_client()

    with client._pool.connection() as conn:
        assert show_lock_timeout(conn) == "30s"


def test_lock_timeout_reaches_pooled_connections(
    make_client: Callable[..., BuildqClient],
) -> None:
    client = make_client(lock_timeout=0.2, min_size=2, max_size=2)

    # Both connections of the pool at once, so each one is checked.
    with client._pool.connection() as first, client._pool.connection() as second:
        assert first.info.backend_pid != second.info.backend_pid
        assert show_lock_timeout(first) == "200ms"
        assert show_lock_timeout(second) == "200ms"


def test_lock_timeout_reaches_listen_connection(
    make_client: Callable[..., BuildqClient],
) -> None:
    client = make_client(lock_timeout=0.2)

    with client.connect() as listener:
        assert show_lock_timeout(listener) == "200ms"


def test_lock_timeout_zero_means_no_limit(make_client: Callable[..., BuildqClient]) -> None:
    client = make_client(lock_timeout=0)

    with client._pool.connection() as conn:
        assert show_lock_timeout(conn) == "0"


def test_tiny_lock_timeout_stays_a_limit(make_client: Callable[..., BuildqClient]) -> None:
    client = make_client(lock_timeout=0.0001)

    with client._pool.connection() as conn:
        assert show_lock_timeout(conn) == "1ms"


def test_lock_timeout_none_keeps_server_setting(db: Any) -> None:
    conninfo = make_conninfo(db.dsn, options="-c lock_timeout=4500")
    client = BuildqClient(conninfo=conninfo, lock_timeout=None)
    with client:
        with client._pool.connection() as conn:
            assert show_lock_timeout(conn) == "4500ms"


def test_lock_timeout_keeps_conninfo_options(db: Any) -> None:
    conninfo = make_conninfo(db.dsn, options="-c statement_timeout=7000")
    client = BuildqClient(conninfo=conninfo, lock_timeout=0.2)
    with client:
        with client._pool.connection() as conn:
            row = conn.execute("show statement_timeout").fetchone()
            assert row is not None
            assert row[0] == "7s"
            assert show_lock_timeout(conn) == "200ms"


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), 2_147_484.0])
def test_invalid_lock_timeout_raises(seconds: float) -> None:
    with pytest.raises(ValueError, match="lock_timeout"):
        BuildqClient(lock_timeout=seconds)


def test_locked_row_fails_finish_after_retries(
    make_client: Callable[..., BuildqClient],
    queued: Callable[..., Build],
    lock_holder: psycopg.Connection[Any],
    background: ThreadPoolExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(lock_timeout=0.2, retry_attempts=2)
    build = queued()
    lock_build_row(lock_holder, build.id)

    caplog.set_level(logging.WARNING, logger="buildq.client")
    call = background.submit(client.finish_build, build, 0)
    with pytest.raises(TransientDatabaseError) as caught:
        call.result(timeout=CALL_DEADLINE)

    assert caught.value.sqlstate == "55P03"
    assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
    assert build.finished_in_db is False
    assert client.counters.nr_retries == 1
    assert client.counters.nr_builds_done == 0
    retry_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retry_lines) == 1
    assert f"finish_build (build {build.id})" in retry_lines[0]
    assert "lock wait timed out after 0.2 s" in retry_lines[0]
    assert "idle in transaction" in retry_lines[0]
    error_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(error_lines) == 1
    assert f"finish_build (build {build.id})" in error_lines[0]
    assert "lock wait timed out after 0.2 s, try 2 of 2, giving up" in error_lines[0]

    lock_holder.rollback()

    assert client.finish_build(build, 0) is True
    assert build.finished_in_db is True
    assert client.counters.nr_builds_done == 1


def test_locked_row_released_finish_succeeds(
    make_client: Callable[..., BuildqClient],
    queued: Callable[..., Build],
    lock_holder: psycopg.Connection[Any],
    background: ThreadPoolExecutor,
) -> None:
    client = make_client(lock_timeout=0.2, retry_attempts=1000, retry_max_delay=0.05)
    build = queued()
    lock_build_row(lock_holder, build.id)

    call = background.submit(client.finish_build, build, 0)
    wait_for_retry(client, call)
    lock_holder.commit()

    assert call.result(timeout=CALL_DEADLINE) is True
    assert client.counters.nr_builds_done == 1


def test_lock_timeout_retry_not_counted_as_ours(
    make_client: Callable[..., BuildqClient],
    queued: Callable[..., Build],
    lock_holder: psycopg.Connection[Any],
    background: ThreadPoolExecutor,
) -> None:
    """A lock timeout rolls the try back, so a false result after it is another actor's.

    The holder finishes the build with this runner's id, status, message and stop time.
    A client that took the lock timeout for a possible commit would find that row and
    count the finish as its own.
    """
    client = make_client(lock_timeout=0.2, retry_attempts=1000, retry_max_delay=0.05)
    build = queued()
    stop_time = datetime.now(timezone.utc)
    lock_holder.execute(
        "select buildq.finish_build(build_id => %(id)s, status => 1, start_time => %(time)s,"
        " stop_time => %(time)s, error_msg => 'failed', finished_by => %(runner)s)",
        {"id": build.id, "time": stop_time, "runner": client.runner_id},
    )

    call = background.submit(
        client.finish_build,
        build,
        1,
        start_time=stop_time,
        stop_time=stop_time,
        error_msg="failed",
    )
    wait_for_retry(client, call)
    lock_holder.commit()

    assert call.result(timeout=CALL_DEADLINE) is False
    assert build.finished_in_db is True
    assert client.counters.nr_builds_done == 0
    assert client.counters.nr_builds_lost == 1


def wait_for_retry(client: BuildqClient, call: Future[Any]) -> None:
    """Wait until the client has retried once, which only a lock timeout causes here."""
    deadline = time.monotonic() + CALL_DEADLINE
    while client.counters.nr_retries == 0:
        assert not call.done(), "the call ended before the lock was released"
        assert time.monotonic() < deadline, f"no retry within {CALL_DEADLINE} s"
        time.sleep(0.05)
