"""buildq.register_runner and buildq.update_runner: the heartbeat and counters of a runner."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def runner(scalar):
    """Return the id of a registered runner."""
    scalar("select buildq.register_runner('runner-a', 'host-1', 123)")
    return "runner-a"


def test_update_stores_integer_counters(runner, scalar):
    assert scalar(
        "select buildq.update_runner(%s, '{\"nr_builds_done\": 3, \"nr_errors\": 0}')", (runner,)
    )

    counters = scalar("select counters from buildq.runners where id = %s", (runner,))
    assert counters == {"nr_builds_done": 3, "nr_errors": 0}


# Each case: name, counters, text the message must contain.
BAD_COUNTERS = [
    ("text value", '{"nr_builds_done": "three"}', "nr_builds_done"),
    ("fraction", '{"nr_builds_done": 1.5}', "nr_builds_done"),
    ("nested object", '{"nr_builds_done": {"total": 3}}', "nr_builds_done"),
    ("null value", '{"nr_errors": null}', "nr_errors"),
]


def test_update_rejects_counters_not_integers(conn, runner, table_state, subtests):
    for case, counters, named in BAD_COUNTERS:
        with subtests.test(case):
            before = table_state()

            with pytest.raises(psycopg.Error) as excinfo:
                conn.execute("select buildq.update_runner(%s, %s)", (runner, counters))

            assert excinfo.value.sqlstate == "22023"
            assert named in excinfo.value.diag.message_primary
            assert excinfo.value.diag.message_hint
            assert table_state() == before
