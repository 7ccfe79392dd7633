"""The audit trail: who changed what, and replaying it to the current rows."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.rows import dict_row

from tests.conftest import Database


def test_direct_update_records_session(db, queue, scalar):
    build_id = queue()

    with psycopg.connect(db.dsn, autocommit=True, application_name="psql") as person:
        person.execute("update buildq.builds set priority = 3 where id = %s", (build_id,))
        client_addr = person.execute("select inet_client_addr()").fetchone()[0]
        backend_user = person.execute("select session_user").fetchone()[0]

    with db.connect(row_factory=dict_row) as reader:
        event = reader.execute(
            "select * from buildq.build_events where build_id = %s and event = 'updated'", (build_id,)
        ).fetchone()

    assert event["db_user"] == backend_user
    assert event["application_name"] == "psql"
    assert event["client_addr"] == client_addr
    assert event["old_values"] == {"priority": 0}
    assert event["new_values"] == {"priority": 3}


def run_workload(db: Database, runner: str, seed: int) -> None:
    """Claim, step and finish builds as a runner does, with some random outcomes."""
    chooser = random.Random(seed)
    with db.connect() as connection:
        for _ in range(8):
            claimed = connection.execute(
                "select id, attempt from buildq.claim_builds(%s)", (runner,)
            ).fetchone()
            if claimed is None:
                return
            build_id, attempt = claimed
            step_nr = connection.execute(
                "select buildq.create_build_step(%s, runner => %s, attempt => %s)",
                (build_id, runner, attempt),
            ).fetchone()[0]
            status = chooser.choice([0, 0, 1])
            if step_nr is not None:
                connection.execute(
                    "select buildq.finish_build_step(%s, %s, %s)", (build_id, step_nr, status)
                )
            connection.execute(
                "select buildq.finish_build(%s, %s, attempt => %s)", (build_id, status, attempt)
            )


def run_operator(db: Database, build_ids: list[int]) -> None:
    with db.connect() as operator:
        for build_id in build_ids:
            operator.execute("select buildq.cancel_build(%s)", (build_id,))
            operator.execute("select buildq.restart_build(%s)", (build_id,))
        operator.execute("select buildq.restart_builds(%s)", (build_ids,))
        operator.execute("select buildq.bump_build(%s)", (build_ids[-1],))


def replay(events: list[dict]) -> dict | None:
    """Replay the events of one row in id order, as build_as_of does, and return the row."""
    row: dict | None = None
    for event in events:
        if event["event"] in ("deleted", "step_deleted"):
            row = None
        else:
            row = {**(row or {}), **event["new_values"]}
    return row


def test_events_replay_to_current_rows(db, conn, queue):
    build_ids = [queue(f"job-{n}") for n in range(24)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(run_workload, db, "runner-1", 1),
            pool.submit(run_workload, db, "runner-2", 2),
            pool.submit(run_operator, db, build_ids[::3]),
        ]
        for future in futures:
            future.result(timeout=30)

    with db.connect(row_factory=dict_row) as reader:
        events = reader.execute(
            "select build_id, step_nr, event, new_values from buildq.build_events order by id"
        ).fetchall()
        rows = {
            (row["build_id"], row["step_nr"]): row["current"]
            for row in reader.execute(
                "select id as build_id, null::integer as step_nr, to_jsonb(b) as current"
                " from buildq.builds as b"
                " union all"
                " select build_id, step_nr, to_jsonb(s) from buildq.build_steps as s"
            ).fetchall()
        }
        build_mismatches = reader.execute(
            "select b.id from buildq.builds as b where buildq.build_as_of(b.id) is distinct from b"
        ).fetchall()

    by_row: dict[tuple[int, int | None], list[dict]] = {}
    for event in events:
        by_row.setdefault((event["build_id"], event["step_nr"]), []).append(event)
    replayed = {key: replay(row_events) for key, row_events in by_row.items()}

    assert set(replayed) == set(rows)
    mismatched = sorted(key for key in rows if replayed[key] != rows[key])
    assert mismatched == [], json.dumps(
        {str(key): [replayed[key], rows[key]] for key in mismatched[:3]}, default=str
    )
    assert build_mismatches == []
