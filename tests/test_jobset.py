"""Tests for reading jobset files and writing and reading recipe files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from buildq.jobset import (
    RECIPE_FORMAT,
    Job,
    Jobset,
    JobsetError,
    Recipe,
    RecipeError,
    default_system,
    read_jobset,
    read_recipe,
    write_recipe,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

VALID_JOBSET = """
[jobs.hello-c]
command = "cc -o \\"$out/hello\\" \\"$src/hello.c\\""
system = "aarch64-linux"
timeout = 120
max_silent = 60
priority = -5

[jobs."pkg_1.2+x"]
command = "true"
"""


def write_jobset(directory: Path, text: str) -> Path:
    path = directory / "jobset.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def jobset(tmp_path: Path) -> Jobset:
    source = tmp_path / "source"
    source.mkdir()
    return read_jobset(write_jobset(source, VALID_JOBSET))


def test_read_jobset_all_keys(jobset: Jobset, tmp_path: Path) -> None:
    assert jobset.path == tmp_path / "source" / "jobset.toml"
    assert jobset.directory == tmp_path / "source"
    assert jobset.jobs[0] == Job(
        name="hello-c",
        command='cc -o "$out/hello" "$src/hello.c"',
        system="aarch64-linux",
        timeout=120,
        max_silent=60,
        priority=-5,
    )


def test_read_jobset_defaults(jobset: Jobset) -> None:
    job = jobset.jobs[1]
    assert job.name == "pkg_1.2+x"
    assert job.system == default_system()
    assert job.timeout is None
    assert job.max_silent is None
    assert job.priority == 0


def test_read_jobset_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jobset(tmp_path, VALID_JOBSET)
    monkeypatch.chdir(tmp_path)
    jobset = read_jobset(Path("jobset.toml"))
    assert jobset.path.is_absolute()
    assert jobset.directory == tmp_path


def test_default_system_format() -> None:
    machine, _, kernel = default_system().partition("-")
    assert machine
    assert kernel == kernel.lower()
    assert kernel


def test_read_jobset_examples() -> None:
    jobset = read_jobset(EXAMPLES / "jobset.toml")
    names = [job.name for job in jobset.jobs]
    assert "hello-c" in names
    assert "doomed" in names
    assert dict((job.name, job.timeout) for job in jobset.jobs)["times-out"] == 2


# Each case is a jobset text and a fragment that the error message must contain.
INVALID_JOBSETS = {
    "unknown top-level key": ('title = "x"\n[jobs.a]\ncommand = "true"\n', "'title'"),
    "no jobs table": ("", "no jobs defined"),
    "empty jobs table": ("[jobs]\n", "no jobs defined"),
    "jobs not a table": ('jobs = "a"\n', "no jobs defined"),
    "job not a table": ('[jobs]\na = "true"\n', "expected a table"),
    "unknown job key": ('[jobs.a]\ncommand = "true"\ntimout = 5\n', "'timout'"),
    "missing command": ("[jobs.a]\ntimeout = 5\n", "missing 'command'"),
    "empty command": ('[jobs.a]\ncommand = "  "\n', "'  '"),
    "command not a string": ("[jobs.a]\ncommand = 1\n", "got 1"),
    "command with NUL": ('[jobs.a]\ncommand = "echo \\u0000"\n', "NUL"),
    "name with space": ('[jobs."a b"]\ncommand = "true"\n', "invalid job name"),
    "name with slash": ('[jobs."a/b"]\ncommand = "true"\n', "invalid job name"),
    "name starting with dot": ('[jobs.".a"]\ncommand = "true"\n', "invalid job name"),
    "name too long": (f'[jobs.{"a" * 201}]\ncommand = "true"\n', "201 characters"),
    "system with space": ('[jobs.a]\ncommand = "true"\nsystem = "x86 linux"\n', "'x86 linux'"),
    "system not a string": ('[jobs.a]\ncommand = "true"\nsystem = 64\n', "64"),
    "zero timeout": ('[jobs.a]\ncommand = "true"\ntimeout = 0\n', "got 0"),
    "negative max_silent": ('[jobs.a]\ncommand = "true"\nmax_silent = -3\n', "got -3"),
    "float timeout": ('[jobs.a]\ncommand = "true"\ntimeout = 1.5\n', "got 1.5"),
    "boolean timeout": ('[jobs.a]\ncommand = "true"\ntimeout = true\n', "got True"),
    "huge timeout": ('[jobs.a]\ncommand = "true"\ntimeout = 2147483648\n', "2147483648"),
    "string priority": ('[jobs.a]\ncommand = "true"\npriority = "high"\n', "'high'"),
    "huge priority": ('[jobs.a]\ncommand = "true"\npriority = 2147483648\n', "2147483648"),
    "invalid TOML": ("[jobs.a\ncommand = 'true'\n", "invalid TOML"),
}


@pytest.mark.parametrize(
    ("text", "fragment"), list(INVALID_JOBSETS.values()), ids=list(INVALID_JOBSETS)
)
def test_read_jobset_invalid(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_jobset(tmp_path, text)
    with pytest.raises(JobsetError) as caught:
        read_jobset(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_read_jobset_error_names_job(tmp_path: Path) -> None:
    path = write_jobset(tmp_path, '[jobs.ok]\ncommand = "true"\n[jobs.bad]\ncommand = ""\n')
    with pytest.raises(JobsetError, match="job 'bad'"):
        read_jobset(path)


def test_read_jobset_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobsetError, match="not found"):
        read_jobset(tmp_path / "absent.toml")


def test_read_jobset_directory(tmp_path: Path) -> None:
    with pytest.raises(JobsetError, match="cannot read"):
        read_jobset(tmp_path)


def test_read_jobset_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "jobset.toml"
    path.write_bytes(b'[jobs.a]\ncommand = "\xff"\n')
    with pytest.raises(JobsetError, match="not UTF-8"):
        read_jobset(path)


def test_error_classes_are_value_errors() -> None:
    assert issubclass(JobsetError, ValueError)
    assert issubclass(RecipeError, ValueError)


def test_write_recipe_file_name(jobset: Jobset, tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "store", jobset, jobset.jobs[0])
    digest, _, rest = path.name.partition("-")
    assert path.parent == tmp_path / "store"
    assert len(digest) == 32
    assert set(digest) <= set("0123456789abcdef")
    assert rest == "hello-c.recipe"


def test_write_recipe_content(jobset: Jobset, tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "store", jobset, jobset.jobs[0])
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {
        "format": RECIPE_FORMAT,
        "job": "hello-c",
        "command": 'cc -o "$out/hello" "$src/hello.c"',
        "src": str(tmp_path / "source"),
        "timeout": 120,
        "max_silent": 60,
    }


def test_write_recipe_same_content_same_path(jobset: Jobset, tmp_path: Path) -> None:
    first = write_recipe(tmp_path / "store", jobset, jobset.jobs[0])
    inode = first.stat().st_ino
    second = write_recipe(tmp_path / "store", read_jobset(jobset.path), jobset.jobs[0])
    assert second == first
    assert second.stat().st_ino == inode


def test_write_recipe_ignores_system_priority(jobset: Jobset, tmp_path: Path) -> None:
    job = jobset.jobs[0]
    other = Job(job.name, job.command, "x86_64-darwin", job.timeout, job.max_silent, 99)
    assert write_recipe(tmp_path, jobset, other) == write_recipe(tmp_path, jobset, job)


@pytest.mark.parametrize(
    "change",
    [
        {"command": "cc --version"},
        {"timeout": 121},
        {"max_silent": None},
        {"name": "hello-cc"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_write_recipe_change_new_path(jobset: Jobset, tmp_path: Path, change: dict) -> None:
    job = jobset.jobs[0]
    fields = {
        "name": job.name,
        "command": job.command,
        "system": job.system,
        "timeout": job.timeout,
        "max_silent": job.max_silent,
        "priority": job.priority,
    }
    changed = Job(**{**fields, **change})
    original_path = write_recipe(tmp_path, jobset, job)
    changed_path = write_recipe(tmp_path, jobset, changed)
    assert changed_path != original_path
    assert original_path.exists()


def test_write_recipe_other_directory_new_path(jobset: Jobset, tmp_path: Path) -> None:
    moved = Jobset(path=tmp_path / "jobset.toml", directory=tmp_path, jobs=jobset.jobs)
    job = jobset.jobs[0]
    assert write_recipe(tmp_path, moved, job) != write_recipe(tmp_path, jobset, job)


def test_write_recipe_replaces_corrupt_file(jobset: Jobset, tmp_path: Path) -> None:
    path = write_recipe(tmp_path, jobset, jobset.jobs[0])
    original = path.read_bytes()
    path.write_bytes(b"garbage")
    assert write_recipe(tmp_path, jobset, jobset.jobs[0]) == path
    assert path.read_bytes() == original


def test_write_recipe_no_temporary_files(jobset: Jobset, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for job in jobset.jobs:
        write_recipe(store, jobset, job)
    assert sorted(name.endswith(".recipe") for name in os.listdir(store)) == [True, True]


def test_read_recipe_round_trip(jobset: Jobset, tmp_path: Path) -> None:
    recipe = read_recipe(write_recipe(tmp_path, jobset, jobset.jobs[0]))
    assert recipe == Recipe(
        job_name="hello-c",
        command='cc -o "$out/hello" "$src/hello.c"',
        src=tmp_path / "source",
        timeout=120,
        max_silent=60,
    )


def test_read_recipe_without_limits(jobset: Jobset, tmp_path: Path) -> None:
    recipe = read_recipe(write_recipe(tmp_path, jobset, jobset.jobs[1]))
    assert recipe.timeout is None
    assert recipe.max_silent is None


def test_read_recipe_missing(jobset: Jobset, tmp_path: Path) -> None:
    path = write_recipe(tmp_path, jobset, jobset.jobs[0])
    path.unlink()
    with pytest.raises(RecipeError, match="recipe not found"):
        read_recipe(path)


def test_read_recipe_bad_file_name(tmp_path: Path) -> None:
    path = tmp_path / "hello-c.recipe"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(RecipeError, match="not a recipe file name"):
        read_recipe(path)


def test_read_recipe_edited_content(jobset: Jobset, tmp_path: Path) -> None:
    path = write_recipe(tmp_path, jobset, jobset.jobs[0])
    path.write_text(path.read_text(encoding="utf-8").replace("120", "121"), encoding="utf-8")
    with pytest.raises(RecipeError, match="does not match the hash"):
        read_recipe(path)


def write_raw_recipe(store: Path, job_name: str, content: bytes) -> Path:
    """Write ``content`` under a correct content-addressed name, bypassing validation."""
    digest = hashlib.sha256(content).hexdigest()[:32]
    path = store / f"{digest}-{job_name}.recipe"
    path.write_bytes(content)
    return path


GOOD_DOCUMENT = {
    "format": RECIPE_FORMAT,
    "job": "a",
    "command": "true",
    "src": "/srv/jobs",
    "timeout": None,
    "max_silent": 1.5,
}

# Each case is a recipe file content and a fragment that the error message must contain.
CORRUPT_RECIPES = {
    "invalid JSON": (b"{", "invalid JSON"),
    "not UTF-8": (b'{"job": "\xff"}', "invalid JSON"),
    "JSON array": (b"[]", "expected a JSON object"),
    "other format": (json.dumps({**GOOD_DOCUMENT, "format": 2}).encode(), "format 2"),
    "missing key": (
        json.dumps({k: v for k, v in GOOD_DOCUMENT.items() if k != "src"}).encode(),
        "keys are",
    ),
    "extra key": (json.dumps({**GOOD_DOCUMENT, "env": {}}).encode(), "keys are"),
    "empty command": (json.dumps({**GOOD_DOCUMENT, "command": ""}).encode(), "'command'"),
    "relative src": (json.dumps({**GOOD_DOCUMENT, "src": "jobs"}).encode(), "not absolute"),
    "negative timeout": (json.dumps({**GOOD_DOCUMENT, "timeout": -1}).encode(), "got -1"),
    "string max_silent": (json.dumps({**GOOD_DOCUMENT, "max_silent": "5"}).encode(), "'5'"),
    "other job name": (json.dumps({**GOOD_DOCUMENT, "job": "b"}).encode(), "names job 'b'"),
}


@pytest.mark.parametrize(
    ("content", "fragment"), list(CORRUPT_RECIPES.values()), ids=list(CORRUPT_RECIPES)
)
def test_read_recipe_corrupt(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = write_raw_recipe(tmp_path, "a", content)
    with pytest.raises(RecipeError) as caught:
        read_recipe(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_read_recipe_valid_raw_document(tmp_path: Path) -> None:
    path = write_raw_recipe(tmp_path, "a", json.dumps(GOOD_DOCUMENT).encode())
    assert read_recipe(path).max_silent == 1.5
