"""Read jobset files and write the recipe files that the queue runner builds.

A jobset is a TOML file with one table per job under ``jobs``::

    [jobs.hello-c]
    command = "cc -O2 -o \\"$out/bin/hello\\" \\"$src/hello.c\\" && \\"$out/bin/hello\\""
    system = "x86_64-linux"   # optional, default: this machine's system
    timeout = 120             # optional, seconds of total build time, > 0
    max_silent = 60           # optional, seconds without log output, > 0
    priority = 0              # optional integer, default 0

``command`` runs under ``/bin/sh -c`` with ``$out`` set to an empty output directory and
``$src`` set to the directory that contains the jobset file. A job without ``timeout`` or
``max_silent`` has no such limit. A job name may contain ASCII letters, digits and
``._+-`` and must not start with ``.``, because it becomes part of a file name.

A recipe is the JSON document that :func:`write_recipe` derives from one job. Its file
name starts with a hash of its bytes, so an unchanged job always maps to the same path
and any change to the command, the limits or the jobset directory gives a new path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RECIPE_FORMAT",
    "Job",
    "Jobset",
    "JobsetError",
    "Recipe",
    "RecipeError",
    "default_system",
    "read_jobset",
    "read_recipe",
    "write_recipe",
]

logger = logging.getLogger(__name__)

#: Version of the recipe JSON layout, stored in every recipe as ``format``.
RECIPE_FORMAT = 1

# The maximum job name length leaves room for the 33-character hash prefix and the
# ".recipe" suffix within the 255-byte file name limit of ext4, XFS and tmpfs.
MAX_JOB_NAME_LENGTH = 200

# Limits and priorities must fit a PostgreSQL integer, so that the database can store them.
_MAX_INT4 = 2**31 - 1
_MIN_INT4 = -(2**31)

_JOB_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
_SYSTEM = re.compile(r"[A-Za-z0-9_.+-]+")
_JOB_KEYS = ("command", "system", "timeout", "max_silent", "priority")
_RECIPE_KEYS = ("format", "job", "command", "src", "timeout", "max_silent")
_RECIPE_FILE_NAME = re.compile(r"(?P<digest>[0-9a-f]{32})-(?P<job>.+)\.recipe")


class JobsetError(ValueError):
    """Error for a jobset file that is missing, unreadable or invalid."""


class RecipeError(ValueError):
    """Error for a recipe file that is missing, unreadable or corrupt."""


@dataclass(frozen=True)
class Job:
    """One job of a jobset, with its defaults filled in."""

    name: str
    command: str
    system: str
    timeout: int | None
    max_silent: int | None
    priority: int


@dataclass(frozen=True)
class Jobset:
    """A parsed jobset file. ``directory`` is absolute and becomes ``$src`` of every job."""

    path: Path
    directory: Path
    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class Recipe:
    """Everything the executor needs to build one job, read from a recipe file.

    ``timeout`` and ``max_silent`` are seconds, or None for no limit.
    """

    job_name: str
    command: str
    src: Path
    timeout: float | None
    max_silent: float | None


def default_system() -> str:
    """Return this machine's system in Hydra's notation, for example ``x86_64-linux``."""
    return f"{platform.machine()}-{platform.system().lower()}"


def read_jobset(path: Path) -> Jobset:
    """Parse and validate a jobset file.

    Raises JobsetError naming the file, the job and the offending value.
    """
    path = Path(path).absolute()
    document = _load_toml(path)

    unknown = sorted(set(document) - {"jobs"})
    if unknown:
        raise JobsetError(
            f"{path}: unknown top-level key {unknown[0]!r}. "
            "Put every job in a [jobs.NAME] table."
        )
    tables = document.get("jobs")
    if not isinstance(tables, dict) or not tables:
        raise JobsetError(f"{path}: no jobs defined. Add at least one [jobs.NAME] table.")

    jobs = tuple(_parse_job(path, name, table) for name, table in tables.items())
    return Jobset(path=path, directory=path.parent, jobs=jobs)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise JobsetError(f"{path}: jobset file not found. Pass the path of a TOML file.") from None
    except OSError as exc:
        raise JobsetError(f"{path}: cannot read jobset file: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise JobsetError(f"{path}: invalid TOML: the file is not UTF-8 ({exc.reason}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise JobsetError(f"{path}: invalid TOML: {exc}. Fix the syntax there.") from exc


def _parse_job(path: Path, name: str, table: object) -> Job:
    where = f"{path}: job {name!r}"
    _check_job_name(where, name)
    if not isinstance(table, dict):
        raise JobsetError(f"{where}: expected a table with a command, got {table!r}.")

    unknown = sorted(set(table) - set(_JOB_KEYS))
    if unknown:
        raise JobsetError(
            f"{where}: unknown key {unknown[0]!r}. Allowed keys: {', '.join(_JOB_KEYS)}."
        )

    command = table.get("command")
    if command is None:
        raise JobsetError(f"{where}: missing 'command'. Add the shell command that builds the job.")
    if not isinstance(command, str) or not command.strip():
        raise JobsetError(f"{where}: 'command' must be a non-empty string, got {command!r}.")
    if "\0" in command:
        raise JobsetError(f"{where}: 'command' contains a NUL character. Remove it.")

    system = table.get("system", default_system())
    if not isinstance(system, str) or not _SYSTEM.fullmatch(system):
        raise JobsetError(
            f"{where}: invalid 'system' {system!r}. "
            "Use a name such as 'x86_64-linux', or remove the key to build on this machine."
        )

    return Job(
        name=name,
        command=command,
        system=system,
        timeout=_optional_seconds(where, "timeout", table.get("timeout")),
        max_silent=_optional_seconds(where, "max_silent", table.get("max_silent")),
        priority=_priority(where, table.get("priority", 0)),
    )


def _check_job_name(where: str, name: str) -> None:
    if not _JOB_NAME.fullmatch(name):
        raise JobsetError(
            f"{where}: invalid job name. Use ASCII letters, digits and '._+-', "
            "and do not start the name with '.'."
        )
    if len(name) > MAX_JOB_NAME_LENGTH:
        raise JobsetError(
            f"{where}: job name is {len(name)} characters long. "
            f"Shorten it to at most {MAX_JOB_NAME_LENGTH}."
        )


def _optional_seconds(where: str, key: str, value: object) -> int | None:
    if value is None:
        return None
    # bool is a subclass of int, but "timeout = true" is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_INT4:
        raise JobsetError(
            f"{where}: {key!r} must be a whole number of seconds from 1 to {_MAX_INT4}, "
            f"got {value!r}. Fix the value, or remove the key for no limit."
        )
    return value


def _priority(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not _MIN_INT4 <= value <= _MAX_INT4:
        raise JobsetError(
            f"{where}: 'priority' must be an integer from {_MIN_INT4} to {_MAX_INT4}, "
            f"got {value!r}."
        )
    return value


def write_recipe(store: Path, jobset: Jobset, job: Job) -> Path:
    """Write the recipe of ``job`` into ``store`` and return the recipe's path.

    The file name is ``<first 32 hex digits of the SHA-256 of the file>-<job name>.recipe``.
    An existing file with the same content is left alone. Otherwise the recipe is written
    to a temporary file in ``store`` and renamed into place, so readers never see a
    partial recipe. Raises OSError if the store cannot be written.
    """
    recipe = Recipe(
        job_name=job.name,
        command=job.command,
        src=jobset.directory,
        timeout=job.timeout,
        max_silent=job.max_silent,
    )
    content = _encode_recipe(recipe)
    digest = hashlib.sha256(content).hexdigest()[:32]
    path = Path(store) / f"{digest}-{job.name}.recipe"

    try:
        if path.read_bytes() == content:
            return path
        logger.warning("recipe %s has unexpected content, rewriting it", path)
    except FileNotFoundError:
        pass

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, content)
    logger.debug("wrote recipe %s for job %s", path, job.name)
    return path


def _encode_recipe(recipe: Recipe) -> bytes:
    # Sorted keys and fixed separators make the bytes, and so the file name,
    # depend only on the recipe's values.
    document = {
        "format": RECIPE_FORMAT,
        "job": recipe.job_name,
        "command": recipe.command,
        "src": str(recipe.src),
        "timeout": recipe.timeout,
        "max_silent": recipe.max_silent,
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _write_atomically(path: Path, content: bytes) -> None:
    descriptor, temporary_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary_name, 0o644)
        os.replace(temporary_name, path)
    except BaseException:
        os.unlink(temporary_name)
        raise


def read_recipe(path: Path) -> Recipe:
    """Read and validate a recipe file written by :func:`write_recipe`.

    Raises RecipeError if the file is missing or unreadable, if it is not a valid recipe,
    or if its content does not match the hash and job name in its file name.
    """
    path = Path(path)
    name_match = _RECIPE_FILE_NAME.fullmatch(path.name)
    if name_match is None:
        raise RecipeError(
            f"{path}: not a recipe file name. Expected '<32 hex digits>-<job>.recipe'."
        )

    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(
            f"{path}: recipe not found. It was deleted after the build was queued. "
            "Write the recipe again from the jobset and queue a new build."
        ) from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc.strerror}.") from exc

    if hashlib.sha256(content).hexdigest()[:32] != name_match["digest"]:
        raise RecipeError(
            f"{path}: corrupt recipe, because its content does not match the hash in its name. "
            "Delete the file and write the recipe again from the jobset."
        )

    recipe = _decode_recipe(path, content)
    if recipe.job_name != name_match["job"]:
        raise RecipeError(
            f"{path}: corrupt recipe, because it names job {recipe.job_name!r}. "
            "Delete the file and write the recipe again from the jobset."
        )
    return recipe


def _decode_recipe(path: Path, content: bytes) -> Recipe:
    try:
        document = json.loads(content)
    except ValueError as exc:
        # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors.
        raise RecipeError(f"{path}: corrupt recipe, invalid JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise RecipeError(f"{path}: corrupt recipe, expected a JSON object.")
    if document.get("format") != RECIPE_FORMAT:
        raise RecipeError(
            f"{path}: unsupported recipe format {document.get('format')!r}, "
            f"expected {RECIPE_FORMAT}. Write the recipe again with this version of buildq."
        )
    if sorted(document) != sorted(_RECIPE_KEYS):
        raise RecipeError(
            f"{path}: corrupt recipe, keys are {sorted(document)}, "
            f"expected {sorted(_RECIPE_KEYS)}."
        )

    for key in ("job", "command", "src"):
        if not isinstance(document[key], str) or not document[key]:
            raise RecipeError(f"{path}: corrupt recipe, {key!r} must be a non-empty string.")
    if not os.path.isabs(document["src"]):
        raise RecipeError(f"{path}: corrupt recipe, 'src' {document['src']!r} is not absolute.")
    for key in ("timeout", "max_silent"):
        if not _is_limit(document[key]):
            raise RecipeError(
                f"{path}: corrupt recipe, {key!r} must be null or a positive number of seconds, "
                f"got {document[key]!r}."
            )

    return Recipe(
        job_name=document["job"],
        command=document["command"],
        src=Path(document["src"]),
        timeout=document["timeout"],
        max_silent=document["max_silent"],
    )


def _is_limit(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0

