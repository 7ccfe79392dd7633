"""Apply db/migrations in order, then re-apply db/functions.

Each migration file inserts its own row into buildq.schema_migrations, and
the migrator adds the file's SHA-256. A run applies every pending migration
and then the function files in one transaction, so it either brings the
database fully up to date or changes nothing. A session-level advisory lock
serializes concurrent migrators: the second one waits, then finds nothing
pending.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from buildq.errors import MigrationError, map_database_error

__all__ = [
    "MIGRATION_LOCK_KEY",
    "MigrationFile",
    "MigrationResult",
    "default_sql_dir",
    "find_function_files",
    "find_migrations",
    "migrate",
    "pending_migrations",
]

logger = logging.getLogger(__name__)

# Key of the advisory lock held while migrating: the bytes of "buildq" read
# as an integer. Any constant works as long as every migrator uses it.
MIGRATION_LOCK_KEY = int.from_bytes(b"buildq", "big")

SQL_DIR_ENV = "BUILDQ_SQL_DIR"

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class MigrationFile:
    """One file of db/migrations."""

    version: int
    description: str
    path: Path
    text: str
    checksum: str


@dataclass(frozen=True)
class MigrationResult:
    """Summary of one `migrate` run.

    ``applied`` lists the versions that this run applied. ``adopted`` lists the
    versions that were applied by hand and got their checksum recorded.
    ``function_files`` is the number of function files re-applied.
    """

    applied: list[int]
    adopted: list[int]
    function_files: int


def default_sql_dir() -> Path:
    """Return the db/ directory from $BUILDQ_SQL_DIR, else the one in this checkout."""
    configured = os.environ.get(SQL_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "db"


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_migrations(sql_dir: Path) -> list[MigrationFile]:
    """Read db/migrations/NNNN_description.sql files in version order.

    Raises MigrationError for an invalid file name, a duplicate version or a
    missing directory.
    """
    directory = sql_dir / "migrations"
    if not directory.is_dir():
        raise MigrationError(
            f"migration directory {directory} not found. "
            f"Pass --sql-dir or set {SQL_DIR_ENV} to the project's db/ directory."
        )

    migrations: dict[int, MigrationFile] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"invalid migration file name {path.name!r}. "
                "Rename it to NNNN_description.sql with a four-digit version "
                "and a lowercase snake_case description."
            )
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(
                f"migration version {version} is used by both "
                f"{migrations[version].path.name} and {path.name}. Renumber one of them."
            )
        data = path.read_bytes()
        migrations[version] = MigrationFile(
            version=version,
            description=match.group(2),
            path=path,
            text=data.decode("utf-8"),
            checksum=_checksum(data),
        )
    return [migrations[version] for version in sorted(migrations)]


def find_function_files(sql_dir: Path) -> list[Path]:
    """Return the files of db/functions in file-name order."""
    directory = sql_dir / "functions"
    if not directory.is_dir():
        raise MigrationError(
            f"function directory {directory} not found. "
            f"Pass --sql-dir or set {SQL_DIR_ENV} to the project's db/ directory."
        )
    return sorted(path for path in directory.iterdir() if path.suffix == ".sql")


def _acquire_lock(conn: psycopg.Connection) -> None:
    acquired = conn.execute("select pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
    if acquired is not None and acquired[0]:
        return
    logger.info("waiting for another migrator to release the migration lock")
    conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))


def _applied_checksums(conn: psycopg.Connection) -> dict[int, str | None]:
    exists = conn.execute("select to_regclass('buildq.schema_migrations') is not null").fetchone()
    if exists is None or not exists[0]:
        return {}
    rows = conn.execute("select version, checksum from buildq.schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def _verify_applied(
    conn: psycopg.Connection,
    migrations: list[MigrationFile],
    applied: dict[int, str | None],
) -> list[int]:
    """Verify applied migrations against their recorded checksums and return the adopted versions.

    Raises MigrationError for an applied version that this checkout does not contain
    and for a file that was edited after it was applied. A migration applied by hand
    has no checksum yet, so it is adopted: the migrator records the file's current
    checksum.
    """
    by_version = {migration.version: migration for migration in migrations}

    unknown = sorted(set(applied) - set(by_version))
    if unknown:
        raise MigrationError(
            f"the database has applied migrations {unknown}, which are not found in this "
            "checkout's db/migrations. Run the buildq version that applied them, or a newer one."
        )

    adopted: list[int] = []
    for version, recorded in sorted(applied.items()):
        migration = by_version[version]
        if recorded is None:
            # Applied by hand with psql, so trust the file as it is now.
            with conn.transaction():
                conn.execute(
                    "update buildq.schema_migrations set checksum = %s "
                    "where version = %s and checksum is null",
                    (migration.checksum, version),
                )
            logger.warning(
                "migration %s (%s) was applied without a checksum, "
                "so the checksum %s of the current file was recorded",
                version,
                migration.path.name,
                migration.checksum[:12],
            )
            adopted.append(version)
        elif recorded != migration.checksum:
            raise MigrationError(
                f"migration file {migration.path} was edited after it was applied "
                f"(recorded sha256 {recorded[:12]}, file has {migration.checksum[:12]}). "
                "Restore the released file and put the change into a new migration."
            )
    return adopted


def _apply(conn: psycopg.Connection, migration: MigrationFile) -> None:
    started = time.monotonic()
    with conn.transaction():
        conn.execute(migration.text.encode("utf-8"))
        recorded = conn.execute(
            "update buildq.schema_migrations set checksum = %s where version = %s",
            (migration.checksum, migration.version),
        )
        if recorded.rowcount != 1:
            raise MigrationError(
                f"migration {migration.path.name} did not insert its row into "
                "buildq.schema_migrations. Add "
                f"\"insert into buildq.schema_migrations (version, description) "
                f"values ({migration.version}, '{migration.description}');\" to the file."
            )
    logger.info(
        "applied migration %s (%s) in %.0f ms",
        migration.version,
        migration.path.name,
        (time.monotonic() - started) * 1000,
    )


def _apply_functions(conn: psycopg.Connection, paths: list[Path]) -> None:
    started = time.monotonic()
    with conn.transaction():
        for path in paths:
            try:
                conn.execute(path.read_bytes())
            except psycopg.Error as exc:
                raise MigrationError(f"function file {path} failed: {exc}") from exc
    logger.info("applied %s function files in %.0f ms", len(paths), (time.monotonic() - started) * 1000)


def pending_migrations(conninfo: str, sql_dir: Path) -> list[MigrationFile]:
    """Return the migrations that `migrate` would apply, without applying any."""
    migrations = find_migrations(sql_dir)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            applied = _applied_checksums(conn)
    except psycopg.Error as exc:
        raise map_database_error(exc) from exc
    return [migration for migration in migrations if migration.version not in applied]


def migrate(conninfo: str, sql_dir: Path | None = None) -> MigrationResult:
    """Bring the database at conninfo up to date and return what was done.

    Running it on an up-to-date database applies no migration and only
    re-applies the function files, which use `create or replace`.
    """
    sql_dir = sql_dir or default_sql_dir()
    migrations = find_migrations(sql_dir)
    function_files = find_function_files(sql_dir)

    applied_now: list[int] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            _acquire_lock(conn)
            try:
                # All files run in one outer transaction, in which each file's
                # own transaction becomes a savepoint. A failure in any file, a
                # function file included, therefore leaves the database exactly
                # as it was. Otherwise a broken function file would leave new
                # tables committed without their functions, triggers and grants.
                with conn.transaction():
                    applied = _applied_checksums(conn)
                    adopted = _verify_applied(conn, migrations, applied)
                    for migration in migrations:
                        if migration.version in applied:
                            continue
                        _apply(conn, migration)
                        applied_now.append(migration.version)
                    _apply_functions(conn, function_files)
            finally:
                if not conn.closed and not conn.broken:
                    conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    except psycopg.Error as exc:
        raise map_database_error(exc) from exc

    if applied_now:
        logger.info("database is up to date after applying migrations %s", applied_now)
    else:
        logger.info("no pending migrations, so the database is up to date")
    return MigrationResult(applied=applied_now, adopted=adopted, function_files=len(function_files))
