"""Queue runner process: one queue monitor, N builder threads, the heartbeat and shutdown.

Start-up: register the runner id in buildq.runners, call clear_busy for it (recovery after
a crash of an earlier process with the same id), start the monitor, and start the builders
after the monitor's first scan. The main thread then writes the counters every heartbeat
interval until a signal arrives or, with ``until_idle``, nothing is queued or running.

Shutdown (SIGTERM or SIGINT): builders stop claiming, and running builds get
``grace_period`` seconds to end. Builds that still run then are killed and their steps
recorded as aborted, and clear_busy returns the builds to the queue. A second signal skips
the rest of the grace period. The heartbeat goes on until the last thread has ended.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from buildq.builder import Builder, BuilderSettings
from buildq.client import DEFAULT_LOCK_TIMEOUT, BuildqClient
from buildq.counters import Counters
from buildq.errors import BuildqError
from buildq.monitor import QueueMonitor
from buildq.ratelimit import RepeatedFailureLog
from buildq.runstate import RunState

# SQLSTATE insufficient_privilege. The login lacks a role, so retrying cannot help.
INSUFFICIENT_PRIVILEGE = "42501"

__all__ = ["Runner", "RunnerConfig", "default_runner_id"]

logger = logging.getLogger(__name__)

# Seconds between two checks of the main loop (signals, idleness, monitor health).
TICK = 0.2

# Seconds to wait for all builders together after their builds were killed at shutdown.
# The executor needs up to its kill grace period (2 s) plus the time to record the step.
BUILDER_EXIT_TIMEOUT = 15.0

# Minimum seconds between two log lines about the same repeated error of the main loop.
REPEATED_ERROR_LOG_INTERVAL = 30.0


def default_runner_id() -> str:
    """Return the host name, the default runner id.

    The id must stay the same across restarts so that clear_busy at start-up finds what a
    crashed process of this runner left busy.
    """
    return socket.gethostname()


@dataclass(frozen=True)
class RunnerConfig:
    """Settings of one runner process. Intervals, periods and timeouts are in seconds.

    ``lock_timeout`` limits each database call's wait for a lock, and 0 means no limit.
    """

    conninfo: str
    runner_id: str
    builders: int
    systems: tuple[str, ...]
    log_dir: Path
    work_dir: Path
    max_log_bytes: int
    poll_interval: float = 5.0
    heartbeat_interval: float = 10.0
    grace_period: float = 30.0
    until_idle: bool = False
    default_timeout: int | None = None
    default_max_silent: int | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT


class Runner:
    """Queue runner of one process. :meth:`run` blocks until the runner has stopped."""

    def __init__(self, config: RunnerConfig) -> None:
        if config.builders < 1:
            raise ValueError(f"builders must be at least 1, got {config.builders}")
        self.config = config
        self.counters = Counters()
        self.state = RunState(self.counters)
        self.client = BuildqClient(
            conninfo=config.conninfo,
            runner_id=config.runner_id,
            counters=self.counters,
            # One connection per builder, one for the monitor, one for the heartbeat.
            min_size=1,
            max_size=config.builders + 2,
            lock_timeout=config.lock_timeout,
        )
        self._signalled = threading.Event()
        self._forced = threading.Event()
        self._monitor: QueueMonitor | None = None
        self._builders: list[Builder] = []
        self._next_heartbeat = 0.0
        self._idle_check_failures = RepeatedFailureLog(REPEATED_ERROR_LOG_INTERVAL)

    def request_stop(self) -> None:
        """Stop as on SIGTERM. A second call kills running builds without waiting."""
        if self._signalled.is_set():
            self._forced.set()
        self._signalled.set()

    def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run until stopped and return 0 after an orderly stop, or 1 when the monitor died."""
        if install_signal_handlers:
            self._install_signal_handlers()
        self.client.open()
        try:
            self._start()
            exit_code = self._main_loop()
            self._shutdown()
            return exit_code
        finally:
            self.client.close()

    # -- start -----------------------------------------------------------------------

    def _check_privileges(self) -> None:
        """Fail at start, not in a retry loop, when the login cannot read the queue."""
        try:
            self.client.count_queued()
        except BuildqError as exc:
            if exc.sqlstate != INSUFFICIENT_PRIVILEGE:
                raise
            raise BuildqError(
                f"runner {self.config.runner_id} cannot read buildq.builds ({exc}). "
                "To fix it, grant the buildq_runner role to this login and run buildq migrate"
            ) from exc

    def _start(self) -> None:
        config = self.config
        self._check_privileges()
        previous_heartbeat = self.client.register_runner(
            host=socket.gethostname(), pid=os.getpid()
        )
        if previous_heartbeat is not None:
            logger.warning(
                "runner id %s: the previous process never recorded a stop (last heartbeat %s). "
                "If it still runs, give this process another --runner-id",
                config.runner_id,
                previous_heartbeat.isoformat(timespec="seconds"),
            )
        released = self.client.clear_busy()
        if released:
            logger.warning(
                "runner id %s: released %s busy steps and builds of an earlier process",
                config.runner_id,
                released,
            )
        logger.info(
            "runner %s started: pid %s, %s builders, systems %s, lock timeout %s",
            config.runner_id,
            os.getpid(),
            config.builders,
            ", ".join(config.systems),
            f"{config.lock_timeout:g} s" if config.lock_timeout > 0 else "none",
        )

        self._monitor = QueueMonitor(
            client=self.client,
            state=self.state,
            systems=config.systems,
            poll_interval=config.poll_interval,
        )
        self._monitor.start()
        settings = BuilderSettings(
            systems=config.systems,
            log_dir=config.log_dir,
            work_dir=config.work_dir,
            max_log_bytes=config.max_log_bytes,
            poll_interval=config.poll_interval,
            default_timeout=config.default_timeout,
            default_max_silent=config.default_max_silent,
        )
        self._builders = [
            Builder(number=number, client=self.client, state=self.state, settings=settings)
            for number in range(1, config.builders + 1)
        ]
        for builder in self._builders:
            builder.start()

    # -- main loop -------------------------------------------------------------------

    def _main_loop(self) -> int:
        self._next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        while not self._signalled.wait(TICK):
            if self._monitor is not None and not self._monitor.is_alive():
                logger.error("the queue monitor thread ended unexpectedly, so the runner stops")
                return 1
            if self.config.until_idle and self._is_idle():
                logger.info("nothing is queued or running, so the runner stops (--until-idle)")
                return 0
            self._heartbeat_if_due()
        logger.info("stop requested, so builders take no new builds")
        return 0

    def _is_idle(self) -> bool:
        """Check whether nothing is queued, claimed by this runner or running here."""
        if not self.state.first_scan_done.is_set():
            return False
        token = self.state.idle_token()
        if token is None:
            return False
        try:
            # A build claimed by this runner while no builder is busy has lost its builder.
            # It is built after QueueMonitor.release_orphaned_claims releases it.
            unbuilt = self.client.count_queued()
            if unbuilt == 0:
                unbuilt = len(self.client.list_claimed())
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            unlogged = self._idle_check_failures.failed()
            if unlogged is not None:
                logger.error(
                    "counting queued builds failed: %s (%s more failures since the last "
                    "message, which repeats at most every %s s)",
                    exc,
                    unlogged,
                    REPEATED_ERROR_LOG_INTERVAL,
                )
            return False
        failures = self._idle_check_failures.succeeded()
        if failures:
            logger.info("counting queued builds works again after %s failures", failures)
        return unbuilt == 0 and self.state.idle_token() == token

    def _heartbeat_if_due(self) -> None:
        if time.monotonic() >= self._next_heartbeat:
            self._heartbeat(stopped=False)
            self._next_heartbeat = time.monotonic() + self.config.heartbeat_interval

    def _heartbeat(self, *, stopped: bool) -> None:
        counters = self.counters.snapshot()
        try:
            if not self.client.update_runner(counters, stopped=stopped):
                logger.warning(
                    "runner id %s has no row in buildq.runners, so registering it again",
                    self.config.runner_id,
                )
                self.client.register_runner(host=socket.gethostname(), pid=os.getpid())
                self.client.update_runner(counters, stopped=stopped)
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            logger.error("storing the counters of runner %s failed: %s", self.config.runner_id, exc)

    # -- shutdown --------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.state.stop_claiming.set()
        self.state.wake_builders()

        running = len(self.state.running_builds())
        if running:
            logger.info(
                "waiting up to %s s for %s running builds", self.config.grace_period, running
            )
        self._join(self._builders, self.config.grace_period, until_forced=True)

        stopped = self.state.stop_all_running("the runner shut down before the build ended")
        if stopped:
            logger.warning("killed %s builds that were still running", stopped)
        self._join(self._builders, BUILDER_EXIT_TIMEOUT)
        for builder in self._builders:
            if builder.is_alive():
                logger.error("%s did not stop in time, leaving it behind", builder.name)

        if self._monitor is not None:
            self._monitor.stop()
            self._join([self._monitor], BUILDER_EXIT_TIMEOUT)

        try:
            released = self.client.clear_busy()
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            logger.error("releasing the builds of runner %s failed: %s", self.config.runner_id, exc)
        else:
            if released:
                logger.info("returned %s unfinished steps and builds to the queue", released)

        self._heartbeat(stopped=True)
        logger.info(
            "runner %s stopped with counters %s", self.config.runner_id, self.counters.snapshot()
        )

    def _join(
        self, threads: Sequence[threading.Thread], timeout: float, *, until_forced: bool = False
    ) -> None:
        """Wait up to ``timeout`` seconds in all for ``threads`` to end.

        The heartbeat is written when it is due, so that a runner that shuts down does not
        look dead. With ``until_forced``, a second signal ends the wait early.
        """
        deadline = time.monotonic() + timeout
        for thread in threads:
            while thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (until_forced and self._forced.is_set()):
                    return
                thread.join(min(TICK, remaining))
                self._heartbeat_if_due()

    def _install_signal_handlers(self) -> None:
        def handle(signal_number: int, frame: FrameType | None) -> None:
            name = signal.Signals(signal_number).name
            if self._signalled.is_set():
                logger.warning("%s again: killing running builds now", name)
            else:
                logger.info(
                    "%s received: stopping after running builds end (grace period %s s)",
                    name,
                    self.config.grace_period,
                )
            self.request_stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
