"""The queue runner process: one queue monitor, N builder threads, heartbeat and shutdown.

Start-up: register the runner id in buildq.runners, call clear_busy for it (recovery after
a crash of an earlier process with the same id), start the monitor, and start the builders
after the monitor's first scan. The main thread then writes the counters every heartbeat
interval until a signal arrives or, with ``until_idle``, nothing is queued or running.

Shutdown (SIGTERM or SIGINT): builders stop claiming, and running builds get
``grace_period`` seconds to end. Builds that still run then are killed and their steps
recorded as aborted, and clear_busy returns the builds to the queue. A second signal skips
the rest of the grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from buildq.builder import Builder, BuilderSettings
from buildq.client import BuildqClient
from buildq.counters import Counters
from buildq.errors import BuildqError
from buildq.monitor import QueueMonitor
from buildq.runstate import RunState

__all__ = ["Runner", "RunnerConfig", "default_runner_id"]

logger = logging.getLogger(__name__)

# Seconds between two checks of the main loop (signals, idleness, monitor health).
TICK = 0.2

# Seconds to wait for a builder after its build was killed at shutdown. The executor
# needs up to its kill grace period (2 s) plus the time to record the step.
BUILDER_EXIT_TIMEOUT = 15.0


def default_runner_id() -> str:
    """Return the host name, the default runner id.

    The id must stay the same across restarts so that clear_busy at start-up finds what a
    crashed process of this runner left busy.
    """
    return socket.gethostname()


@dataclass(frozen=True)
class RunnerConfig:
    """Settings of one runner process. Intervals and periods are seconds."""

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


class Runner:
    """One runner process. :meth:`run` blocks until the runner has stopped."""

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
        )
        self._signalled = threading.Event()
        self._forced = threading.Event()
        self._monitor: QueueMonitor | None = None
        self._builders: list[Builder] = []

    def request_stop(self) -> None:
        """Stop as on SIGTERM; a second call kills running builds without waiting."""
        if self._signalled.is_set():
            self._forced.set()
        self._signalled.set()

    def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run until stopped; returns 0 after an orderly stop and 1 when the monitor died."""
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

    def _start(self) -> None:
        config = self.config
        previous_heartbeat = self.client.register_runner(
            host=socket.gethostname(), pid=os.getpid()
        )
        if previous_heartbeat is not None:
            logger.warning(
                "runner id %s: the previous process never recorded a stop (last heartbeat %s); "
                "if it still runs, give this process another --runner-id",
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
            "runner %s started: pid %s, %s builders, systems %s",
            config.runner_id,
            os.getpid(),
            config.builders,
            ", ".join(config.systems),
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
        next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        while not self._signalled.wait(TICK):
            if self._monitor is not None and not self._monitor.is_alive():
                logger.error("the queue monitor thread ended unexpectedly; stopping")
                return 1
            if self.config.until_idle and self._is_idle():
                logger.info("nothing is queued or running; stopping (--until-idle)")
                return 0
            if time.monotonic() >= next_heartbeat:
                self._heartbeat(stopped=False)
                next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        logger.info("stop requested; builders take no new builds")
        return 0

    def _is_idle(self) -> bool:
        if not self.state.first_scan_done.is_set():
            return False
        token = self.state.idle_token()
        if token is None:
            return False
        try:
            queued = self.client.count_queued()
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            logger.error("cannot count queued builds: %s", exc)
            return False
        return queued == 0 and self.state.idle_token() == token

    def _heartbeat(self, *, stopped: bool) -> None:
        counters = self.counters.snapshot()
        try:
            if not self.client.update_runner(counters, stopped=stopped):
                logger.warning(
                    "runner id %s has no row in buildq.runners; registering it again",
                    self.config.runner_id,
                )
                self.client.register_runner(host=socket.gethostname(), pid=os.getpid())
                self.client.update_runner(counters, stopped=stopped)
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            logger.error("cannot store the counters of runner %s: %s", self.config.runner_id, exc)

    # -- shutdown --------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.state.stop_claiming.set()
        self.state.wake_builders()

        deadline = time.monotonic() + self.config.grace_period
        running = len(self.state.running_builds())
        if running:
            logger.info(
                "waiting up to %s s for %s running builds", self.config.grace_period, running
            )
        for builder in self._builders:
            while builder.is_alive() and time.monotonic() < deadline and not self._forced.is_set():
                builder.join(TICK)

        stopped = self.state.stop_all_running("the runner shut down before the build ended")
        if stopped:
            logger.warning("killed %s builds that were still running", stopped)
        for builder in self._builders:
            builder.join(BUILDER_EXIT_TIMEOUT)
            if builder.is_alive():
                logger.error("%s did not stop in time; leaving it behind", builder.name)

        if self._monitor is not None:
            self._monitor.stop()
            self._monitor.join(BUILDER_EXIT_TIMEOUT)

        try:
            released = self.client.clear_busy()
        except BuildqError as exc:
            self.counters.increment("nr_errors")
            logger.error("cannot release the builds of runner %s: %s", self.config.runner_id, exc)
        else:
            if released:
                logger.info("returned %s unfinished steps and builds to the queue", released)

        self._heartbeat(stopped=True)
        logger.info(
            "runner %s stopped; counters: %s", self.config.runner_id, self.counters.snapshot()
        )

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
