"""Run one recipe in a fresh directory, the way a Hydra builder runs a derivation.

The executor has no database access. It starts ``/bin/sh -c <command>`` in its own process
group, copies the combined stdout and stderr into a log file, enforces the recipe's time
limits and the caller's log size limit, and measures the output directory afterwards.
The caller turns the returned :class:`BuildOutcome` into a database update.
"""

from __future__ import annotations

import enum
import logging
import os
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from buildq.jobset import Recipe

__all__ = ["KILL_GRACE_SECONDS", "BuildOutcome", "BuildStatus", "run_recipe"]

logger = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when the executor kills a build's process group.
KILL_GRACE_SECONDS = 2.0

# Environment variables passed from the runner to every build, if set.
_PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG")

_READ_SIZE = 65536
_RELEASE_NAME_MAX_BYTES = 4096


class BuildStatus(enum.IntEnum):
    """Hydra's build status codes that the executor can produce."""

    SUCCEEDED = 0
    FAILED = 1
    # Stopped by the caller's stop event. The caller records nothing for such an outcome.
    ABORTED = 3
    FAILED_WITH_OUTPUT = 6
    TIMED_OUT = 7
    LOG_LIMIT_EXCEEDED = 10


@dataclass(frozen=True)
class BuildOutcome:
    """Result of one run of a recipe.

    ``exit_code`` is the shell's exit status, or None if the shell ended by a signal.
    ``size`` and ``closure_size`` are bytes. ``error_msg`` is None on success.
    """

    status: BuildStatus
    start_time: datetime
    stop_time: datetime
    exit_code: int | None
    size: int
    closure_size: int
    release_name: str | None
    error_msg: str | None
    stopped: bool
    out_path: Path
    log_path: Path


def run_recipe(
    recipe: Recipe,
    *,
    work_root: Path,
    log_path: Path,
    max_log_bytes: int,
    stop: threading.Event,
    poll_interval: float = 0.1,
) -> BuildOutcome:
    """Build ``recipe`` under ``work_root`` and return the outcome.

    The command runs in ``<work_root>/<job>-<random>/build`` with ``$out`` set to the empty
    directory ``<work_root>/<job>-<random>/out``, which is kept for the caller. The build
    directory is deleted afterwards. When ``stop`` is set, the build is killed and the
    outcome has ``stopped=True``. Limits are checked every ``poll_interval`` seconds.
    Raises OSError if the directories or the log file cannot be created or the shell
    cannot be started. Whenever it raises, it first deletes ``<work_root>/<job>-<random>``.
    """
    if max_log_bytes <= 0:
        raise ValueError(f"max_log_bytes must be positive, got {max_log_bytes}")
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be positive, got {poll_interval}")

    work_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"{recipe.job_name}-", dir=work_root))
    build_dir = work_dir / "build"
    out_path = work_dir / "out"
    try:
        build_dir.mkdir()
        out_path.mkdir()
        log_path.parent.mkdir(parents=True, exist_ok=True)

        with log_path.open("wb", buffering=0) as log_file:
            start_time = datetime.now(timezone.utc)
            process = _BuildProcess.start(recipe, build_dir, out_path, log_file, max_log_bytes)
            try:
                status, error_msg = _watch(process, recipe, stop, poll_interval)
            finally:
                # Also reached on KeyboardInterrupt, so that the build does not outlive the runner.
                process.finish()
            stop_time = datetime.now(timezone.utc)
    except BaseException:
        # Without an outcome the caller never learns the directory's name, so remove it here.
        _remove_tree(work_dir)
        raise

    _remove_tree(build_dir)

    exit_code = process.exit_code()
    if status is None and process.log_limit_exceeded:
        # The shell exited before the executor had read all of its output.
        status = BuildStatus.LOG_LIMIT_EXCEEDED
        error_msg = f"log exceeded {max_log_bytes} bytes"
    if status is None:
        status, error_msg = _status_of_exit(process.returncode(), out_path)
    size = _output_size(out_path)
    outcome = BuildOutcome(
        status=status,
        start_time=start_time,
        stop_time=stop_time,
        exit_code=exit_code,
        size=size,
        # Outputs never reference other outputs yet, so an output's closure is the output.
        closure_size=size,
        release_name=_read_release_name(out_path),
        error_msg=error_msg,
        stopped=status is BuildStatus.ABORTED,
        out_path=out_path,
        log_path=log_path,
    )
    logger.info(
        "build of job %s ended: status %s (%s), %s bytes of output in %s",
        recipe.job_name,
        outcome.status.value,
        outcome.error_msg or "no error",
        outcome.size,
        out_path,
    )
    return outcome


