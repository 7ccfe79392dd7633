"""Builder threads, which claim builds and run each recipe as one build step.

A builder records the step and the build only through the guarded functions, so when the
queue monitor or a person finished the build first, the builder's finish returns false and
changes nothing. When the monitor finds that a running build was finished elsewhere, it
sets the build's stop event. The executor then kills the process, and the builder records
only its own step, never the build.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from buildq.client import STATUS_ABORTED, Build, BuildqClient
from buildq.errors import BuildqError, TransientDatabaseError
from buildq.executor import BuildOutcome, run_recipe
from buildq.jobset import Recipe, RecipeError, read_recipe
from buildq.monitor import GARBAGE_COLLECTED_REASON
from buildq.runstate import RunningBuild, RunState, StopReason

__all__ = ["Builder", "BuilderSettings"]

logger = logging.getLogger(__name__)

STATUS_CANCELLED = 4


@dataclass(frozen=True)
class BuilderSettings:
    """Settings shared by the builders of one runner.

    ``max_log_bytes`` limits each step's log. ``default_timeout`` and ``default_max_silent``
    (seconds, None for no limit) apply when neither the build nor its recipe sets a limit.
    ``poll_interval`` is the maximum wait, in seconds, between two claims while idle.
    """

    systems: tuple[str, ...]
    log_dir: Path
    work_dir: Path
    max_log_bytes: int
    poll_interval: float
    default_timeout: int | None = None
    default_max_silent: int | None = None
    machine: str = dataclasses.field(default_factory=socket.gethostname)


class Builder(threading.Thread):
    """Builder thread that builds one build at a time until the runner stops claiming."""

    def __init__(
        self, *, number: int, client: BuildqClient, state: RunState, settings: BuilderSettings
    ) -> None:
        super().__init__(name=f"builder-{number}", daemon=True)
        self.client = client
        self.state = state
        self.settings = settings

    def run(self) -> None:
        logger.info("%s started", self.name)
        self.state.first_scan_done.wait()
        while not self.state.stop_claiming.is_set():
            generation = self.state.work_generation()
            try:
                claimed = self._claim_and_build()
            except BuildqError as exc:
                self.state.counters.increment("nr_errors")
                # _claim_and_build catches the errors raised while building, so this error
                # comes from the claim.
                logger.error(
                    "%s: claiming a build failed: %s. Trying again within %s s",
                    self.name,
                    exc,
                    self.settings.poll_interval,
                )
                claimed = False
            except Exception:
                self.state.counters.increment("nr_errors")
                logger.exception("%s: unexpected error", self.name)
                claimed = False
            if not claimed:
                self.state.wait_for_work(generation, self.settings.poll_interval)
        logger.info("%s stopped", self.name)

    def _claim_and_build(self) -> bool:
        """Claim one build, build it and return whether there was a build to claim."""
        self.state.begin_claim()
        try:
            running = self._claim()
            if running is None:
                return False
            try:
                self._build(running)
            except BuildqError as exc:
                self.state.counters.increment("nr_errors")
                self._give_up(running.build, exc)
            finally:
                self.state.remove_running(running)
            return True
        finally:
            self.state.end_claim()

    def _claim(self) -> RunningBuild | None:
        """Claim one build, register it as running and return its entry.

        Returns None when nothing is queued.
        """
        try:
            builds = self.client.claim_builds(max_count=1, systems=self.settings.systems)
            if not builds:
                return None
            self.state.note_claimed(builds[0])
            return self.state.add_running(builds[0])
        finally:
            # A claim whose result was lost with its connection leaves a build claimed that
            # no builder runs. The queue monitor releases it once no claim is pending.
            self.state.claim_settled()

    def _give_up(self, build: Build, error: BuildqError) -> None:
        """Hand back a build whose result could not be recorded.

        After a transient error, which the client retried until it gave up, the build is
        released so that a builder tries again. Any other error would recur on every
        attempt, so the build is aborted with the error as its message instead.
        """
        try:
            if isinstance(error, TransientDatabaseError):
                logger.error(
                    "build %s: recording failed after retries: %s. Releasing the build",
                    build.id,
                    error,
                )
                self.client.release_build(build)
            else:
                logger.error("build %s: recording failed: %s. Aborting the build", build.id, error)
                self.client.abort_build(build, f"the runner cannot record the result: {error}")
        except BuildqError as exc:
            self.state.counters.increment("nr_errors")
            logger.error(
                "build %s: giving the build back failed: %s. The queue monitor releases it "
                "later, or clear_busy does at the runner's exit",
                build.id,
                exc,
            )

    def _build(self, running: RunningBuild) -> None:
        build = running.build
        if running.stop.is_set():
            # A shutdown or another actor's finish stopped the build before it started, so it
            # needs no step. After a shutdown, clear_busy returns it to the queue.
            self.state.mark_process_ended(running)
            logger.info("build %s: not started: %s", build.id, running.stop_message)
            return
        try:
            recipe = read_recipe(Path(build.drv_path))
        except RecipeError as exc:
            self.state.mark_process_ended(running)
            reason = GARBAGE_COLLECTED_REASON if not os.path.lexists(build.drv_path) else str(exc)
            logger.info(
                "build %s: reading its recipe failed: %s. Aborting the build", build.id, exc
            )
            self.client.abort_build(build, reason)
            return
        recipe = self._with_limits(recipe, build)

        # A builder may claim a build before the queue monitor has scanned it, so the
        # cached-build check of the monitor is repeated here.
        cached = self.client.finish_cached_build(build)
        if cached is not None:
            self.state.mark_process_ended(running)
            if cached:
                logger.info("build %s: not built because its recipe already succeeded", build.id)
            else:
                logger.info("build %s: not built because another actor finished it first", build.id)
            return

        step_nr = self.client.create_build_step(
            build, type=0, machine=self.settings.machine, start_time=_now()
        )
        if step_nr is None:
            self.state.mark_process_ended(running)
            return

        log_path = self.settings.log_dir / f"{build.id}-{step_nr}.log"
        logger.info(
            "build %s (job %s, attempt %s): step %s runs, log %s",
            build.id,
            build.job,
            build.attempt,
            step_nr,
            log_path,
        )
        try:
            outcome = run_recipe(
                recipe,
                work_root=self.settings.work_dir,
                log_path=log_path,
                max_log_bytes=self.settings.max_log_bytes,
                stop=running.stop,
            )
        except OSError as exc:
            self.state.mark_process_ended(running)
            message = f"cannot run the recipe: {exc}"
            logger.error("build %s: %s", build.id, message)
            self.client.finish_build_step(
                build.id, step_nr, STATUS_ABORTED, error_msg=message, machine=self.settings.machine
            )
            self.client.abort_build(build, message)
            return
        self.state.mark_process_ended(running)

        if outcome.stopped:
            self._record_stopped(running, step_nr, outcome)
            return
        self._record_outcome(build, step_nr, outcome)

    def _record_outcome(self, build: Build, step_nr: int, outcome: BuildOutcome) -> None:
        status = int(outcome.status)
        self.client.finish_build_step(
            build.id,
            step_nr,
            status,
            error_msg=outcome.error_msg,
            stop_time=outcome.stop_time,
            machine=self.settings.machine,
        )
        recorded = self.client.finish_build(
            build,
            status,
            start_time=outcome.start_time,
            stop_time=outcome.stop_time,
            size=outcome.size,
            closure_size=outcome.closure_size,
            release_name=outcome.release_name,
            error_msg=outcome.error_msg,
        )
        if not recorded:
            logger.info(
                "build %s: another actor finished it first, so its result (status %s) "
                "is not recorded",
                build.id,
                status,
            )

    def _record_stopped(self, running: RunningBuild, step_nr: int, outcome: BuildOutcome) -> None:
        """Finish the step of a build whose process the runner killed, but not the build itself."""
        build = running.build
        message = running.stop_message or "stopped by the runner"
        status = STATUS_ABORTED
        if running.stop_reason is StopReason.FINISHED_ELSEWHERE:
            state = self.client.fetch_build_states([build.id]).get(build.id)
            if state is not None and state.finished and state.build_status == STATUS_CANCELLED:
                status = STATUS_CANCELLED
        logger.info(
            "build %s: process stopped (%s), so this runner finishes the step but not the build",
            build.id,
            message,
        )
        self.client.finish_build_step(
            build.id,
            step_nr,
            status,
            error_msg=message,
            stop_time=outcome.stop_time,
            machine=self.settings.machine,
        )

    def _with_limits(self, recipe: Recipe, build: Build) -> Recipe:
        """Apply the build row's limits, else the recipe's, else the runner's defaults."""
        timeout = build.timeout or recipe.timeout or self.settings.default_timeout
        max_silent = build.max_silent or recipe.max_silent or self.settings.default_max_silent
        return dataclasses.replace(recipe, timeout=timeout, max_silent=max_silent)


def _now() -> datetime:
    return datetime.now(timezone.utc)
