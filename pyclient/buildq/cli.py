"""Command line entry point: `buildq SUBCOMMAND ...`.

Exit codes: 0 success, 1 failure (the error is printed), 2 invalid usage.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from buildq import __version__
from buildq.client import DEFAULT_LOCK_TIMEOUT, MAX_LOCK_TIMEOUT, BuildqClient, BuildSummary
from buildq.enqueue import DEFAULT_STORE, enqueue_jobset
from buildq.errors import BuildqError
from buildq.jobset import JobsetError, default_system, read_jobset
from buildq.migrate import default_sql_dir, migrate, pending_migrations
from buildq.runner import Runner, RunnerConfig, default_runner_id
from buildq.settings import DSN_ENV, resolve_dsn

logger = logging.getLogger("buildq")

Handler = Callable[[argparse.Namespace], int]

#: Default of `buildq run --max-log-bytes`: 1 MiB.
DEFAULT_MAX_LOG_BYTES = 1 << 20


def add_connection_option(parser: argparse.ArgumentParser) -> None:
    """Add --dsn to a subcommand."""
    parser.add_argument(
        "--dsn",
        help=(
            "libpq connection string or URI, e.g. 'host=127.0.0.1 dbname=ci'. "
            f"Default: ${DSN_ENV}, else libpq's PG* variables"
        ),
    )


def _run_migrate(args: argparse.Namespace) -> int:
    conninfo = resolve_dsn(args.dsn)
    sql_dir: Path = args.sql_dir or default_sql_dir()
    if args.dry_run:
        pending = pending_migrations(conninfo, sql_dir)
        for migration in pending:
            print(f"pending: {migration.path.name}")
        if not pending:
            print("no pending migrations")
        return 0
    result = migrate(conninfo, sql_dir)
    applied = ", ".join(str(version) for version in result.applied) or "none"
    print(f"migrations applied: {applied}, function files applied: {result.function_files}")
    return 0


def _add_migrate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the buildq schema",
        description=(
            "Apply pending files of db/migrations in order, then re-apply every "
            "file of db/functions, all in one transaction: a failing file "
            "changes nothing. Holds an advisory lock, so concurrent runs apply "
            "each migration once. Fails without changes when an applied "
            "migration file was edited."
        ),
    )
    add_connection_option(parser)
    parser.add_argument(
        "--sql-dir",
        type=Path,
        help="directory that contains migrations/ and functions/ (default: this checkout's db/)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list pending migrations and change nothing",
    )
    parser.set_defaults(handler=_run_migrate)


def _runner_id(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str, *, allow_zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise argparse.ArgumentTypeError(f"must be {bound} seconds, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    return _seconds(text)


def _non_negative_seconds(text: str) -> float:
    return _seconds(text, allow_zero=True)


def _lock_timeout_seconds(text: str) -> float:
    value = _seconds(text, allow_zero=True)
    if value > MAX_LOCK_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_LOCK_TIMEOUT} seconds, PostgreSQL's maximum, got {text!r}"
        )
    return value


def _run_enqueue(args: argparse.Namespace) -> int:
    client = BuildqClient(conninfo=resolve_dsn(args.dsn), max_size=1)
    try:
        # The jobset is read before connecting, so a bad jobset fails without a database.
        read_jobset(args.jobset)
        with client:
            queued = enqueue_jobset(client, args.jobset, args.store, only_jobs=args.jobs)
    except (JobsetError, OSError) as exc:
        print(f"buildq enqueue: error: {exc}", file=sys.stderr)
        return 1
    for entry in queued:
        print(f"queued build {entry.build_id} for job {entry.job} ({entry.recipe_path})")
    return 0


def _add_enqueue(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="queue one build per job of a jobset",
        description=(
            "Read a jobset TOML file, write one content-addressed recipe file per job "
            "into the store and queue one build per job. docs/runner.md describes "
            "the jobset format."
        ),
    )
    add_connection_option(parser)
    parser.add_argument("jobset", type=Path, metavar="JOBSET.toml", help="jobset file to queue")
    parser.add_argument(
        "--store",
        type=Path,
        default=DEFAULT_STORE,
        help=f"directory for recipe files (default: ./{DEFAULT_STORE})",
    )
    parser.add_argument(
        "--job",
        dest="jobs",
        action="append",
        metavar="NAME",
        help="queue only the job NAME. Repeat the option to queue more jobs (default: every job)",
    )
    parser.set_defaults(handler=_run_enqueue)


def _run_run(args: argparse.Namespace) -> int:
    config = RunnerConfig(
        conninfo=resolve_dsn(args.dsn),
        runner_id=args.runner_id,
        builders=args.builders,
        systems=tuple(args.systems or [default_system()]),
        log_dir=args.log_dir.absolute(),
        work_dir=args.work_dir.absolute(),
        max_log_bytes=args.max_log_bytes,
        poll_interval=args.poll_interval,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        until_idle=args.until_idle,
        default_timeout=args.default_timeout,
        default_max_silent=args.default_max_silent,
        lock_timeout=args.lock_timeout,
    )
    return Runner(config).run()


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the queue runner: a queue monitor and builder threads",
        description=(
            "Build queued builds until stopped by SIGTERM or SIGINT, or with --until-idle "
            "until nothing is queued or running. docs/runner.md describes the threads, "
            "the recovery at start-up and the counters."
        ),
    )
    add_connection_option(parser)
    parser.add_argument(
        "--runner-id",
        type=_runner_id,
        default=default_runner_id(),
        help=(
            "id recorded as claimed_by and finished_by. Keep it stable across restarts, "
            "because start-up releases the builds and steps that an earlier process with "
            "this id left busy. Give two runners on one host different ids "
            f"(default: the host name, {default_runner_id()!r})"
        ),
    )
    parser.add_argument(
        "--builders",
        type=_positive_int,
        default=1,
        metavar="N",
        help="number of builder threads, i.e. builds run at once (default: 1)",
    )
    parser.add_argument(
        "--system",
        dest="systems",
        action="append",
        metavar="SYSTEM",
        help=(
            "system that the builders build. Repeat the option for more systems. Queued builds "
            "of other systems are finished as unsupported (default: this machine's, "
            f"{default_system()!r})"
        ),
    )
    _add_run_paths_and_limits(parser)
    _add_run_intervals(parser)
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit when nothing is queued or running (default: run until a signal)",
    )
    parser.set_defaults(handler=_run_run)


def _add_run_paths_and_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path(".buildq/logs"),
        help="directory for build logs, one file per step (default: ./.buildq/logs)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(".buildq/work"),
        help="directory for build and output directories (default: ./.buildq/work)",
    )
    parser.add_argument(
        "--max-log-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_LOG_BYTES,
        metavar="BYTES",
        help=(
            "maximum log size in bytes of one build step. A build whose log exceeds it is "
            "killed with status 10, log limit exceeded "
            f"(default: {DEFAULT_MAX_LOG_BYTES}, 1 MiB)"
        ),
    )
    parser.add_argument(
        "--default-timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="total time limit in seconds for builds whose job sets none (default: no limit)",
    )
    parser.add_argument(
        "--default-max-silent",
        type=_positive_int,
        metavar="SECONDS",
        help="maximum seconds without log output for builds whose job sets none "
        "(default: no limit)",
    )


def _add_run_intervals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between two scans of the queue when no NOTIFY arrives (default: 5)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between two writes of the counters to buildq.runners (default: 10)",
    )
    parser.add_argument(
        "--grace-period",
        type=_non_negative_seconds,
        default=30.0,
        metavar="SECONDS",
        help=(
            "seconds that running builds get to end after SIGTERM or SIGINT before they "
            "are killed and returned to the queue (default: 30)"
        ),
    )
    parser.add_argument(
        "--lock-timeout",
        type=_lock_timeout_seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help=(
            "maximum seconds that a database call waits for a lock, such as a build's row "
            "lock held by an open transaction in psql, before the call fails and is retried. "
            f"0 means no limit (default: {DEFAULT_LOCK_TIMEOUT:g})"
        ),
    )


def _format_duration(summary: BuildSummary) -> str:
    if summary.start_time is None or summary.stop_time is None:
        return "-"
    return f"{(summary.stop_time - summary.start_time).total_seconds():.1f}s"


def _run_status(args: argparse.Namespace) -> int:
    with BuildqClient(conninfo=resolve_dsn(args.dsn), max_size=1) as client:
        builds = client.list_builds(limit=args.limit)
    header = ("id", "job", "status", "cached", "finished_by", "duration", "size", "release")
    rows = [
        (
            str(build.id),
            build.job,
            build.status_name,
            "yes" if build.is_cached_build else "no",
            build.finished_by or "-",
            _format_duration(build),
            "-" if build.size is None else str(build.size),
            build.release_name or "-",
        )
        for build in builds
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    totals = Counter(build.status_name for build in builds)
    summary = ", ".join(f"{count} {name}" for name, count in sorted(totals.items()))
    noun = "build" if len(builds) == 1 else "builds"
    print(f"{len(builds)} {noun}" + (f": {summary}" if summary else ""))
    return 0


def _add_status(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="print a table of the newest builds",
        description=(
            "Print id, job, status, cached flag, finished_by, duration, output size in "
            "bytes and release name of the newest builds, oldest first, then a count "
            "per status."
        ),
    )
    add_connection_option(parser)
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=50,
        metavar="N",
        help="number of builds to show, the newest ones (default: 50)",
    )
    parser.set_defaults(handler=_run_status)


# Each entry adds one subcommand. Modules that provide more subcommands
# register them here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_migrate,
    _add_enqueue,
    _add_run,
    _add_status,
]


class _ArgumentParser(argparse.ArgumentParser):
    """Argument parser that reports invalid usage in one line instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = _ArgumentParser(
        prog="buildq",
        description="PostgreSQL-centric build queue in the style of Hydra's queue runner.",
    )
    parser.add_argument("--version", action="version", version=f"buildq {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="minimum level of log messages on stderr (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    return parser


# SQLSTATEs that mean the buildq schema, or part of it, is not installed:
# invalid_schema_name, undefined_table and undefined_function.
_SCHEMA_MISSING_SQLSTATES = frozenset({"3F000", "42P01", "42883"})

# invalid_catalog_name: the database named in the connection string does not exist.
_DATABASE_MISSING_SQLSTATE = "3D000"


def _advice_for(exc: BuildqError, command: str) -> str:
    """Return advice to append to the message of ``exc``, or "" when none applies.

    The advice names the next step for a missing buildq schema or a missing database,
    which the server's message does not give.
    """
    cause = exc.__cause__
    sqlstate = exc.sqlstate
    if sqlstate is None and isinstance(cause, BuildqError):
        sqlstate = cause.sqlstate
    if sqlstate in _SCHEMA_MISSING_SQLSTATES and command != "migrate":
        return (
            ". The buildq schema is missing or outdated in this database, "
            "so run `buildq migrate` first"
        )
    # psycopg reports a failed connection without a SQLSTATE, so the server's
    # message is the only sign that the database is missing.
    message = str(exc)
    if sqlstate == _DATABASE_MISSING_SQLSTATE or ('database "' in message and "does not exist" in message):
        return (
            ". Either create the database first (e.g. createdb NAME) or point --dsn or "
            "BUILDQ_DSN at another one"
        )
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except BuildqError as exc:
        logger.debug("command failed", exc_info=True)
        advice = _advice_for(exc, args.command)
        print(f"buildq {args.command}: error: {exc}{advice}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"buildq {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
