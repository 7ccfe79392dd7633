"""The command line names the bad value and says what to do."""

from __future__ import annotations

import pytest

from buildq.cli import main


def test_invalid_env_dsn_names_variable(monkeypatch, capsys):
    monkeypatch.setenv("BUILDQ_DSN", "nonsense")

    code = main(["status"])
    error = capsys.readouterr().err

    assert code == 1
    assert "invalid connection string in BUILDQ_DSN" in error
    assert "nonsense" in error


def test_invalid_option_dsn_names_option(capsys):
    code = main(["status", "--dsn", "hots=db"])
    error = capsys.readouterr().err

    assert code == 1
    assert "invalid connection string in --dsn" in error
    assert "hots" in error


@pytest.mark.parametrize("command", [["status"], ["run", "--until-idle"]])
def test_missing_schema_says_migrate(db, conn, command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conn.execute("drop schema buildq cascade")

    code = main([*command, "--dsn", db.dsn])
    error = capsys.readouterr().err

    assert code == 1
    assert "run `buildq migrate` first" in error


def test_missing_database_says_create(db, capsys):
    code = main(["migrate", "--dsn", f"{db.dsn} dbname=buildq_no_such_database"])
    error = capsys.readouterr().err

    assert code == 1
    assert "create the database first" in error
