"""The runner's main thread with a fake client.

The tests cover rate-limited idle-check errors, and the heartbeat and deadline of the
shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buildq import runner as runner_module
from buildq.errors import TransientDatabaseError
from buildq.ratelimit import RepeatedFailureLog
from buildq.runner import Runner, RunnerConfig


class FakeClient:
    """Stand-in for BuildqClient whose count_queued fails and whose other calls are recorded."""

    def __init__(self) -> None:
        self.heartbeats: list[bool] = []

    def count_queued(self) -> int:
        raise TransientDatabaseError("connection refused")

    def update_runner(self, counters: dict[str, int], *, stopped: bool = False) -> bool:
        self.heartbeats.append(stopped)
        return True

    def clear_busy(self) -> int:
        return 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    config = RunnerConfig(
        conninfo="",
        runner_id="unit-runner",
        builders=1,
        systems=("x86_64-linux",),
        log_dir=tmp_path,
        work_dir=tmp_path,
        max_log_bytes=1000,
        heartbeat_interval=0.1,
        grace_period=0.0,
    )
    created = Runner(config)
    created.client = FakeClient()  # type: ignore[assignment]
    return created


def test_failure_log_limits_repeats() -> None:
    clock = FakeClock()
    limit = RepeatedFailureLog(30.0, clock=clock)

    first = limit.failed()
    clock.now += 10
    repeats = [limit.failed() for _ in range(3)]
    clock.now += 30
    later = limit.failed()

    assert first == 0
    assert repeats == [None, None, None]
    assert later == 3
    assert limit.succeeded() == 5


def test_failure_log_success_starts_new_run() -> None:
    clock = FakeClock()
    limit = RepeatedFailureLog(30.0, clock=clock)
    limit.failed()
    limit.succeeded()

    assert limit.failed() == 0


def test_idle_check_error_logged_once(runner: Runner, caplog: pytest.LogCaptureFixture) -> None:
    runner.state.first_scan_done.set()
    caplog.set_level(logging.ERROR, logger="buildq.runner")

    # The main thread checks every 0.2 s, so 50 checks take far less than the 30 s interval.
    results = [runner._is_idle() for _ in range(50)]

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert results == [False] * 50
    assert runner.counters.nr_errors == 50
    assert len(errors) == 1
    assert "connection refused" in errors[0].getMessage()


@pytest.fixture
def stuck_builders(runner: Runner) -> Iterator[list[threading.Thread]]:
    """Give the runner 6 builder threads that do not end until the test is over."""
    release = threading.Event()
    threads = [threading.Thread(target=release.wait, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    runner._builders = threads  # type: ignore[assignment]
    yield threads
    release.set()


def test_shutdown_joins_share_deadline(
    runner: Runner, stuck_builders: list[threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "BUILDER_EXIT_TIMEOUT", 1.0)
    started = time.monotonic()

    runner._shutdown()

    # One shared deadline takes about 1 s, but one timeout per builder would take 6 s.
    assert time.monotonic() - started < 4.0
    assert all(thread.is_alive() for thread in stuck_builders)


def test_shutdown_writes_heartbeat(
    runner: Runner, stuck_builders: list[threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "BUILDER_EXIT_TIMEOUT", 0.5)
    client: Any = runner.client

    runner._shutdown()

    assert False in client.heartbeats
    assert client.heartbeats[-1] is True


@pytest.mark.parametrize("seconds", [0.0, 2.5])
def test_lock_timeout_reaches_client(tmp_path: Path, seconds: float) -> None:
    config = RunnerConfig(
        conninfo="",
        runner_id="unit-runner",
        builders=1,
        systems=("x86_64-linux",),
        log_dir=tmp_path,
        work_dir=tmp_path,
        max_log_bytes=1000,
        lock_timeout=seconds,
    )

    assert Runner(config).client.lock_timeout == seconds
