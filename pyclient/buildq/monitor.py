"""Queue monitor thread, which finishes queued builds that need no builder and watches running ones.

The monitor LISTENs on the channels that announce new, restarted, bumped, cancelled and
finished builds, and it also scans the queue every poll interval, because a NOTIFY can be
missed (for example while its connection is down). Each scan reads all unclaimed builds,
never only ids above the last one seen, since ids are handed out in another order than
transactions commit.

For each queued build, in this order:

1. its recipe file at ``drv_path`` is gone: abort it (status 3) with
   "derivation was garbage-collected prior to build";
2. a build of the same recipe already succeeded: finish it as a cached success;
3. no builder of this runner supports its system: finish it as unsupported (status 9).

Builders may claim the same build meanwhile. Every finish passes the attempt the monitor
saw, so once a builder has claimed a build the monitor's finish changes nothing.

About once a second, and at once on a NOTIFY naming a running build, the monitor reads
the rows of the builds that run here. A build that is finished or in another attempt no
longer wants its result, so the monitor sets its stop event and the executor kills it.

Before each scan, the monitor releases the builds that the database shows as claimed by
this runner but that no builder runs. A claim whose result was lost with its connection
leaves such a build, because its builder saw an error, or its retry claimed another build.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from buildq.client import STATUS_UNSUPPORTED, BuildqClient, QueuedBuild
from buildq.errors import BuildqError
from buildq.ratelimit import RepeatedFailureLog
from buildq.runstate import RunState, StopReason

__all__ = ["GARBAGE_COLLECTED_REASON", "QueueMonitor"]

logger = logging.getLogger(__name__)

GARBAGE_COLLECTED_REASON = "derivation was garbage-collected prior to build"

# Channels that announce work for the queue scan.
QUEUE_CHANNELS = ("builds_added", "builds_restarted", "builds_bumped")
# Channels that may concern a build running here. A notification on builds_cancelled also
# means that the queue changed.
RUNNING_CHANNELS = ("builds_cancelled", "build_finished")

# Seconds between two checks of the running builds' rows.
RUNNING_CHECK_INTERVAL = 1.0

# Maximum wait, in seconds, before the thread notices a stop request.
STOP_CHECK_INTERVAL = 0.25

# Builds read per scan. A longer queue is handled from the front, in the order in which
# builders claim, so every build is checked before its turn comes.
SCAN_LIMIT = 1000

# Seconds to wait before opening the LISTEN connection again after it failed.
RECONNECT_DELAY = 2.0

# Minimum seconds between two log lines about failed attempts to LISTEN.
REPEATED_ERROR_LOG_INTERVAL = 30.0


class QueueMonitor(threading.Thread):
    """Monitor thread of one runner. ``systems`` are the systems that its builders build."""

    def __init__(
        self,
        *,
        client: BuildqClient,
        state: RunState,
        systems: Sequence[str],
        poll_interval: float,
    ) -> None:
        super().__init__(name="queue-monitor", daemon=True)
        self.client = client
        self.state = state
        self.systems = tuple(systems)
        self.poll_interval = poll_interval
        self._stop_event = threading.Event()
        self._listener: psycopg.Connection | None = None
        self._next_connect = 0.0
        self._scan_requested = True
        self._check_requested = True
        self._listen_failures = RepeatedFailureLog(REPEATED_ERROR_LOG_INTERVAL)

    def stop(self) -> None:
        """Ask the thread to end after its current step."""
        self._stop_event.set()

    def run(self) -> None:
        logger.info(
            "queue monitor started for systems %s, polling every %s s",
            ", ".join(self.systems),
            self.poll_interval,
        )
        next_scan = 0.0
        next_check = 0.0
        try:
            # LISTEN before the first scan, so that no build queued after the scan goes
            # unannounced.
            self._connect_listener()
            while not self._stop_event.is_set():
                now = time.monotonic()
                if self._scan_requested or now >= next_scan:
                    self._scan_requested = False
                    self._guarded(self.release_orphaned_claims)
                    self._guarded(self.scan_queue)
                    self.state.first_scan_done.set()
                    next_scan = time.monotonic() + self.poll_interval
                if self._check_requested or now >= next_check:
                    self._check_requested = False
                    self._guarded(self.check_running)
                    next_check = time.monotonic() + RUNNING_CHECK_INTERVAL
                timeout = min(next_scan, next_check) - time.monotonic()
                self._wait_for_notifies(max(0.0, min(timeout, STOP_CHECK_INTERVAL)))
        finally:
            self._close_listener()
            # Builders wait for the first scan, so release them even when the monitor fails.
            self.state.first_scan_done.set()
            logger.info("queue monitor stopped")

    # -- the queue -----------------------------------------------------------------

    def scan_queue(self) -> None:
        """Check every queued build once and wake the builders."""
        queued = self.client.list_queued(limit=SCAN_LIMIT)
        self.state.note_scanned((entry.build.id, entry.build.attempt or 0) for entry in queued)
        for entry in queued:
            if self._stop_event.is_set():
                break
            try:
                self.check_queued(entry)
            except BuildqError as exc:
                self.state.counters.increment("nr_errors")
                logger.error("build %s: queue check failed: %s", entry.build.id, exc)
        self.state.wake_builders()

    def check_queued(self, entry: QueuedBuild) -> None:
        """Finish ``entry`` if it needs no builder, else leave it queued."""
        build = entry.build
        if not os.path.lexists(build.drv_path):
            logger.info(
                "build %s: recipe %s not found. Aborting the build", build.id, build.drv_path
            )
            self.client.abort_build(build, GARBAGE_COLLECTED_REASON)
            return

        if entry.has_succeeded_build:
            cached = self.client.finish_cached_build(build)
            if cached is not None:
                return
            # The succeeded build was restarted meanwhile, so go on with the other checks.

        if build.system not in self.systems:
            logger.info("build %s: no builder supports system %s", build.id, build.system)
            self.client.finish_build(
                build,
                STATUS_UNSUPPORTED,
                error_msg=(
                    f"no builder supports system {build.system}, because "
                    f"this runner builds {', '.join(self.systems)}"
                ),
            )

    def release_orphaned_claims(self) -> None:
        """Release the builds claimed by this runner in the database that no builder runs.

        Which builds run is state of this process, so Python decides which claims are
        orphaned, and release_build's guard decides whether each release still applies.
        The check is skipped while a claim is pending, because a claimed build reaches the
        running set only after claim_builds has returned.
        """
        token = self.state.claim_token()
        if token is None:
            return
        claimed = self.client.list_claimed()
        if not claimed:
            return
        running = self.state.running_keys_since(token)
        if running is None:
            logger.debug(
                "a builder claimed a build during the check for orphaned claims, "
                "so the check runs again later"
            )
            return
        for build in claimed:
            if (build.id, build.attempt) in running:
                continue
            logger.warning(
                "build %s (attempt %s) is claimed by this runner but no builder runs it, "
                "so releasing it",
                build.id,
                build.attempt,
            )
            try:
                self.client.release_build(build)
            except BuildqError as exc:
                self.state.counters.increment("nr_errors")
                logger.error(
                    "build %s: release failed: %s. Retrying at the next scan", build.id, exc
                )

    # -- running builds ------------------------------------------------------------

    def check_running(self) -> None:
        """Stop the builds running here that another actor finished or moved to a new attempt."""
        running = self.state.running_builds()
        if not running:
            return
        states = self.client.fetch_build_states(entry.build.id for entry in running)
        for entry in running:
            state = states.get(entry.build.id)
            if state is None:
                message = "the build was deleted"
            elif state.finished:
                message = (
                    f"the build was finished elsewhere with status {state.build_status} "
                    f"by {state.finished_by}"
                )
            elif state.attempt != entry.build.attempt:
                message = (
                    f"the build moved from attempt {entry.build.attempt} "
                    f"to attempt {state.attempt}"
                )
            else:
                continue
            if self.state.request_stop(entry, StopReason.FINISHED_ELSEWHERE, message):
                self.state.counters.increment("nr_builds_stopped")

    # -- notifications ---------------------------------------------------------------

    def _wait_for_notifies(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a NOTIFY and request the scan or check it needs."""
        listener = self._listener or self._connect_listener()
        if listener is None:
            self._stop_event.wait(timeout)
            return
        try:
            received = list(listener.notifies(timeout=timeout, stop_after=1))
            if received:
                # Collect a burst of notifications for one scan.
                received += listener.notifies(timeout=0.0)
        except psycopg.Error as exc:
            self.state.counters.increment("nr_errors")
            logger.warning("LISTEN connection lost: %s. Polling the queue until it is back", exc)
            self._close_listener()
            self._next_connect = time.monotonic() + RECONNECT_DELAY
            return

        # A payload starts with a build id, but a bulk change may name several builds,
        # so any notification on these channels triggers one check of the running builds.
        wakes_scan = False
        for notify in received:
            logger.debug("NOTIFY %s %r", notify.channel, notify.payload)
            if notify.channel in QUEUE_CHANNELS or notify.channel == "builds_cancelled":
                wakes_scan = True
            if notify.channel in RUNNING_CHANNELS:
                self._check_requested = True
        if wakes_scan:
            self._scan_requested = True
            self.state.counters.increment("nr_queue_wakeups")

    def _connect_listener(self) -> psycopg.Connection | None:
        if time.monotonic() < self._next_connect:
            return None
        listener: psycopg.Connection | None = None
        try:
            listener = self.client.connect()
            for channel in QUEUE_CHANNELS + RUNNING_CHANNELS:
                listener.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        except (BuildqError, psycopg.Error) as exc:
            if listener is not None:
                # The connection opened but LISTEN failed. Without this close, every retry
                # would leave one more connection open.
                listener.close()
            self.state.counters.increment("nr_errors")
            unlogged = self._listen_failures.failed()
            if unlogged is not None:
                logger.warning(
                    "LISTEN failed: %s. Retrying every %s s (%s more failures since the last "
                    "message, which repeats at most every %s s)",
                    exc,
                    RECONNECT_DELAY,
                    unlogged,
                    REPEATED_ERROR_LOG_INTERVAL,
                )
            self._next_connect = time.monotonic() + RECONNECT_DELAY
            return None
        failures = self._listen_failures.succeeded()
        if failures:
            logger.info("LISTEN works again after %s failed attempts", failures)
        logger.info("listening on %s", ", ".join(QUEUE_CHANNELS + RUNNING_CHANNELS))
        self._listener = listener
        # Notifications sent while no connection listened are lost, so a scan replaces them.
        self._scan_requested = True
        self._check_requested = True
        return listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                logger.debug("closing the LISTEN connection failed", exc_info=True)
            self._listener = None

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step of the loop, and log and count its errors so that the thread goes on."""
        try:
            step()
        except BuildqError as exc:
            self.state.counters.increment("nr_errors")
            logger.error("queue monitor: %s failed: %s", step.__name__, exc)
        except Exception:
            self.state.counters.increment("nr_errors")
            logger.exception("queue monitor: %s failed unexpectedly", step.__name__)
