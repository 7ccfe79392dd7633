"""End to end: `buildq enqueue` and `buildq run` as subprocesses on a real database."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from buildq.monitor import GARBAGE_COLLECTED_REASON

from .conftest import (
    RUN_TIMEOUT,
    RUNNER,
    Cli,
    is_running,
    process_gone,
    runner_counters,
    wait_for,
    write_jobset,
)

MIXED_JOBS: dict[str, dict[str, Any]] = {
    "succeeds": {
        "command": (
            "mkdir -p $out/nix-support && printf 12345678 > $out/data"
            " && echo hello-1.0 > $out/nix-support/hydra-release-name && echo built"
        ),
        "priority": 5,
    },
    "fails": {"command": "echo failing; exit 3"},
    "marks-failed": {"command": "mkdir -p $out/nix-support && touch $out/nix-support/failed"},
    "times-out": {"command": "echo sleeping; sleep 20", "timeout": 1},
    "floods-log": {"command": "yes flood | head -c 200000"},
    "other-system": {"command": "true", "system": "riscv64-none"},
}

EXPECTED_STATUS = {
    "succeeds": 0,
    "fails": 1,
    "marks-failed": 6,
    "times-out": 7,
    "floods-log": 10,
    "other-system": 9,
}


@pytest.fixture
def mixed_run(cli: Cli, tmp_path: Path, finish_log: Callable[[], Any]) -> Cli:
    """Queue the mixed jobset and run it until idle with 3 builders."""
    cli.enqueue(write_jobset(tmp_path, MIXED_JOBS))
    cli.run_until_idle("--builders", "3", "--max-log-bytes", "10000")
    return cli


def test_statuses_follow_hydra(mixed_run: Cli, builds: Callable[[], dict[str, Any]]) -> None:
    statuses = {job: row["build_status"] for job, row in builds().items()}

    assert statuses == EXPECTED_STATUS


def test_every_build_finished_once(
    mixed_run: Cli, finish_log: Callable[[], list[tuple[int, str]]], conn: psycopg.Connection
) -> None:
    finishes = Counter(build_id for build_id, _ in finish_log())
    by_runner = sum(1 for _, finished_by in finish_log() if finished_by == RUNNER)

    assert sorted(finishes.values()) == [1] * len(MIXED_JOBS)
    assert runner_counters(conn)["nr_builds_done"] == by_runner
    assert by_runner == len(MIXED_JOBS)
    row = conn.execute("select stopped_at is not null from buildq.runners").fetchone()
    assert row == (True,)


def test_outputs_and_logs(
    mixed_run: Cli, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection, tmp_path: Path
) -> None:
    succeeded = builds()["succeeds"]
    steps = conn.execute("select build_id, step_nr from buildq.build_steps").fetchall()
    log_dir = tmp_path / ".buildq" / "logs"

    assert succeeded["size"] == len("12345678") + len("hello-1.0\n")
    assert succeeded["release_name"] == "hello-1.0"
    assert {path.name for path in log_dir.iterdir()} == {f"{b}-{n}.log" for b, n in steps}
    assert len(steps) == len(MIXED_JOBS) - 1
    assert (log_dir / f"{succeeded['id']}-1.log").read_text() == "built\n"


def test_finish_by_others_is_not_counted(
    cli: Cli, tmp_path: Path, conn: psycopg.Connection, finish_log: Callable[[], Any]
) -> None:
    jobset = write_jobset(tmp_path, {"kept": {"command": "true"}, "dropped": {"command": "true"}})
    cli.enqueue(jobset)
    conn.execute("select buildq.finish_build(build_id => 2, status => 4)")

    cli.run_until_idle()

    finished_by = dict(finish_log())
    assert finished_by == {1: RUNNER, 2: conn.info.user}
    assert runner_counters(conn)["nr_builds_done"] == 1


def test_same_recipe_is_cached(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    jobset = write_jobset(tmp_path, {"once": {"command": "echo 42 > $out/answer"}})
    cli.enqueue(jobset)
    cli.run_until_idle()
    cli.enqueue(jobset)

    cli.run_until_idle()

    rows = conn.execute(
        "select build_status, is_cached_build, size from buildq.builds order by id"
    ).fetchall()
    assert rows == [(0, False, 3), (0, True, 3)]
    assert runner_counters(conn)["nr_builds_cached"] == 1
    assert conn.execute("select count(*) from buildq.build_steps").fetchone() == (1,)


def remove_recipe_while_slow_runs(
    cli: Cli,
    tmp_path: Path,
    conn: psycopg.Connection,
    builds: Callable[[], dict[str, Any]],
    poll_interval: str,
    wait_for_monitor: bool,
) -> None:
    """Run a slow job with 1 builder and delete the recipe of the queued job behind it.

    The slow job ends when the test creates its gate file, after deleting the recipe and,
    with ``wait_for_monitor``, after the queue monitor has finished the doomed build.
    """
    gate = tmp_path / "gate"
    # The job gives up after about 60 s, so a failed test leaves no process behind.
    wait_for_gate = f"for i in $(seq 600); do [ -e {gate} ] && exit 0; sleep 0.1; done; exit 1"
    jobset = write_jobset(
        tmp_path,
        {
            "slow": {"command": wait_for_gate, "priority": 10},
            "doomed": {"command": "echo never"},
        },
    )
    cli.enqueue(jobset)
    runner = cli.start(
        "run", "--runner-id", RUNNER, "--until-idle", "--builders", "1",
        "--poll-interval", poll_interval,
    )
    try:
        wait_for(lambda: is_running(conn, "slow"), description="the slow build to start")
        assert builds()["doomed"]["finished"] == 0
        Path(builds()["doomed"]["drv_path"]).unlink()
        if wait_for_monitor:
            wait_for(
                lambda: builds()["doomed"]["finished"] == 1,
                timeout=RUN_TIMEOUT,
                description="the queue monitor to abort the doomed build",
            )
        gate.touch()
        assert runner.wait(RUN_TIMEOUT) == 0
    finally:
        runner.kill()


def test_removed_recipe_is_aborted(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    remove_recipe_while_slow_runs(
        cli, tmp_path, conn, builds, poll_interval="0.5", wait_for_monitor=True
    )

    doomed = builds()["doomed"]
    assert doomed["build_status"] == 3
    assert doomed["error_msg"] == GARBAGE_COLLECTED_REASON
    # Attempt 0 shows that the queue monitor aborted it before any builder claimed it.
    assert doomed["attempt"] == 0
    assert builds()["slow"]["build_status"] == 0


def test_builder_aborts_removed_recipe(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    # With a 60 s poll interval the monitor scans only at start, so the builder meets
    # the missing recipe when it claims the build.
    remove_recipe_while_slow_runs(
        cli, tmp_path, conn, builds, poll_interval="60", wait_for_monitor=False
    )

    doomed = builds()["doomed"]
    assert doomed["build_status"] == 3
    assert doomed["error_msg"] == GARBAGE_COLLECTED_REASON
    assert doomed["attempt"] == 1


def test_cancelled_build_is_killed(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; exec sleep 30"
    cli.enqueue(write_jobset(tmp_path, {"sleeper": {"command": command}}))
    runner = cli.start("run", "--runner-id", RUNNER, "--until-idle", "--poll-interval", "0.5")
    try:
        wait_for(lambda: is_running(conn, "sleeper") and pid_file.exists(), description="the sleeper")
        build_id = builds()["sleeper"]["id"]
        cancelled_at = time.monotonic()
        conn.execute("select buildq.cancel_build(build_id => %s, reason => 'by a test')", (build_id,))
        assert runner.wait(RUN_TIMEOUT) == 0
        runner_seconds = time.monotonic() - cancelled_at
    finally:
        runner.kill()

    sleeper = builds()["sleeper"]
    assert runner_seconds < 10
    assert process_gone(int(pid_file.read_text()))
    assert sleeper["build_status"] == 4
    assert sleeper["finished_by"] != RUNNER
    step = conn.execute("select status from buildq.build_steps where build_id = %s", (build_id,))
    assert step.fetchone() == (4,)
    assert runner_counters(conn)["nr_builds_done"] == 0
    assert runner_counters(conn)["nr_builds_stopped"] == 1


def test_sigterm_requeues_running_build(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    cli.enqueue(write_jobset(tmp_path, {"sleeper": {"command": "exec sleep 30"}}))
    runner = cli.start(
        "run", "--runner-id", RUNNER, "--poll-interval", "0.5", "--grace-period", "0.5"
    )
    try:
        wait_for(lambda: is_running(conn, "sleeper"), description="the sleeper to start")
        stopped_at = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(RUN_TIMEOUT) == 0
        runner_seconds = time.monotonic() - stopped_at
    finally:
        runner.kill()

    sleeper = builds()["sleeper"]
    assert runner_seconds < 10
    assert (sleeper["finished"], sleeper["busy"]) == (0, 0)
    step = conn.execute(
        "select status from buildq.build_steps where build_id = %s", (sleeper["id"],)
    ).fetchone()
    assert step == (3,)
    row = conn.execute("select stopped_at is not null from buildq.runners").fetchone()
    assert row == (True,)


def test_start_releases_leftovers(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    cli.enqueue(write_jobset(tmp_path, {"orphan": {"command": "true"}}))
    [[build_id]] = conn.execute("select id from buildq.claim_builds(runner => %s)", (RUNNER,))
    conn.execute(
        "select buildq.create_build_step(%s, runner => %s, attempt => 1)", (build_id, RUNNER)
    )

    cli.run_until_idle()

    orphan = builds()["orphan"]
    assert (orphan["build_status"], orphan["attempt"]) == (0, 2)
    steps = conn.execute(
        "select step_nr, status from buildq.build_steps where build_id = %s order by step_nr",
        (build_id,),
    ).fetchall()
    assert steps == [(1, 3), (2, 0)]


def test_build_of_other_runner_is_kept(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]], conn: psycopg.Connection
) -> None:
    cli.enqueue(write_jobset(tmp_path, {"elsewhere": {"command": "true"}}))
    conn.execute("select buildq.claim_builds(runner => 'another-runner')")

    cli.run_until_idle()

    elsewhere = builds()["elsewhere"]
    assert (elsewhere["finished"], elsewhere["claimed_by"]) == (0, "another-runner")


def test_enqueue_missing_jobset_fails(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("enqueue", str(tmp_path / "missing.toml"))

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "jobset file not found" in result.stderr


def test_enqueue_unknown_job_fails(cli: Cli, tmp_path: Path) -> None:
    jobset = write_jobset(tmp_path, {"real": {"command": "true"}})

    result = cli.run("enqueue", str(jobset), "--job", "imaginary")

    assert result.returncode == 1
    assert "no job named 'imaginary'" in result.stderr


def test_enqueue_selected_job(
    cli: Cli, tmp_path: Path, builds: Callable[[], dict[str, Any]]
) -> None:
    jobset = write_jobset(tmp_path, {"one": {"command": "true"}, "two": {"command": "true"}})

    cli.enqueue(jobset, "--job", "two")

    assert list(builds()) == ["two"]


def test_zero_builders_is_usage_error(cli: Cli) -> None:
    result = cli.run("run", "--builders", "0")

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "--builders" in result.stderr


def test_unreachable_database_fails(cli: Cli) -> None:
    dsn = psycopg.conninfo.make_conninfo(cli.dsn, dbname="buildq_no_such_database")

    result = cli.run("run", "--until-idle", "--dsn", dsn)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "cannot connect to the database" in result.stderr


def test_status_lists_builds(cli: Cli, tmp_path: Path) -> None:
    cli.enqueue(write_jobset(tmp_path, {"listed": {"command": "true"}}))

    result = cli.run("status")

    lines = result.stdout.splitlines()
    assert result.returncode == 0
    header = ["id", "job", "status", "cached", "finished_by", "duration", "size", "release"]
    assert lines[0].split() == header
    assert lines[1].split() == ["1", "listed", "queued", "no", "-", "-", "-", "-"]
    assert lines[2] == "1 build: 1 queued"


def test_status_rejects_zero_limit(cli: Cli) -> None:
    result = cli.run("status", "--limit", "0")

    assert result.returncode == 2
