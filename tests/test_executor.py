"""Tests for running one recipe without a database."""

from __future__ import annotations

import errno
import os
import threading
import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from buildq import executor
from buildq.executor import BuildOutcome, BuildStatus, run_recipe
from buildq.jobset import Recipe

MAX_LOG_BYTES = 1 << 20


def make_recipe(
    command: str,
    src: Path,
    *,
    timeout: float | None = 10,
    max_silent: float | None = None,
) -> Recipe:
    return Recipe(
        job_name="test-job",
        command=command,
        src=src,
        timeout=timeout,
        max_silent=max_silent,
    )


def build(
    tmp_path: Path,
    command: str,
    *,
    timeout: float | None = 10,
    max_silent: float | None = None,
    max_log_bytes: int = MAX_LOG_BYTES,
    stop: threading.Event | None = None,
) -> BuildOutcome:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    return run_recipe(
        make_recipe(command, src, timeout=timeout, max_silent=max_silent),
        work_root=tmp_path / "work",
        log_path=tmp_path / "logs" / "nested" / "build.log",
        max_log_bytes=max_log_bytes,
        stop=stop or threading.Event(),
        poll_interval=0.05,
    )


def is_dead(pid: int) -> bool:
    """Return whether process ``pid`` has exited, counting a zombie as exited."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


def wait_until_dead(pid: int, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_dead(pid):
            return True
        time.sleep(0.02)
    return is_dead(pid)


def test_success(tmp_path: Path) -> None:
    outcome = build(tmp_path, 'echo hello; echo "to stderr" >&2; echo done > "$out/result"')
    assert outcome.status == BuildStatus.SUCCEEDED
    assert outcome.exit_code == 0
    assert outcome.error_msg is None
    assert outcome.stopped is False
    assert outcome.log_path.read_text() == "hello\nto stderr\n"
    assert (outcome.out_path / "result").read_text() == "done\n"


def test_success_times_are_aware_utc(tmp_path: Path) -> None:
    outcome = build(tmp_path, "sleep 0.2")
    assert outcome.start_time.tzinfo is timezone.utc
    assert outcome.stop_time.tzinfo is timezone.utc
    assert outcome.stop_time - outcome.start_time >= timedelta(seconds=0.2)


def test_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDQ_TEST_SECRET", "leaked")
    monkeypatch.setenv("LANG", "C.UTF-8")
    command = (
        'ls -A "$out" | wc -l; echo "src=$src"; echo "lang=$LANG"; '
        'echo "secret=${BUILDQ_TEST_SECRET-unset}"; echo "pwd=$(pwd)"; '
        'test -n "$PATH" && test -n "$HOME" && echo "out=$out"'
    )
    outcome = build(tmp_path, command)
    lines = outcome.log_path.read_text().splitlines()
    assert lines[0].strip() == "0"
    assert lines[1] == f"src={tmp_path / 'src'}"
    assert lines[2] == "lang=C.UTF-8"
    assert lines[3] == "secret=unset"
    assert lines[4] == f"pwd={outcome.out_path.parent / 'build'}"
    assert lines[5] == f"out={outcome.out_path}"


def test_fresh_directories_per_run(tmp_path: Path) -> None:
    first = build(tmp_path, 'touch "$out/a"; touch scratch')
    second = build(tmp_path, 'ls -A "$out"; ls -A')
    assert second.out_path != first.out_path
    assert second.log_path.read_text() == ""
    assert not (first.out_path.parent / "build").exists()


def test_failure_exit_code(tmp_path: Path) -> None:
    outcome = build(tmp_path, 'echo partial > "$out/partial"; exit 2')
    assert outcome.status == BuildStatus.FAILED
    assert outcome.exit_code == 2
    assert outcome.error_msg == "exit code 2"
    assert outcome.stopped is False


def test_failure_killed_by_signal(tmp_path: Path) -> None:
    outcome = build(tmp_path, "kill -KILL $$")
    assert outcome.status == BuildStatus.FAILED
    assert outcome.exit_code is None
    assert outcome.error_msg == "killed by signal SIGKILL"


def test_failed_with_output(tmp_path: Path) -> None:
    command = 'mkdir "$out/nix-support"; echo report > "$out/report"; touch "$out/nix-support/failed"'
    outcome = build(tmp_path, command)
    assert outcome.status == BuildStatus.FAILED_WITH_OUTPUT
    assert outcome.exit_code == 0
    assert outcome.error_msg is not None


def test_failed_marker_with_nonzero_exit(tmp_path: Path) -> None:
    outcome = build(tmp_path, 'mkdir "$out/nix-support"; touch "$out/nix-support/failed"; exit 1')
    assert outcome.status == BuildStatus.FAILED


def test_timeout_total(tmp_path: Path) -> None:
    # The loop prints, so only the total time limit can end it.
    started = time.monotonic()
    outcome = build(tmp_path, "while :; do echo tick; sleep 0.05; done", timeout=0.5, max_silent=5)
    elapsed = time.monotonic() - started
    assert outcome.status == BuildStatus.TIMED_OUT
    assert outcome.error_msg == "timed out after 0.5 s"
    assert outcome.exit_code is None
    assert outcome.stopped is False
    assert elapsed < 2.5
    assert "tick" in outcome.log_path.read_text()


def test_timeout_silence(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = build(tmp_path, "echo start; sleep 30", timeout=None, max_silent=0.5)
    elapsed = time.monotonic() - started
    assert outcome.status == BuildStatus.TIMED_OUT
    assert outcome.error_msg == "no output for 0.5 s"
    assert elapsed < 2.5
    assert outcome.log_path.read_text() == "start\n"


def test_silence_reset_by_output(tmp_path: Path) -> None:
    command = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"
    outcome = build(tmp_path, command, timeout=None, max_silent=0.6)
    assert outcome.status == BuildStatus.SUCCEEDED


def test_log_limit_exceeded(tmp_path: Path) -> None:
    outcome = build(tmp_path, 'echo x > "$out/x"; yes 0123456789 | head -c 100000', max_log_bytes=1000)
    assert outcome.status == BuildStatus.LOG_LIMIT_EXCEEDED
    assert outcome.error_msg == "log exceeded 1000 bytes"
    assert outcome.exit_code is None
    assert outcome.log_path.stat().st_size == 1000


def test_log_limit_exceeded_endless(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = build(tmp_path, "yes", max_log_bytes=MAX_LOG_BYTES)
    assert outcome.status == BuildStatus.LOG_LIMIT_EXCEEDED
    assert outcome.log_path.stat().st_size == MAX_LOG_BYTES
    assert time.monotonic() - started < 2.5


def test_log_exactly_at_limit(tmp_path: Path) -> None:
    outcome = build(tmp_path, "head -c 1000 /dev/zero", max_log_bytes=1000)
    assert outcome.status == BuildStatus.SUCCEEDED
    assert outcome.log_path.stat().st_size == 1000


def test_stop_kills_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    stop = threading.Event()

    def stop_when_started() -> None:
        deadline = time.monotonic() + 5
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        stop.set()

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    started = time.monotonic()
    outcome = build(tmp_path, f'sleep 30 & echo $! > "{pid_file}"; wait', timeout=None, stop=stop)
    stopper.join()
    grandchild = int(pid_file.read_text())

    assert outcome.stopped is True
    assert outcome.status == BuildStatus.ABORTED
    assert time.monotonic() - started < 2.5
    assert wait_until_dead(grandchild)


def test_stop_set_before_start(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    outcome = build(tmp_path, "sleep 30", stop=stop)
    assert outcome.stopped is True


def test_leftover_background_process_killed(tmp_path: Path) -> None:
    # The background sleep keeps the log pipe open after the shell exits.
    pid_file = tmp_path / "background.pid"
    started = time.monotonic()
    outcome = build(tmp_path, f'sleep 30 & echo $! > "{pid_file}"; echo done')
    assert outcome.status == BuildStatus.SUCCEEDED
    assert time.monotonic() - started < 2.5
    assert wait_until_dead(int(pid_file.read_text()))


def test_output_size(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"x" * 5000)
    command = (
        'head -c 100 /dev/zero > "$out/a"; mkdir -p "$out/sub/deeper"; '
        'head -c 23 /dev/zero > "$out/sub/deeper/b"; '
        f'ln -s "{outside}" "$out/link"; ln -s "{tmp_path}" "$out/dirlink"; '
        'mkfifo "$out/fifo"'
    )
    outcome = build(tmp_path, command)
    assert outcome.size == 123
    assert outcome.closure_size == 123


def test_output_size_when_out_deleted(tmp_path: Path) -> None:
    outcome = build(tmp_path, 'rmdir "$out"')
    assert outcome.size == 0


def test_release_name(tmp_path: Path) -> None:
    command = (
        'mkdir "$out/nix-support"; '
        'printf "  hello-1.2  \\nsecond line\\n" > "$out/nix-support/hydra-release-name"'
    )
    outcome = build(tmp_path, command)
    assert outcome.release_name == "hello-1.2"


@pytest.mark.parametrize(
    "command",
    [
        "true",
        'mkdir "$out/nix-support"; : > "$out/nix-support/hydra-release-name"',
        'mkdir "$out/nix-support"; mkfifo "$out/nix-support/hydra-release-name"',
    ],
    ids=["missing", "empty", "fifo"],
)
def test_release_name_absent(tmp_path: Path, command: str) -> None:
    assert build(tmp_path, command).release_name is None


@pytest.mark.parametrize(
    ("max_log_bytes", "poll_interval"), [(0, 0.1), (1000, 0)], ids=["log", "poll"]
)
def test_invalid_arguments(tmp_path: Path, max_log_bytes: int, poll_interval: float) -> None:
    with pytest.raises(ValueError):
        run_recipe(
            make_recipe("true", tmp_path),
            work_root=tmp_path / "work",
            log_path=tmp_path / "build.log",
            max_log_bytes=max_log_bytes,
            stop=threading.Event(),
            poll_interval=poll_interval,
        )


def test_sigterm_ignored_then_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "KILL_GRACE_SECONDS", 0.3)
    pid_file = tmp_path / "stubborn.pid"
    command = f'echo $$ > "{pid_file}"; trap "" TERM; while :; do sleep 0.05; done'
    started = time.monotonic()
    outcome = build(tmp_path, command, timeout=0.3)
    assert outcome.status == BuildStatus.TIMED_OUT
    assert time.monotonic() - started < 2
    assert wait_until_dead(int(pid_file.read_text()))


def test_recipe_src_is_not_modified(tmp_path: Path) -> None:
    build(tmp_path, 'touch scratch; touch "$out/result"')
    assert os.listdir(tmp_path / "src") == []


def test_log_limit_exceeded_before_exit(tmp_path: Path) -> None:
    # The shell may exit before the executor has read all of its output.
    outcome = build(tmp_path, "head -c 300000 /dev/zero; exit 0", max_log_bytes=200000)
    assert outcome.status == BuildStatus.LOG_LIMIT_EXCEEDED
    assert outcome.log_path.stat().st_size == 200000


def test_failed_start_removes_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_to_start(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EAGAIN, "cannot fork")

    monkeypatch.setattr(executor.subprocess, "Popen", fail_to_start)

    with pytest.raises(OSError):
        build(tmp_path, "true")

    assert os.listdir(tmp_path / "work") == []
