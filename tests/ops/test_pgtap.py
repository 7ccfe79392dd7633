"""Run the pgTAP tests of tests/pgtap with pg_prove against a fresh database."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from tests.conftest import Database, require_extension

PGTAP_DIR = Path(__file__).resolve().parents[1] / "pgtap"


def test_pgtap_suite(db: Database, conn: psycopg.Connection) -> None:
    require_extension(conn, "pgtap")
    pg_prove = shutil.which("pg_prove")
    assert pg_prove is not None, "pg_prove is not on PATH; install it (Debian: libtap-parser-sourcehandler-pgtap-perl)"
    info = conn.info
    env = dict(os.environ)
    if info.password:
        env["PGPASSWORD"] = info.password

    result = subprocess.run(
        [
            pg_prove,
            "-h", info.host,
            "-p", str(info.port),
            "-U", info.user,
            "-d", info.dbname,
            *sorted(str(path) for path in PGTAP_DIR.glob("*.sql")),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, f"pg_prove failed:\n{result.stdout}\n{result.stderr}"
