"""Fixtures for the operator tests: queueing builds and catching notices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest


@pytest.fixture
def scalar(conn: psycopg.Connection) -> Callable[..., Any]:
    """Return a function that runs one query and returns the first column of its one row."""

    def run(query: str, params: Any = None) -> Any:
        row = conn.execute(query, params).fetchone()
        assert row is not None, f"query returned no row: {query}"
        return row[0]

    return run


@pytest.fixture
def queue(scalar: Callable[..., Any]) -> Callable[..., int]:
    """Return a function that queues a build through buildq.queue_build and returns its id."""

    def queue_build(job: str = "hello", priority: int = 0) -> int:
        return scalar(
            "select buildq.queue_build(%s, 'x86_64-linux', %s, priority => %s)",
            (job, f"/nix/store/{job}.drv", priority),
        )

    return queue_build


@pytest.fixture
def notices(conn: psycopg.Connection) -> list[str]:
    """List of the NOTICE messages that `conn` receives, in order."""
    received: list[str] = []
    conn.add_notice_handler(lambda diag: received.append(diag.message_primary or ""))
    return received
