"""Helpers for end-to-end tests that run `buildq` as a subprocess against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

RUNNER = "e2e-runner"

# Runner options that keep each test within a few seconds.
FAST_OPTIONS = ("--poll-interval", "0.5", "--heartbeat-interval", "1", "--grace-period", "1")

# Seconds a runner may take for a jobset of these tests before the test fails.
RUN_TIMEOUT = 60


def toml_string(value: str) -> str:
    """Quote ``value`` as a TOML basic string."""
    return json.dumps(value)


def write_jobset(directory: Path, jobs: dict[str, dict[str, Any]]) -> Path:
    """Write a jobset file with one [jobs.NAME] table per entry and return its path."""
    lines = []
    for name, table in jobs.items():
        lines.append(f"[jobs.{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {toml_string(value) if isinstance(value, str) else value}")
        lines.append("")
    path = directory / "jobset.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass
class Cli:
    """Helper that runs `python -m buildq` in one directory against the test database."""

    dsn: str
    cwd: Path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "buildq", *args]

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "BUILDQ_DSN": self.dsn},
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a command with its stderr in ``runner-<n>.log`` under the directory."""
        log = (self.cwd / f"runner-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen(
            self.command(*args),
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            env={**os.environ, "BUILDQ_DSN": self.dsn},
        )

    def enqueue(self, jobset: Path, *args: str) -> None:
        result = self.run("enqueue", str(jobset), *args)
        assert result.returncode == 0, result.stderr

    def run_until_idle(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run("run", "--runner-id", RUNNER, "--until-idle", *FAST_OPTIONS, *args)
        assert result.returncode == 0, result.stderr
        return result


@pytest.fixture
def cli(db: Any, tmp_path: Path) -> Cli:
    """A `buildq` command line that works in tmp_path on the test database."""
    return Cli(dsn=db.dsn, cwd=tmp_path)


@pytest.fixture
def finish_log(conn: psycopg.Connection) -> Iterator[Callable[[], list[tuple[int, str]]]]:
    """Record every change of a build from unfinished to finished, by a test-only trigger.

    Returns a function that lists (build id, finished_by) per recorded finish.
    """
    conn.execute(
        """
        create table public.finish_log (build_id bigint not null, finished_by text);
        create function public.record_finish() returns trigger
        language plpgsql as $$
        begin
          insert into public.finish_log values (new.id, new.finished_by);
          return null;
        end;
        $$;
        create trigger record_finish after update on buildq.builds
        for each row when (old.finished = 0 and new.finished = 1)
        execute function public.record_finish();
        """
    )

    def read() -> list[tuple[int, str]]:
        return conn.execute("select build_id, finished_by from public.finish_log").fetchall()

    yield read


@pytest.fixture
def builds(conn: psycopg.Connection) -> Callable[[], dict[str, dict[str, Any]]]:
    """Return a function that reads every build row as a dict, by job name."""

    def read() -> dict[str, dict[str, Any]]:
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute("select * from buildq.builds order by id").fetchall()
        return {row["job"]: row for row in rows}

    return read


def runner_counters(conn: psycopg.Connection, runner_id: str = RUNNER) -> dict[str, int]:
    row = conn.execute("select counters from buildq.runners where id = %s", (runner_id,)).fetchone()
    assert row is not None, f"runner {runner_id} has no row"
    return row[0]


def wait_for(
    condition: Callable[[], bool], timeout: float = 20.0, description: str = "condition"
) -> None:
    """Poll ``condition`` every 0.1 s until it is true, and fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {description}")
        time.sleep(0.1)


def is_running(conn: psycopg.Connection, job: str) -> bool:
    """Return whether the build of ``job`` has a busy step, i.e. its process runs."""
    row = conn.execute(
        "select count(*) from buildq.build_steps as st"
        " join buildq.builds as b on b.id = st.build_id"
        " where b.job = %s and st.busy <> 0",
        (job,),
    ).fetchone()
    return row is not None and row[0] > 0


def process_gone(pid: int) -> bool:
    """Return whether ``pid`` no longer runs (absent, or a zombie not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
