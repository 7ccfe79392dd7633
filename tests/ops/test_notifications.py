"""NOTIFY channels, their payloads, and the replay of build_finished."""

from __future__ import annotations

import psycopg

from tests.conftest import Database

CHANNELS = (
    "builds_added",
    "builds_cancelled",
    "builds_restarted",
    "builds_bumped",
    "build_started",
    "build_finished",
    "step_started",
    "step_finished",
)


def listen(db: Database, *channels: str) -> psycopg.Connection:
    listener = db.connect()
    for channel in channels:
        listener.execute(f"listen {channel}")
    return listener


def received(listener: psycopg.Connection, expected: int) -> list[tuple[str, str]]:
    """Wait up to 2 s for `expected` notifications, then 0.3 s more for unexpected ones."""
    events = []
    if expected:
        events = [(n.channel, n.payload) for n in listener.notifies(timeout=2, stop_after=expected)]
    events += [(n.channel, n.payload) for n in listener.notifies(timeout=0.3)]
    return events


def test_every_channel_in_commit_order(db, conn, queue, scalar):
    with listen(db, *CHANNELS) as listener:
        build_id = queue("first")
        other = queue("second")
        scalar("select count(*) from buildq.claim_builds('runner-1')")
        step_nr = scalar("select buildq.create_build_step(%s, runner => 'runner-1')", (build_id,))
        scalar("select buildq.finish_build_step(%s, %s, 0)", (build_id, step_nr))
        scalar("select buildq.finish_build(%s, 0)", (build_id,))
        scalar("select buildq.restart_build(%s)", (build_id,))
        scalar("select buildq.bump_build(%s)", (build_id,))
        scalar("select buildq.cancel_build(%s)", (other,))
        events = received(listener, 10)

    assert events == [
        ("builds_added", str(build_id)),
        ("builds_added", str(other)),
        ("build_started", str(build_id)),
        ("step_started", f"{build_id}:{step_nr}"),
        ("step_finished", f"{build_id}:{step_nr}"),
        ("build_finished", str(build_id)),
        ("builds_restarted", str(build_id)),
        ("builds_bumped", str(build_id)),
        ("build_finished", str(other)),
        ("builds_cancelled", str(other)),
    ]


def test_direct_update_notifies(db, conn, queue, scalar):
    build_id = queue()

    with listen(db, "builds_cancelled") as listener:
        conn.execute(
            "update buildq.builds set finished = 1, build_status = 4,"
            " start_time = now(), stop_time = now() where id = %s",
            (build_id,),
        )
        events = received(listener, 1)

    assert events == [("builds_cancelled", str(build_id))]


def test_long_lists_split_below_8000_bytes(db, conn, scalar):
    # 19-digit ids make 450 of them about 9,000 bytes, over the NOTIFY limit.
    scalar("select setval(pg_get_serial_sequence('buildq.builds', 'id'), 1000000000000000000)")
    ids = [
        row[0]
        for row in conn.execute(
            "select buildq.queue_build('bulk', 'x86_64-linux', '/nix/store/bulk-' || n || '.drv')"
            " from generate_series(1, 450) as n"
        ).fetchall()
    ]

    with listen(db, "builds_cancelled") as listener:
        cancelled = conn.execute("select * from buildq.cancel_builds(%s)", (ids,)).fetchall()
        payloads = [payload for _, payload in received(listener, 3)]

    assert len(cancelled) == 450
    assert [len(payload.split(",")) for payload in payloads] == [200, 200, 50]
    assert max(len(payload.encode()) for payload in payloads) < 8000
    assert sorted(int(item) for payload in payloads for item in payload.split(",")) == sorted(ids)


def test_rolled_back_finish_not_notified(db, conn, queue):
    build_id = queue()

    with listen(db, "build_finished") as listener:
        with conn.transaction(force_rollback=True):
            conn.execute("select buildq.finish_build(%s, 0)", (build_id,))
        events = received(listener, 0)

    assert events == []


def handle_pending(notifier: psycopg.Connection) -> list[int]:
    """Replay what an earlier notifier left unacknowledged, as a starting notifier does."""
    handled = []
    for build_id, attempt in notifier.execute(
        "select build_id, attempt from buildq.pending_notifications()"
    ).fetchall():
        handled.append(build_id)
        notifier.execute("select buildq.ack_build_notification(%s, %s)", (build_id, attempt))
    return handled


def test_finish_replayed_after_notifier_restart(db, conn, queue, scalar):
    acked, unacked, missed = queue("acked"), queue("unacked"), queue("missed")

    with listen(db, "build_finished") as notifier:
        scalar("select buildq.finish_build(%s, 0)", (acked,))
        scalar("select buildq.finish_build(%s, 1)", (unacked,))
        first_run = [int(payload) for _, payload in received(notifier, 2)]
        notifier.execute("select buildq.ack_build_notification(%s)", (acked,))
        # The notifier stops here without acknowledging `unacked`.

    scalar("select buildq.finish_build(%s, 0)", (missed,))

    with listen(db, "build_finished") as notifier:
        replayed = handle_pending(notifier)
        live = received(notifier, 0)
        pending_after = notifier.execute("select count(*) from buildq.pending_notifications()").fetchone()[0]

    assert first_run == [acked, unacked]
    assert replayed == [unacked, missed]
    assert live == []
    assert pending_after == 0


def test_ack_of_old_attempt_keeps_new_finish_pending(db, conn, queue, scalar):
    build_id = queue()
    scalar("select buildq.finish_build(%s, 1)", (build_id,))
    old_attempt = scalar("select attempt from buildq.pending_notifications()")
    scalar("select buildq.restart_build(%s)", (build_id,))
    scalar("select buildq.finish_build(%s, 0)", (build_id,))

    acked = scalar("select buildq.ack_build_notification(%s, %s)", (build_id, old_attempt))

    assert acked is False
    assert scalar("select count(*) from buildq.pending_notifications()") == 1
