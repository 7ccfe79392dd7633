"""State that the threads of one runner process share: running builds, wake-ups, idleness."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from buildq.client import Build
from buildq.counters import Counters

__all__ = ["RunState", "RunningBuild", "StopReason"]

logger = logging.getLogger(__name__)


class StopReason(enum.Enum):
    """Reason for stopping a build's process before it ended."""

    # Another actor finished the build, or it moved to another attempt, so the result
    # is no longer wanted. The builder records nothing on the build.
    FINISHED_ELSEWHERE = "finished elsewhere"
    # The runner is shutting down, and clear_busy returns the build to the queue.
    SHUTDOWN = "runner shutdown"


@dataclass(eq=False)
class RunningBuild:
    """Entry for a build that a builder thread has claimed and not yet finished.

    ``stop`` is the event that the executor watches. ``process_ended`` is set once the
    build's process is gone, after which stopping it has no effect.
    """

    build: Build
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: StopReason | None = None
    stop_message: str | None = None
    process_ended: bool = False


class RunState:
    """Coordination between the queue monitor, the builders and the main thread.

    Once ``stop_claiming`` is set, builders claim no new builds. ``first_scan_done`` is set after
    the monitor's first pass over the queue, so that builders start after it.
    """

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.stop_claiming = threading.Event()
        self.first_scan_done = threading.Event()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._work_generation = 0
        self._running: dict[int, RunningBuild] = {}
        self._active_builders = 0
        self._claim_epoch = 0
        # Builders whose claim_builds call has not yet returned, or whose claimed build is
        # not yet in self._running.
        self._pending_claims = 0
        self._read_keys: set[tuple[int, int]] = set()
        # Set by stop_all_running, so that a build registered afterwards starts out stopped.
        self._shutdown_message: str | None = None

    # -- builds read -----------------------------------------------------------------

    def note_scanned(self, keys: Iterable[tuple[int, int]]) -> None:
        """Count the queued builds of a monitor scan, by (id, attempt), that no actor read before.

        The remembered keys become those of this scan, which keeps the set as small as the queue.
        """
        current = set(keys)
        with self._lock:
            new = len(current - self._read_keys)
            self._read_keys = current
        if new:
            self.counters.increment("nr_builds_read", new)

    def note_claimed(self, build: Build) -> None:
        """Count a claimed build as read unless the monitor read it in its queued attempt."""
        assert build.attempt is not None
        key = (build.id, build.attempt - 1)
        with self._lock:
            if key in self._read_keys:
                return
            self._read_keys.add(key)
        self.counters.increment("nr_builds_read")

    # -- waking builders -------------------------------------------------------------

    def work_generation(self) -> int:
        """Return a token for :meth:`wait_for_work`, taken before looking for work."""
        with self._lock:
            return self._work_generation

    def wake_builders(self) -> None:
        """Wake every builder waiting for work, e.g. after a scan of the queue."""
        with self._work:
            self._work_generation += 1
            self._work.notify_all()

    def wait_for_work(self, generation: int, timeout: float) -> None:
        """Wait until :meth:`wake_builders` is called after ``generation`` was taken.

        Returns after ``timeout`` seconds at the latest.
        """
        with self._work:
            self._work.wait_for(lambda: self._work_generation != generation, timeout=timeout)

    # -- builders at work ------------------------------------------------------------

    def begin_claim(self) -> None:
        """Mark a builder busy before it claims.

        The runner then never looks idle while a claimed build is on its way to the running
        set. The claim counts as pending until :meth:`claim_settled`.
        """
        with self._lock:
            self._active_builders += 1
            self._claim_epoch += 1
            self._pending_claims += 1

    def claim_settled(self) -> None:
        """Record that a builder's claim returned (or failed) and its build, if any, is running."""
        with self._lock:
            self._pending_claims -= 1

    def claim_token(self) -> int | None:
        """Return a token for :meth:`running_keys_since` when no claim is pending, else None."""
        with self._lock:
            if self._pending_claims:
                return None
            return self._claim_epoch

    def running_keys_since(self, token: int) -> set[tuple[int, int | None]] | None:
        """Return the (id, attempt) of each running build, or None if a claim began after ``token``.

        A result other than None proves that no builder claimed between the token and this
        call, so every build that this process claimed before this call is in the set
        unless its builder is done with it.
        """
        with self._lock:
            if self._pending_claims or self._claim_epoch != token:
                return None
            return {(entry.build.id, entry.build.attempt) for entry in self._running.values()}

    def end_claim(self) -> None:
        """Mark a builder idle again after its claim came back empty or its build ended."""
        with self._lock:
            self._active_builders -= 1

    def idle_token(self) -> int | None:
        """Return a token when no builder is busy, else None.

        Two equal tokens taken around a look at the queue prove that no builder became busy
        in between.
        """
        with self._lock:
            if self._active_builders:
                return None
            return self._claim_epoch

    def add_running(self, build: Build) -> RunningBuild:
        """Register ``build`` as running and return its entry.

        After :meth:`stop_all_running`, the entry's stop event is already set, so that a build
        claimed while the runner shuts down is never started.
        """
        running = RunningBuild(build)
        with self._lock:
            if self._shutdown_message is not None:
                running.stop_reason = StopReason.SHUTDOWN
                running.stop_message = self._shutdown_message
                running.stop.set()
            self._running[build.id] = running
        return running

    def remove_running(self, running: RunningBuild) -> None:
        """Forget a running build once its builder is done with it."""
        with self._lock:
            if self._running.get(running.build.id) is running:
                del self._running[running.build.id]

    def running_builds(self) -> list[RunningBuild]:
        """Return the running builds at this moment."""
        with self._lock:
            return list(self._running.values())

    def mark_process_ended(self, running: RunningBuild) -> None:
        """Record that the build's process is gone, so that a later stop is not reported."""
        with self._lock:
            running.process_ended = True

    def request_stop(self, running: RunningBuild, reason: StopReason, message: str) -> bool:
        """Ask the executor to kill the build's process and return whether this call asked.

        Returns False when the process already ended or a stop was requested before.
        """
        with self._lock:
            if running.process_ended or running.stop.is_set():
                return False
            running.stop_reason = reason
            running.stop_message = message
            running.stop.set()
        logger.info("build %s: stopping its process: %s", running.build.id, message)
        return True

    def stop_all_running(self, message: str) -> int:
        """Stop every running build for a shutdown, and every build added later.

        Returns how many running builds were stopped.
        """
        with self._lock:
            self._shutdown_message = message
        return sum(
            self.request_stop(running, StopReason.SHUTDOWN, message)
            for running in self.running_builds()
        )
