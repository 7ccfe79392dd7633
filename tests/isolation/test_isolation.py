"""Run PostgreSQL's isolation tester over the specs in tests/isolation/specs.

Each spec interleaves the steps of several sessions in fixed orders. The
output, including which calls block and what each returns, must match
tests/isolation/expected/NAME.out exactly.
"""

from __future__ import annotations

import difflib
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SPECS = sorted((HERE / "specs").glob("*.spec"))


def find_isolationtester() -> str | None:
    """Return the path of isolationtester, or None if it is not found.

    BUILDQ_ISOLATIONTESTER overrides the search, which prefers the newest installed
    PostgreSQL and then looks on PATH.
    """
    configured = os.environ.get("BUILDQ_ISOLATIONTESTER")
    if configured:
        return configured
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/lib/pgxs/src/test/isolation/isolationtester"),
        key=lambda path: int(path.split("/")[4]),
    )
    return found[-1] if found else shutil.which("isolationtester")


@pytest.mark.parametrize("spec", SPECS, ids=[spec.stem for spec in SPECS])
def test_isolation_spec(db, spec: Path) -> None:
    tester = find_isolationtester()
    if tester is None:
        message = (
            "isolationtester not found. Install it (Debian: postgresql-client-15) "
            "or set BUILDQ_ISOLATIONTESTER to its path."
        )
        if os.environ.get("BUILDQ_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(message)
        pytest.skip(message)

    result = subprocess.run(
        [tester, db.dsn],
        stdin=spec.open("rb"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    expected = (HERE / "expected" / f"{spec.stem}.out").read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            result.stdout.splitlines(keepends=True),
            fromfile="expected",
            tofile="actual",
        )
    )

    assert result.returncode == 0, result.stderr
    assert diff == "", diff
