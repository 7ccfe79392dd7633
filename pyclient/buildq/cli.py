"""Command line entry point: `buildq SUBCOMMAND ...`.

Exit codes: 0 success, 1 failure (the error is printed), 2 invalid usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from buildq import __version__
from buildq.errors import BuildqError
from buildq.migrate import default_sql_dir, migrate, pending_migrations
from buildq.settings import DSN_ENV, resolve_dsn

logger = logging.getLogger("buildq")

Handler = Callable[[argparse.Namespace], int]


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
    print(f"migrations applied: {applied}; function files applied: {result.function_files}")
    return 0


def _add_migrate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the buildq schema",
        description=(
            "Apply pending files of db/migrations in order, each in its own "
            "transaction, then re-apply every file of db/functions. Holds an "
            "advisory lock, so concurrent runs apply each migration once. "
            "Fails without changes when an applied migration file was edited."
        ),
    )
    add_connection_option(parser)
    parser.add_argument(
        "--sql-dir",
        type=Path,
        help="directory holding migrations/ and functions/ (default: this checkout's db/)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list pending migrations and change nothing",
    )
    parser.set_defaults(handler=_run_migrate)


# Each entry adds one subcommand; modules that provide more subcommands
# register them here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_migrate]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
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
        print(f"buildq {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"buildq {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
