"""The migrator (`buildq migrate`) and hand installs with psql build the same schema.

Several tests need an empty database, not the migrated copy of the `db`
fixture. The `empty_database` fixture creates them on the same server with
unique names and drops them afterwards.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from buildq.errors import MigrationError
from buildq.migrate import MIGRATION_LOCK_KEY, default_sql_dir, migrate

# Seconds to wait for a migrator process to reach the lock or to finish.
PROCESS_TIMEOUT = 60

# pg_dump lines that differ between two dumps of equal schemas: the server
# and pg_dump versions, and the random key of \restrict and \unrestrict
# (added in pg_dump 15.14, 16.10 and 17.6).
VOLATILE_DUMP_PREFIXES = ("-- Dumped from", "-- Dumped by", "\\restrict", "\\unrestrict")

_database_numbers = itertools.count(1)


@pytest.fixture
def empty_database(postgresql_server) -> Iterator[Callable[[], str]]:
    """Return a function that creates an empty database and returns its connection string."""
    server = {
        "host": postgresql_server.host,
        "port": postgresql_server.port,
        "user": postgresql_server.user,
    }
    if postgresql_server.password:
        server["password"] = postgresql_server.password
    admin_dsn = make_conninfo(**server, dbname=postgresql_server.maintenance_dbname)
    created: list[str] = []

    def create() -> str:
        name = f"buildq_test_{os.getpid()}_extra_{next(_database_numbers)}"
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("create database {} template template0").format(sql.Identifier(name))
            )
        created.append(name)
        return make_conninfo(**server, dbname=name)

    yield create

    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for name in created:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def sql_files(sql_dir: Path) -> list[Path]:
    """Return every migration file, then every function file, in the order migrate applies them."""
    migrations = sorted((sql_dir / "migrations").glob("*.sql"))
    functions = sorted((sql_dir / "functions").glob("*.sql"))
    return migrations + functions


def install_with_psql(dsn: str, files: list[Path]) -> None:
    """Apply files in one transaction with psql, as a DBA installs by hand."""
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", dsn]
    for path in files:
        command += ["-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buildq", *args],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


def schema_dump(dsn: str) -> list[str]:
    """Return `pg_dump --schema-only` of the database without its volatile lines."""
    result = subprocess.run(
        ["pg_dump", "--schema-only", "--dbname", dsn], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return [line for line in lines if not line.startswith(VOLATILE_DUMP_PREFIXES)]


def dump_diff(first: list[str], second: list[str]) -> list[str]:
    return list(difflib.unified_diff(first, second, "first", "second", lineterm="", n=2))


def query_rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_psql_install_matches_migrate(empty_database, tmp_path):
    # Both installs read one copy of db/, so that an edit of the checkout
    # during the test run cannot make them differ.
    sql_dir = shutil.copytree(default_sql_dir(), tmp_path / "db")
    by_psql = empty_database()
    by_migrate = empty_database()

    install_with_psql(by_psql, sql_files(sql_dir))
    migrate(by_migrate, sql_dir)

    psql_dump = schema_dump(by_psql)
    assert "CREATE FUNCTION buildq.finish_build(" in "\n".join(psql_dump)
    assert dump_diff(psql_dump, schema_dump(by_migrate)) == []
    for query in (
        "select * from buildq.build_statuses order by code",
        "select version, description from buildq.schema_migrations order by version",
    ):
        assert query_rows(by_psql, query) == query_rows(by_migrate, query)


def test_migrate_twice_is_noop(empty_database):
    dsn = empty_database()
    first = run_cli("migrate", "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    dump_before = schema_dump(dsn)
    log_before = query_rows(dsn, "select * from buildq.schema_migrations order by version")

    second = run_cli("migrate", "--dsn", dsn)

    assert second.returncode == 0, second.stderr
    assert "migrations applied: none" in second.stdout
    assert query_rows(dsn, "select * from buildq.schema_migrations order by version") == (
        log_before
    )
    assert dump_diff(dump_before, schema_dump(dsn)) == []


def test_function_files_reapply_harmless(db, scalar, tmp_path):
    # Both applies read a copy, so that an edit of db/functions during the
    # test run cannot make the dumps differ.
    copy = shutil.copytree(default_sql_dir() / "functions", tmp_path / "functions")
    function_files = sorted(copy.glob("*.sql"))
    install_with_psql(db.dsn, function_files)
    dump_before = schema_dump(db.dsn)

    install_with_psql(db.dsn, function_files)

    assert dump_diff(dump_before, schema_dump(db.dsn)) == []
    build_id = scalar("select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a.drv')")
    assert scalar("select buildq.finish_build(%s, 0)", (build_id,)) is True
    assert scalar("select buildq.finish_build(%s, 0)", (build_id,)) is False


def waiting_advisory_locks(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select count(*) from pg_locks"
        " where locktype = 'advisory' and not granted"
        " and database = (select oid from pg_database where datname = current_database())"
    ).fetchone()
    assert row is not None
    return row[0]


def test_concurrent_migrators_apply_once(empty_database):
    dsn = empty_database()
    migration_count = len(list((default_sql_dir() / "migrations").glob("*.sql")))
    command = [sys.executable, "-m", "buildq", "migrate", "--dsn", dsn]

    # The test holds the migration lock until both migrators wait for it, so
    # that they start applying at the same moment once it is released.
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        migrators = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while waiting_advisory_locks(holder) < 2:
                assert [proc.poll() for proc in migrators] == [None, None], (
                    "a migrator exited before it waited for the lock"
                )
                assert time.monotonic() < deadline, "the migrators never waited for the lock"
                time.sleep(0.05)
            holder.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            outputs = [proc.communicate(timeout=PROCESS_TIMEOUT) for proc in migrators]
        finally:
            for proc in migrators:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    assert [proc.returncode for proc in migrators] == [0, 0], outputs
    stdouts = [stdout for stdout, _ in outputs]
    assert sum("migrations applied: none" in stdout for stdout in stdouts) == 1
    assert query_rows(dsn, "select count(*) from buildq.schema_migrations") == [
        (migration_count,)
    ]


def edited_copy(tmp_path: Path) -> Path:
    """Copy db/ to tmp_path and edit its first migration and one function file."""
    copy = tmp_path / "db"
    shutil.copytree(default_sql_dir(), copy)
    first_migration = sorted((copy / "migrations").glob("*.sql"))[0]
    with first_migration.open("a") as file:
        file.write("-- edited after it was applied\n")
    with (copy / "functions" / "clear_busy.sql").open("a") as file:
        file.write("comment on function buildq.clear_busy(text) is 'from the edited copy';\n")
    return copy


def test_edited_migration_rejected(db, scalar, tmp_path):
    copy = edited_copy(tmp_path)
    checksum_before = scalar("select checksum from buildq.schema_migrations where version = 1")
    comment_before = scalar("select obj_description('buildq.clear_busy(text)'::regprocedure)")

    with pytest.raises(MigrationError) as excinfo:
        migrate(db.dsn, copy)

    assert "0001_create_builds_and_steps.sql" in str(excinfo.value)
    assert scalar("select checksum from buildq.schema_migrations where version = 1") == (
        checksum_before
    )
    assert scalar("select obj_description('buildq.clear_busy(text)'::regprocedure)") == (
        comment_before
    )


def test_edited_migration_cli_fails(db, tmp_path):
    copy = edited_copy(tmp_path)

    result = run_cli("migrate", "--dsn", db.dsn, "--sql-dir", str(copy))

    assert result.returncode == 1
    assert "0001_create_builds_and_steps.sql" in result.stderr


def test_hand_install_adopted(empty_database, tmp_path):
    sql_dir = shutil.copytree(default_sql_dir(), tmp_path / "db")
    dsn = empty_database()
    install_with_psql(dsn, sql_files(sql_dir))
    migration_files = sorted((sql_dir / "migrations").glob("*.sql"))
    versions = [int(path.name[:4]) for path in migration_files]
    recorded = "select count(*) from buildq.schema_migrations where checksum is not null"
    assert query_rows(dsn, recorded) == [(0,)]

    result = migrate(dsn, sql_dir)

    assert result.adopted == versions
    assert result.applied == []
    assert query_rows(dsn, "select checksum from buildq.schema_migrations order by version") == [
        (hashlib.sha256(path.read_bytes()).hexdigest(),) for path in migration_files
    ]
    assert migrate(dsn, sql_dir).adopted == []


def test_new_migration_applied_once(db, scalar, tmp_path):
    copy = tmp_path / "db"
    shutil.copytree(default_sql_dir(), copy)
    version = max(int(path.name[:4]) for path in (copy / "migrations").glob("*.sql")) + 1
    (copy / "migrations" / f"{version:04d}_create_probe.sql").write_text(
        "insert into buildq.schema_migrations (version, description)\n"
        f"values ({version}, 'create_probe');\n"
        "create table buildq.probe (id integer);\n"
    )

    first = migrate(db.dsn, copy)
    second = migrate(db.dsn, copy)

    assert first.applied == [version]
    assert second.applied == []
    assert scalar("select to_regclass('buildq.probe') is not null") is True


def test_failed_function_file_changes_nothing(empty_database, tmp_path):
    dsn = empty_database()
    sql_dir = tmp_path / "db"
    shutil.copytree(default_sql_dir(), sql_dir)
    (sql_dir / "functions" / "zz_broken.sql").write_text("select no_such_function();\n")

    with pytest.raises(MigrationError):
        migrate(dsn, sql_dir)

    assert query_rows(dsn, "select to_regnamespace('buildq') is null") == [(True,)]