def _watch(
    process: _BuildProcess, recipe: Recipe, stop: threading.Event, poll_interval: float
) -> tuple[BuildStatus | None, str | None]:
    """Copy log output until the shell exits or a limit or the stop event ends the build.

    Returns (None, None) when the shell exited by itself, otherwise the status and message
    of the reason for killing it.
    """
    started = time.monotonic()
    while True:
        if stop.is_set():
            logger.info("build of job %s stopped by the runner, killing it", recipe.job_name)
            return BuildStatus.ABORTED, "stopped by the runner"

        now = time.monotonic()
        if recipe.timeout is not None and now - started >= recipe.timeout:
            logger.info(
                "build of job %s timed out after %s s, killing it", recipe.job_name, recipe.timeout
            )
            return BuildStatus.TIMED_OUT, f"timed out after {recipe.timeout:g} s"
        if recipe.max_silent is not None and now - process.last_output >= recipe.max_silent:
            logger.info(
                "build of job %s sent no output for %s s, killing it",
                recipe.job_name,
                recipe.max_silent,
            )
            return BuildStatus.TIMED_OUT, f"no output for {recipe.max_silent:g} s"

        process.copy_output(timeout=poll_interval)
        if process.log_limit_exceeded:
            logger.info("build of job %s exceeded the log limit, killing it", recipe.job_name)
            return (
                BuildStatus.LOG_LIMIT_EXCEEDED,
                f"log exceeded {process.max_log_bytes} bytes",
            )
        if process.has_exited():
            return None, None


def _status_of_exit(returncode: int, out_path: Path) -> tuple[BuildStatus, str | None]:
    if returncode < 0:
        return BuildStatus.FAILED, f"killed by signal {_signal_name(-returncode)}"
    if returncode != 0:
        return BuildStatus.FAILED, f"exit code {returncode}"
    # A build may succeed as a process but mark its result failed, for example when its
    # test suite failed but the test report in $out is still worth keeping.
    if os.path.lexists(out_path / "nix-support" / "failed"):
        return BuildStatus.FAILED_WITH_OUTPUT, "build marked itself failed ($out/nix-support/failed)"
    return BuildStatus.SUCCEEDED, None


