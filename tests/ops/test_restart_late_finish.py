"""Restarting a build while the runner of an earlier attempt still runs it."""

from __future__ import annotations

from tests.conftest import Database


def claim(db: Database, runner: str) -> tuple[int, int]:
    with db.connect() as connection:
        row = connection.execute("select id, attempt from buildq.claim_builds(%s)", (runner,)).fetchone()
    assert row is not None, f"{runner} claimed nothing"
    return row[0], row[1]


def finish(db: Database, build_id: int, status: int, attempt: int) -> bool:
    with db.connect() as connection:
        return connection.execute(
            "select buildq.finish_build(%s, %s, attempt => %s)", (build_id, status, attempt)
        ).fetchone()[0]


def test_late_finish_after_restart_returns_false(db, conn, queue, scalar):
    build_id = queue()
    _, old_attempt = claim(db, "runner-old")
    assert scalar("select buildq.cancel_build(%s)", (build_id,)) is True
    assert scalar("select buildq.restart_build(%s)", (build_id,)) is True

    late = finish(db, build_id, 0, old_attempt)

    assert late is False
    assert scalar("select finished from buildq.builds where id = %s", (build_id,)) == 0
    assert scalar("select build_status from buildq.builds where id = %s", (build_id,)) is None


def test_late_finish_after_new_claim_returns_false(db, conn, queue, scalar):
    build_id = queue()
    _, old_attempt = claim(db, "runner-old")
    scalar("select buildq.abort_build(%s, 'runner lost')", (build_id,))
    scalar("select buildq.restart_build(%s)", (build_id,))
    _, new_attempt = claim(db, "runner-new")

    late = finish(db, build_id, 1, old_attempt)
    current = finish(db, build_id, 0, new_attempt)

    assert late is False
    assert current is True
    assert scalar("select build_status from buildq.builds where id = %s", (build_id,)) == 0
    assert scalar("select attempt from buildq.builds where id = %s", (build_id,)) == new_attempt


def test_restart_then_finish_is_pending_once(db, conn, queue, scalar):
    build_id = queue()
    _, first = claim(db, "runner-1")
    finish(db, build_id, 1, first)
    scalar("select buildq.restart_build(%s)", (build_id,))
    _, second = claim(db, "runner-1")
    finish(db, build_id, 0, second)

    pending = conn.execute("select build_id, attempt from buildq.pending_notifications()").fetchall()

    assert pending == [(build_id, second)]
