"""The queue monitor's LISTEN connection."""

from __future__ import annotations

from typing import Any, cast

import psycopg

from buildq.counters import Counters
from buildq.monitor import QueueMonitor
from buildq.runstate import RunState


class _ListenFails:
    """Stand-in for a connection that opens but rejects LISTEN."""

    def __init__(self) -> None:
        self.closed = False

    def execute(self, query: Any) -> None:
        raise psycopg.OperationalError("LISTEN failed")

    def close(self) -> None:
        self.closed = True


class _Client:
    def __init__(self, connection: _ListenFails) -> None:
        self.connection = connection

    def connect(self) -> _ListenFails:
        return self.connection


def test_failed_listen_closes_connection() -> None:
    connection = _ListenFails()
    counters = Counters()
    monitor = QueueMonitor(
        client=cast(Any, _Client(connection)),
        state=RunState(counters),
        systems=("x86_64-linux",),
        poll_interval=1.0,
    )

    assert monitor._connect_listener() is None
    assert connection.closed is True
    assert counters.nr_errors == 1
