"""buildq.create_build_step and buildq.finish_build_step: a build's steps and their results."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
STOP = START + timedelta(seconds=90)


@pytest.fixture
def busy_step(scalar, new_build):
    """Return (build id, step number) of a busy step started at START on machine-a."""
    build_id = new_build()
    step_nr = scalar(
        "select buildq.create_build_step(%s, machine => 'machine-a', start_time => %s)",
        (build_id, START),
    )
    return build_id, step_nr


def test_create_step_numbers_per_build(scalar, new_build):
    first = new_build()
    second = new_build()

    numbers = [scalar("select buildq.create_build_step(%s)", (first,)) for _ in range(3)]

    assert numbers == [1, 2, 3]
    assert scalar("select buildq.create_build_step(%s)", (second,)) == 1


def test_create_step_inserts_busy_row(scalar, new_build, step_row, build_row):
    build_id = new_build(system="aarch64-linux", drv_path="/nix/store/b-hello.drv")

    step_nr = scalar(
        "select buildq.create_build_step(%s, machine => 'machine-a', runner => 'runner-a',"
        " start_time => %s)",
        (build_id, START),
    )

    row = step_row(build_id, step_nr)
    assert row["busy"] == 1
    assert row["type"] == 0
    assert row["drv_path"] == "/nix/store/b-hello.drv"
    assert row["system"] == "aarch64-linux"
    assert row["machine"] == "machine-a"
    assert row["runner"] == "runner-a"
    assert row["start_time"] == START
    assert row["status"] is None
    assert row["stop_time"] is None
    assert build_row(build_id)["last_step_nr"] == step_nr


def test_create_substitution_step(scalar, new_build, step_row):
    build_id = new_build()

    step_nr = scalar(
        "select buildq.create_build_step(%s, drv_path => '/nix/store/c-dep.drv', type => 1,"
        " system => 'x86_64-darwin')",
        (build_id,),
    )

    row = step_row(build_id, step_nr)
    assert row["type"] == 1
    assert row["drv_path"] == "/nix/store/c-dep.drv"
    assert row["system"] == "x86_64-darwin"


def test_create_step_finished_build_returns_null(scalar, new_build, table_state):
    build_id = new_build()
    scalar("select buildq.finish_build(%s, 0)", (build_id,))
    before = table_state()

    step_nr = scalar("select buildq.create_build_step(%s)", (build_id,))

    assert step_nr is None
    assert table_state() == before


def test_create_step_only_current_attempt(conn, scalar, new_build, table_state, step_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    conn.execute("select buildq.clear_busy('runner-a')")
    conn.execute("select * from buildq.claim_builds('runner-b')")
    before = table_state()

    late = scalar("select buildq.create_build_step(%s, attempt => 1)", (build_id,))
    unchanged = table_state()
    current = scalar("select buildq.create_build_step(%s, attempt => 2)", (build_id,))

    assert late is None
    assert unchanged == before
    assert current == 1
    assert step_row(build_id, current)["attempt"] == 2


def test_create_step_defaults_runner_to_claim(conn, scalar, new_build, step_row):
    claimed = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")
    queued = new_build()

    on_claimed = scalar("select buildq.create_build_step(%s)", (claimed,))
    on_queued = scalar("select buildq.create_build_step(%s)", (queued,))

    assert step_row(claimed, on_claimed)["runner"] == "runner-a"
    assert step_row(queued, on_queued)["runner"] is None


def test_create_step_records_current_attempt(conn, scalar, new_build, step_row):
    build_id = new_build()
    conn.execute("select * from buildq.claim_builds('runner-a')")

    step_nr = scalar("select buildq.create_build_step(%s)", (build_id,))

    assert step_row(build_id, step_nr)["attempt"] == 1


# Each case: name, query, expected SQLSTATE, text the message must contain.
# The queries get the id of a queued, unfinished build as %(id)s, and the
# expected text may name it as {id} or the unknown id as {unknown}.
BAD_CREATES = [
    ("unknown build", "select buildq.create_build_step(%(id)s + 1000)", "BQ001", "{unknown}"),
    ("null build", "select buildq.create_build_step(null)", "22004", "build_id"),
    ("type 2", "select buildq.create_build_step(%(id)s, type => 2)", "22023", "type '2'"),
    ("null type", "select buildq.create_build_step(%(id)s, type => null)", "22023", "NULL"),
    (
        "null start_time",
        "select buildq.create_build_step(%(id)s, start_time => null)",
        "22004",
        "start_time",
    ),
    (
        "null machine",
        "select buildq.create_build_step(%(id)s, machine => null)",
        "22004",
        "machine",
    ),
    (
        "empty drv_path",
        "select buildq.create_build_step(%(id)s, drv_path => '')",
        "22023",
        "drv_path",
    ),
    ("empty system", "select buildq.create_build_step(%(id)s, system => '')", "22023", "system"),
    ("empty runner", "select buildq.create_build_step(%(id)s, runner => '')", "22023", "runner"),
]


def test_create_step_rejects_bad_input(conn, new_build, table_state, subtests):
    build_id = new_build()

    for case, query, sqlstate, named in BAD_CREATES:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query, {"id": build_id})

            assert excinfo.value.sqlstate == sqlstate
            assert named.format(id=build_id, unknown=build_id + 1000) in (
                excinfo.value.diag.message_primary
            )
            assert table_state() == before


def test_finish_step_records_result(scalar, busy_step, new_build, step_row, build_row):
    build_id, step_nr = busy_step
    failed_dependency = new_build()

    finished = scalar(
        "select buildq.finish_build_step(%s, %s, 1, error_msg => 'exit code 2',"
        " stop_time => %s, machine => 'machine-b', overhead => 250, times_built => 2,"
        " is_non_deterministic => true, propagated_from => %s)",
        (build_id, step_nr, STOP, failed_dependency),
    )

    row = step_row(build_id, step_nr)
    assert finished is True
    assert row["busy"] == 0
    assert row["status"] == 1
    assert row["error_msg"] == "exit code 2"
    assert row["stop_time"] == STOP
    assert row["machine"] == "machine-b"
    assert row["overhead"] == 250
    assert row["times_built"] == 2
    assert row["is_non_deterministic"] is True
    assert row["propagated_from"] == failed_dependency
    assert build_row(build_id)["finished"] == 0


def test_finish_step_keeps_machine_by_default(scalar, busy_step, step_row):
    build_id, step_nr = busy_step

    scalar("select buildq.finish_build_step(%s, %s, 0)", (build_id, step_nr))

    assert step_row(build_id, step_nr)["machine"] == "machine-a"


def test_finish_step_cached_failure(scalar, busy_step, step_row):
    build_id, step_nr = busy_step

    finished = scalar("select buildq.finish_build_step(%s, %s, 8)", (build_id, step_nr))

    assert finished is True
    assert step_row(build_id, step_nr)["status"] == 8


def test_steps_psql_literal_calls(scalar, new_build, step_row):
    assert new_build() == 1

    step_nr = scalar("select buildq.create_build_step(1, machine => 'machine-a')")
    finished = scalar("select buildq.finish_build_step(1, 1, 1, error_msg => 'oops')")

    assert step_nr == 1
    assert finished is True
    assert step_row(1, 1)["error_msg"] == "oops"


def test_finish_step_repeated_returns_false(scalar, busy_step, step_row):
    build_id, step_nr = busy_step
    scalar("select buildq.finish_build_step(%s, %s, 0)", (build_id, step_nr))
    before = step_row(build_id, step_nr)

    again = scalar(
        "select buildq.finish_build_step(%s, %s, 1, error_msg => 'late', machine => 'machine-c')",
        (build_id, step_nr),
    )

    assert again is False
    assert step_row(build_id, step_nr) == before


# Each case: name, query, expected SQLSTATE, text the message must contain.
# The queries get the key of a busy step, started at START, as %(id)s and
# %(nr)s. The expected text may name them as {id} and {nr}.
BAD_STEP_FINISHES = [
    (
        "unknown step",
        "select buildq.finish_build_step(%(id)s, %(nr)s + 100, 0)",
        "BQ002",
        "step {unknown_nr}",
    ),
    (
        "unknown build",
        "select buildq.finish_build_step(%(id)s + 1000, %(nr)s, 0)",
        "BQ002",
        "build {unknown_id}",
    ),
    ("null build", "select buildq.finish_build_step(null, %(nr)s, 0)", "22004", "build_id"),
    ("null step", "select buildq.finish_build_step(%(id)s, null, 0)", "22004", "step_nr"),
    ("unknown status", "select buildq.finish_build_step(%(id)s, %(nr)s, 55)", "BQ003", "55"),
    (
        "build-only status 2",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 2)",
        "BQ003",
        "status 2",
    ),
    ("null status", "select buildq.finish_build_step(%(id)s, %(nr)s, null)", "22004", "status"),
    (
        "stop before start",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 0, stop_time => '2024-05-01 11:59+00')",
        "BQ004",
        "step {nr}",
    ),
    (
        "null stop_time",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 0, stop_time => null)",
        "22004",
        "stop_time",
    ),
    (
        "negative overhead",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 0, overhead => -5)",
        "22023",
        "-5",
    ),
    (
        "negative times_built",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 0, times_built => -2)",
        "22023",
        "-2",
    ),
    (
        "unknown propagated_from",
        "select buildq.finish_build_step(%(id)s, %(nr)s, 1, propagated_from => %(id)s + 1000)",
        "BQ001",
        "propagated_from",
    ),
]


def test_finish_step_rejects_bad_input(conn, busy_step, table_state, subtests):
    build_id, step_nr = busy_step
    names = {"id": build_id, "nr": step_nr, "unknown_id": build_id + 1000, "unknown_nr": step_nr + 100}

    for case, query, sqlstate, named in BAD_STEP_FINISHES:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute(query, {"id": build_id, "nr": step_nr})

            assert excinfo.value.sqlstate == sqlstate
            assert named.format(**names) in excinfo.value.diag.message_primary
            assert table_state() == before
