"""Queue one build per job of a jobset, after writing the job's recipe into the store."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from buildq.client import BuildqClient
from buildq.jobset import JobsetError, read_jobset, write_recipe

__all__ = ["DEFAULT_STORE", "QueuedJob", "enqueue_jobset"]

logger = logging.getLogger(__name__)

#: Store directory of recipe files, relative to the current directory.
DEFAULT_STORE = Path(".buildq/store")


@dataclass(frozen=True)
class QueuedJob:
    """Queued job: its name, the id of its new build and the path of its recipe file."""

    job: str
    build_id: int
    recipe_path: Path


def enqueue_jobset(
    client: BuildqClient,
    jobset_path: Path,
    store: Path,
    *,
    only_jobs: Collection[str] | None = None,
) -> list[QueuedJob]:
    """Write the recipes of a jobset into ``store`` and queue one build per job.

    ``only_jobs`` limits the jobs queued. Recipe paths are absolute, so a runner started
    in another directory finds them. Each build is queued in its own transaction, so a
    large jobset never holds locks that block runners. Raises JobsetError for an invalid
    jobset or an unknown job name and OSError when the store cannot be written.
    """
    jobset = read_jobset(jobset_path)
    jobs = jobset.jobs
    if only_jobs is not None:
        known = {job.name for job in jobs}
        unknown = sorted(set(only_jobs) - known)
        if unknown:
            raise JobsetError(
                f"{jobset.path}: no job named {unknown[0]!r}. "
                f"Jobs in this jobset: {', '.join(sorted(known))}."
            )
        jobs = tuple(job for job in jobs if job.name in only_jobs)

    store = store.absolute()
    queued: list[QueuedJob] = []
    for job in jobs:
        recipe_path = write_recipe(store, jobset, job)
        build_id = client.queue_build(
            job=job.name,
            system=job.system,
            drv_path=str(recipe_path),
            priority=job.priority,
            timeout=job.timeout,
            max_silent=job.max_silent,
        )
        queued.append(QueuedJob(job=job.name, build_id=build_id, recipe_path=recipe_path))
    logger.info("queued %s builds from %s", len(queued), jobset.path)
    return queued
