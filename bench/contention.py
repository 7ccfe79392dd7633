"""Measure the guarded functions under contention on a real server.

Usage:
    python bench/contention.py --dsn 'host=127.0.0.1 user=postgres' [--builds 2000] [--threads 8]

The script creates a scratch database (buildq_bench_<pid>), migrates it with
the real migrator, runs two workloads and drops the database:

- race: for each build, THREADS threads on their own connections are
  released by a barrier and call finish_build or abort_build on it. It reports
  races per second and checks that every race had exactly one winner.
- pipeline: THREADS workers claim batches with claim_builds, create a step,
  finish the step and finish the build. It reports builds per second and
  checks that no build was claimed twice.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from buildq.migrate import migrate

logger = logging.getLogger("bench.contention")


@contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """Create a migrated scratch database and drop it afterwards."""
    name = f"buildq_bench_{os.getpid()}"
    params = conninfo_to_dict(server_dsn)
    params.setdefault("dbname", "postgres")
    with psycopg.connect(make_conninfo(**params), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params["dbname"] = name
    dsn = make_conninfo(**params)
    try:
        migrate(dsn)
        yield dsn
    finally:
        params["dbname"] = conninfo_to_dict(server_dsn).get("dbname", "postgres")
        with psycopg.connect(make_conninfo(**params), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def queue_builds(dsn: str, count: int) -> list[int]:
    """Queue ``count`` builds in one statement and return their ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select buildq.queue_build('bench', 'x86_64-linux', '/store/bench-' || n)"
            " from generate_series(1, %s) as n",
            (count,),
        ).fetchall()
    return [row[0] for row in rows]


def run_race(dsn: str, builds: int, threads: int) -> dict[str, float]:
    """Race ``threads`` threads to finish each build and return the rate and the wrong races.

    A race is wrong when it had no winner or more than one.
    """
    build_ids = queue_builds(dsn, builds)
    barrier = threading.Barrier(threads)
    winners: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(index: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("set client_min_messages = warning")
            for build_id in build_ids:
                barrier.wait()
                if index % 2 == 0:
                    won = conn.execute(
                        "select buildq.finish_build(%s, 0, finished_by => %s)",
                        (build_id, f"bench-{index}"),
                    ).fetchone()
                else:
                    won = conn.execute(
                        "select buildq.abort_build(%s, 'bench', finished_by => %s)",
                        (build_id, f"bench-{index}"),
                    ).fetchone()
                if won is not None and won[0]:
                    with lock:
                        winners[build_id] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started

    wrong = [build_id for build_id in build_ids if winners[build_id] != 1]
    return {"races_per_s": builds / elapsed, "seconds": elapsed, "wrong": float(len(wrong))}


def run_pipeline(dsn: str, builds: int, threads: int, batch: int) -> dict[str, float]:
    """Claim, step and finish every build with ``threads`` workers and return the rate.

    The result also counts the builds that were claimed twice or never.
    """
    queue_builds(dsn, builds)
    claimed: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(index: int) -> None:
        runner = f"bench-{index}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    "select id, attempt from buildq.claim_builds(%s, %s)", (runner, batch)
                ).fetchall()
                if not rows:
                    return
                for build_id, attempt in rows:
                    with lock:
                        claimed[build_id] += 1
                    step = conn.execute(
                        "select buildq.create_build_step(%s, runner => %s, attempt => %s)",
                        (build_id, runner, attempt),
                    ).fetchone()
                    if step is not None and step[0] is not None:
                        conn.execute("select buildq.finish_build_step(%s, %s, 0)", (build_id, step[0]))
                    conn.execute(
                        "select buildq.finish_build(%s, 0, finished_by => %s, attempt => %s)",
                        (build_id, runner, attempt),
                    )

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started

    twice = sum(1 for count in claimed.values() if count != 1)
    missing = builds - len(claimed)
    return {
        "builds_per_s": builds / elapsed,
        "seconds": elapsed,
        "claimed_twice": float(twice),
        "never_claimed": float(missing),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("BUILDQ_DSN", ""), help="connection string of the server to use (default: $BUILDQ_DSN, else libpq's PG* variables)")
    parser.add_argument("--builds", type=int, default=2000, help="number of builds per workload (default: 2000)")
    parser.add_argument("--threads", type=int, default=8, help="number of threads, each with its own connection (default: 8)")
    parser.add_argument("--batch", type=int, default=4, help="max_count per claim in the pipeline (default: 4)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with scratch_database(args.dsn) as dsn:
        race = run_race(dsn, args.builds, args.threads)
        pipeline = run_pipeline(dsn, args.builds, args.threads, args.batch)

    print(f"race:     {args.builds} builds x {args.threads} threads in {race['seconds']:.2f} s "
          f"= {race['races_per_s']:.0f} races/s, builds without exactly one winner: {race['wrong']:.0f}")
    print(f"pipeline: {args.builds} builds, {args.threads} workers, batch {args.batch} in "
          f"{pipeline['seconds']:.2f} s = {pipeline['builds_per_s']:.0f} builds/s, "
          f"claimed twice: {pipeline['claimed_twice']:.0f}, never claimed: {pipeline['never_claimed']:.0f}")
    failed = race["wrong"] or pipeline["claimed_twice"] or pipeline["never_claimed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
