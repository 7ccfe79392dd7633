"""Error messages of the command line, which name the invalid value and the next step."""

from __future__ import annotations

import pytest

from buildq import cli
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
def test_missing_schema_suggests_migrate(db, conn, command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conn.execute("drop schema buildq cascade")

    code = main([*command, "--dsn", db.dsn])
    error = capsys.readouterr().err

    assert code == 1
    assert "run `buildq migrate` first" in error


def test_missing_database_suggests_create(db, capsys):
    code = main(["migrate", "--dsn", f"{db.dsn} dbname=buildq_no_such_database"])
    error = capsys.readouterr().err

    assert code == 1
    assert "create the database first" in error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", "must be 0 or more seconds, got '-1'"),
        ("thirty", "invalid number of seconds 'thirty'"),
        ("nan", "got 'nan'"),
        ("3e6", "must be at most 2147483.647 seconds"),
    ],
)
def test_invalid_lock_timeout_exits_2(value, expected, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["run", f"--lock-timeout={value}"])
    error = capsys.readouterr().err

    assert caught.value.code == 2
    assert error.count("\n") == 1
    assert "--lock-timeout" in error
    assert expected in error


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [([], 30.0), (["--lock-timeout", "0"], 0.0), (["--lock-timeout", "2.5"], 2.5)],
)
def test_lock_timeout_reaches_runner_config(arguments, expected, monkeypatch):
    configs = []

    class RecordingRunner:
        def __init__(self, config):
            configs.append(config)

        def run(self):
            return 0

    monkeypatch.setattr(cli, "Runner", RecordingRunner)

    assert main(["run", *arguments]) == 0
    assert configs[0].lock_timeout == expected
