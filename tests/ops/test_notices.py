"""Notices that a person in psql reads when an intervention changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from buildq.errors import BuildNotFound, InvalidArgument, map_database_error


def test_cancel_finished_names_status(queue, scalar, notices):
    build_id = queue()
    scalar("select buildq.finish_build(%s, 0)", (build_id,))

    assert scalar("select buildq.cancel_build(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} is already finished as succeeded (status 0); not cancelled"]


def test_restart_queued_reports_queued(queue, scalar, notices):
    build_id = queue()

    assert scalar("select buildq.restart_build(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} is not finished (queued); not restarted"]


def test_restart_running_names_runner(queue, scalar, notices):
    build_id = queue()
    scalar("select count(*) from buildq.claim_builds('runner-7')")

    assert scalar("select buildq.restart_build(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} is not finished (running on runner runner-7); not restarted"]


def test_bump_front_reports_front(queue, scalar, notices):
    build_id = queue()

    assert scalar("select buildq.bump_build(%s)", (build_id,)) is False
    assert notices == [
        f"build {build_id} is already at the front of the queue (global_priority 0); not bumped"
    ]


def test_bump_finished_names_status(queue, scalar, notices):
    build_id = queue()
    scalar("select buildq.abort_build(%s, 'gone')", (build_id,))

    assert scalar("select buildq.bump_build(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} is already finished as aborted (status 3); not bumped"]


def test_ack_nothing_pending_reported(queue, scalar, notices):
    build_id = queue()

    assert scalar("select buildq.ack_build_notification(%s)", (build_id,)) is False
    assert notices == [f"build {build_id} has no pending finish notification; nothing changed"]


def test_cancel_builds_limits_notices(conn, queue, scalar, notices):
    build_ids = [queue(f"job-{n}") for n in range(25)]
    scalar("select count(*) from buildq.cancel_builds(%s)", (build_ids,))
    notices.clear()

    changed = conn.execute("select * from buildq.cancel_builds(%s)", (build_ids,)).fetchall()

    assert changed == []
    assert len(notices) == 21
    assert notices[0] == f"build {build_ids[0]} is already finished as cancelled (status 4); not cancelled"
    assert notices[-1] == "5 more builds are already finished; not cancelled"


def test_empty_list_reports_nothing_given(conn, notices):
    assert conn.execute("select * from buildq.restart_builds('{}')").fetchall() == []
    assert notices == ["no build ids given; nothing changed"]


@pytest.mark.parametrize("call", ["cancel_build", "restart_build", "bump_build"])
def test_unknown_id_raises_build_not_found(conn, call):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(f"select buildq.{call}(-5)")

    assert isinstance(map_database_error(caught.value), BuildNotFound)
    assert caught.value.diag.message_primary == "build -5 does not exist"


def test_unknown_ids_listed(conn, queue):
    known = queue()
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select buildq.cancel_builds(%s)", ([known, -1, -2],))

    assert isinstance(map_database_error(caught.value), BuildNotFound)
    assert caught.value.diag.message_primary == "builds -2, -1 do not exist"


def test_null_id_raises_invalid_argument(conn):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select buildq.cancel_build(null)")

    assert isinstance(map_database_error(caught.value), InvalidArgument)
