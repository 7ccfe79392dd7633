"""Tables of schema buildq: status codes and the check constraints that keep rows consistent.

These tests write rows directly, bypassing the functions, to show that the
tables themselves reject an inconsistent row, including one written by hand in psql.
"""

from __future__ import annotations

import psycopg
import pytest


def test_statuses_zero_to_twelve_without_five(conn, scalar):
    codes = scalar("select array_agg(code order by code) from buildq.build_statuses")
    rows = conn.execute(
        "select code, applies_to_builds, applies_to_steps from buildq.build_statuses"
        " where not (applies_to_builds and applies_to_steps) order by code"
    ).fetchall()

    assert codes == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]
    assert 5 not in codes
    # 2 (dependency failed) applies to builds only, 8 (cached failure) to steps only.
    assert rows == [(2, True, False), (8, False, True)]


def test_build_status_five_rejected(conn, new_build):
    build_id = new_build()

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "update buildq.builds set finished = 1, build_status = 5,"
            " start_time = now(), stop_time = now() where id = %s",
            (build_id,),
        )


# Each case: name, statement, constraint it must violate. The statements get
# the id of a queued build as %(id)s, whose step 1 is busy.
CONSTRAINT_CASES = [
    (
        "unfinished build with status",
        "insert into buildq.builds (job, system, drv_path, build_status)"
        " values ('hello', 'x86_64-linux', '/nix/store/a.drv', 0)",
        "builds_unfinished_has_no_result",
    ),
    (
        "unfinished build with stop time",
        "update buildq.builds set stop_time = now() where id = %(id)s",
        "builds_unfinished_has_no_result",
    ),
    (
        "finished build without times",
        "update buildq.builds set finished = 1, build_status = 0 where id = %(id)s",
        "builds_finished_has_result",
    ),
    (
        "finished build without status",
        "update buildq.builds set finished = 1, start_time = now(), stop_time = now()"
        " where id = %(id)s",
        "builds_finished_has_result",
    ),
    (
        "build stop before start",
        "update buildq.builds set finished = 1, build_status = 0,"
        " start_time = now(), stop_time = now() - interval '1 second' where id = %(id)s",
        "builds_finished_has_result",
    ),
    (
        "busy build without claimer",
        "update buildq.builds set busy = 1 where id = %(id)s",
        "builds_busy_is_claimed",
    ),
    (
        "finished flag other than 0 or 1",
        "update buildq.builds set finished = 2 where id = %(id)s",
        "builds_finished_flag",
    ),
    (
        "done step without status",
        "update buildq.build_steps set busy = 0, stop_time = now()"
        " where build_id = %(id)s and step_nr = 1",
        "build_steps_done_has_result",
    ),
    (
        "step stop before start",
        "update buildq.build_steps set busy = 0, status = 0,"
        " stop_time = start_time - interval '1 second'"
        " where build_id = %(id)s and step_nr = 1",
        "build_steps_done_has_result",
    ),
    (
        "busy step with status",
        "update buildq.build_steps set status = 0 where build_id = %(id)s and step_nr = 1",
        "build_steps_busy_has_no_result",
    ),
]


def test_check_constraints_reject_inconsistent_rows(conn, scalar, new_build, subtests):
    build_id = new_build()
    scalar("select buildq.create_build_step(%s)", (build_id,))

    for case, statement, constraint in CONSTRAINT_CASES:
        with subtests.test(case):
            with pytest.raises(psycopg.errors.CheckViolation) as excinfo:
                conn.execute(statement, {"id": build_id})

            assert excinfo.value.diag.constraint_name == constraint


def test_queue_index_partial_on_unfinished(scalar):
    predicate = scalar(
        "select pg_get_expr(i.indpred, i.indrelid) from pg_index as i"
        " where i.indexrelid = 'buildq.builds_queue_idx'::regclass"
    )

    assert predicate == "(finished = 0)"


def test_every_table_column_commented(conn):
    rows = conn.execute(
        "select c.relname || '.' || a.attname"
        " from pg_catalog.pg_attribute as a"
        " join pg_catalog.pg_class as c on a.attrelid = c.oid"
        " join pg_catalog.pg_namespace as n on c.relnamespace = n.oid"
        " where n.nspname = 'buildq' and c.relkind = 'r'"
        " and a.attnum > 0 and not a.attisdropped"
        " and pg_catalog.col_description(c.oid, a.attnum) is null"
        " order by 1"
    ).fetchall()

    assert [row[0] for row in rows] == []


def test_every_object_commented(conn):
    rows = conn.execute(
        "select c.relname from pg_catalog.pg_class as c"
        " join pg_catalog.pg_namespace as n on c.relnamespace = n.oid"
        " where n.nspname = 'buildq' and c.relkind in ('r', 'v')"
        " and pg_catalog.obj_description(c.oid, 'pg_class') is null"
        " union all"
        " select p.proname from pg_catalog.pg_proc as p"
        " join pg_catalog.pg_namespace as n on p.pronamespace = n.oid"
        " where n.nspname = 'buildq'"
        " and pg_catalog.obj_description(p.oid, 'pg_proc') is null"
    ).fetchall()

    assert [row[0] for row in rows] == []