class _BuildProcess:
    """Shell process of one build, with its process group and the pipe that carries its log."""

    def __init__(
        self, popen: subprocess.Popen[bytes], log_file: BinaryIO, max_log_bytes: int
    ) -> None:
        self.popen = popen
        self.log_file = log_file
        self.max_log_bytes = max_log_bytes
        self.log_bytes = 0
        self.log_limit_exceeded = False
        self.last_output = time.monotonic()
        assert popen.stdout is not None
        self.pipe = popen.stdout
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.pipe, selectors.EVENT_READ)
        self.pipe_open = True

    @classmethod
    def start(
        cls,
        recipe: Recipe,
        build_dir: Path,
        out_path: Path,
        log_file: BinaryIO,
        max_log_bytes: int,
    ) -> _BuildProcess:
        environment = {
            name: os.environ[name] for name in _PASSED_ENVIRONMENT if name in os.environ
        }
        environment["out"] = str(out_path)
        environment["src"] = str(recipe.src)
        # start_new_session puts the shell and everything it starts into a new process
        # group, so that one killpg reaches grandchildren too. A process that calls setsid
        # itself leaves the group and is not killed.
        popen = subprocess.Popen(
            ["/bin/sh", "-c", recipe.command],
            cwd=build_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logger.info(
            "build of job %s started: pid %s, directory %s",
            recipe.job_name,
            popen.pid,
            build_dir.parent,
        )
        return cls(popen, log_file, max_log_bytes)

    def copy_output(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for log output and append what arrives to the log."""
        if not self.pipe_open:
            # The shell closed its stdout, so only its exit can end the wait early.
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            return
        if not self.selector.select(timeout):
            return

        chunk = os.read(self.pipe.fileno(), _READ_SIZE)
        if not chunk:
            self._close_pipe()
            return
        self.last_output = time.monotonic()
        room = self.max_log_bytes - self.log_bytes
        self.log_file.write(chunk[:room])
        self.log_bytes += min(len(chunk), room)
        if len(chunk) > room:
            self.log_limit_exceeded = True

    def has_exited(self) -> bool:
        return self.popen.poll() is not None

    def returncode(self) -> int:
        returncode = self.popen.returncode
        assert returncode is not None, "the build process has not been waited for"
        return returncode

    def exit_code(self) -> int | None:
        returncode = self.returncode()
        return returncode if returncode >= 0 else None

    def finish(self) -> None:
        """Kill what is left of the process group, reap the shell and copy the rest of the log."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=KILL_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        # SIGKILL also reaches processes that outlived the shell, such as a background
        # job started with "&" or a child that ignored SIGTERM.
        if self._signal_group(signal.SIGKILL):
            logger.info("killed leftover processes of build process group %s", self.popen.pid)
        self.popen.wait()
        self._drain()

    def _signal_group(self, signal_number: signal.Signals) -> bool:
        try:
            os.killpg(self.popen.pid, signal_number)
        except ProcessLookupError:
            return False
        return True

    def _drain(self) -> None:
        # Every process of the group is dead now, so EOF follows soon unless a process
        # that left the group keeps the pipe open. The deadline covers that case.
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while self.pipe_open and not self.log_limit_exceeded:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.warning(
                    "log pipe of build process group %s still open after the build ended, "
                    "closing it",
                    self.popen.pid,
                )
                break
            self.copy_output(timeout=remaining)
        if self.pipe_open:
            self._close_pipe()

    def _close_pipe(self) -> None:
        self.selector.unregister(self.pipe)
        self.selector.close()
        self.pipe.close()
        self.pipe_open = False


def _output_size(out_path: Path) -> int:
    """Return the total size in bytes of the regular files under ``out_path``.

    Symlinks are not followed, and a file with several hard links in the output is
    counted once per link.
    """
    total = 0
    for directory, _, file_names in os.walk(out_path, onerror=_log_walk_error):
        for file_name in file_names:
            try:
                status = os.lstat(os.path.join(directory, file_name))
            except OSError as exc:
                logger.warning("measuring an output file failed: %s", exc)
                continue
            if stat.S_ISREG(status.st_mode):
                total += status.st_size
    return total


def _read_release_name(out_path: Path) -> str | None:
    """Return the first line of ``$out/nix-support/hydra-release-name``, or None."""
    path = out_path / "nix-support" / "hydra-release-name"
    try:
        # Only a regular file is read, because opening a FIFO placed there would block.
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with path.open("rb") as file:
            head = file.read(_RELEASE_NAME_MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("reading the release name from %s failed: %s", path, exc)
        return None

    lines = head.decode("utf-8", errors="replace").splitlines()
    first_line = lines[0].strip() if lines else ""
    return first_line or None


def _log_walk_error(error: OSError) -> None:
    logger.warning("measuring an output directory failed: %s", error)


def _signal_name(signal_number: int) -> str:
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return str(signal_number)


def _remove_tree(directory: Path) -> None:
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        logger.warning("removing directory %s failed: %s", directory, exc)
