"""The client's rules for finished_in_db and nr_builds_done, including lost races."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import psycopg
import pytest

from buildq.client import Build, BuildqClient

from .conftest import RUNNER

# Seconds a finishing thread of a test may take before the test fails instead of hanging.
THREAD_TIMEOUT = 30.0


def finished(conn: psycopg.Connection, build_id: int) -> int:
    row = conn.execute("select finished from buildq.builds where id = %s", (build_id,)).fetchone()
    assert row is not None
    return row[0]


def test_finish_returns_true_then_false(client: BuildqClient, queued: Callable[..., Build]) -> None:
    build = queued()
    other = dataclasses.replace(build)

    assert client.finish_build(build, 0) is True
    assert client.finish_build(other, 1) is False


def test_finish_sets_flag_on_both_results(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    build = queued()
    other = dataclasses.replace(build)

    client.finish_build(build, 0)
    client.finish_build(other, 1)

    assert build.finished_in_db is True
    assert other.finished_in_db is True


def test_done_counter_grows_once(client: BuildqClient, queued: Callable[..., Build]) -> None:
    build = queued()

    client.finish_build(build, 0)
    client.abort_build(dataclasses.replace(build, finished_in_db=False), "late abort")

    assert client.counters.nr_builds_done == 1
    assert client.counters.nr_builds_lost == 1


def test_lost_finish_keeps_winner(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    build = queued()

    client.finish_build(build, 0)
    client.finish_build(dataclasses.replace(build, finished_in_db=False), 1, error_msg="late")

    row = conn.execute(
        "select build_status, error_msg, finished_by from buildq.builds where id = %s", (build.id,)
    ).fetchone()
    assert row == (0, None, RUNNER)


@pytest.mark.parametrize("method", ["finish_build", "abort_build", "finish_cached_build"])
def test_flagged_build_is_not_sent(
    method: str, client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    build = queued()
    build.finished_in_db = True
    calls = {
        "finish_build": lambda: client.finish_build(build, 0),
        "abort_build": lambda: client.abort_build(build, "gone"),
        "finish_cached_build": lambda: client.finish_cached_build(build),
    }

    assert calls[method]() is False
    assert finished(conn, build.id) == 0
    assert client.counters.nr_builds_done == 0
    assert client.counters.nr_builds_lost == 0


def test_flagged_build_needs_no_connection(
    make_client: Callable[..., BuildqClient], queued: Callable[..., Build]
) -> None:
    build = queued()
    build.finished_in_db = True
    closed = make_client(retry_attempts=1)
    closed.close()

    assert closed.finish_build(build, 0) is False
    assert closed.create_build_step(build) is None


def test_flagged_build_gets_no_step(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    build = queued()
    build.finished_in_db = True

    assert client.create_build_step(build) is None
    row = conn.execute("select count(*) from buildq.build_steps").fetchone()
    assert row == (0,)


def test_lost_race_across_clients(
    make_client: Callable[..., BuildqClient], queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    monitor_side = make_client(runner_id="runner-a")
    builder_side = make_client(runner_id="runner-b")
    seen_by_a = queued()
    seen_by_b = dataclasses.replace(seen_by_a)

    assert monitor_side.abort_build(seen_by_a, "derivation was garbage-collected prior to build")
    assert builder_side.finish_build(seen_by_b, 0) is False
    assert seen_by_b.finished_in_db is True
    assert monitor_side.counters.nr_builds_done == 1
    assert builder_side.counters.nr_builds_done == 0
    row = conn.execute("select build_status, finished_by from buildq.builds").fetchone()
    assert row == (3, "runner-a")


def test_concurrent_finishes_one_winner(
    make_client: Callable[..., BuildqClient], queued: Callable[..., Build]
) -> None:
    workers = 6
    client = make_client(max_size=workers)
    build = queued()
    copies = [dataclasses.replace(build) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    answers: list[bool] = []

    def finish(copy: Build, status: int) -> None:
        barrier.wait(timeout=THREAD_TIMEOUT)
        answers.append(client.finish_build(copy, status))

    threads = [
        threading.Thread(target=finish, args=(copy, number % 2))
        for number, copy in enumerate(copies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)

    assert sorted(answers) == [False] * (workers - 1) + [True]
    assert all(copy.finished_in_db for copy in copies)
    assert client.counters.nr_builds_done == 1
    assert client.counters.nr_builds_lost == workers - 1


def test_stale_attempt_loses_to_claim(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    seen_by_monitor = queued()
    [claimed] = client.claim_builds(systems=["x86_64-linux"])

    assert client.abort_build(seen_by_monitor, "gone") is False
    assert seen_by_monitor.finished_in_db is True
    assert finished(conn, claimed.id) == 0
    assert client.finish_build(claimed, 0) is True


def test_cached_finish_without_success_leaves_flag(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    build = queued()

    assert client.finish_cached_build(build) is None
    assert build.finished_in_db is False
    assert finished(conn, build.id) == 0
    assert client.counters.nr_builds_lost == 0


def test_cached_finish_copies_result(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    first = queued()
    second = queued()
    client.finish_build(first, 0, size=42, closure_size=50, release_name="hello-1.0")

    assert client.finish_cached_build(second) is True
    row = conn.execute(
        "select build_status, is_cached_build, size, closure_size, release_name, finished_by"
        " from buildq.builds where id = %s",
        (second.id,),
    ).fetchone()
    assert row == (0, True, 42, 50, "hello-1.0", RUNNER)
    assert client.counters.nr_builds_cached == 1
    assert client.counters.nr_builds_done == 2


def test_cached_finish_ignores_failures(client: BuildqClient, queued: Callable[..., Build]) -> None:
    failed = queued()
    second = queued()
    client.finish_build(failed, 1)

    assert client.finish_cached_build(second) is None


def test_cached_finish_needs_same_recipe(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    other_recipe = queued(drv_path="/store/bbbb-hello.recipe")
    build = queued()
    client.finish_build(other_recipe, 0)

    assert client.finish_cached_build(build) is None


def test_status_counters_by_kind(client: BuildqClient, queued: Callable[..., Build]) -> None:
    client.finish_build(queued(), 0)
    client.finish_build(queued(), 7)
    client.abort_build(queued(), "gone")
    client.finish_build(queued(), 9)

    assert client.counters.nr_builds_succeeded == 1
    assert client.counters.nr_builds_failed == 1
    assert client.counters.nr_builds_aborted == 1
    assert client.counters.nr_builds_unsupported == 1
    assert client.counters.nr_builds_done == 4
