"""Fixtures for the tests of the client: open clients on the test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buildq.client import Build, BuildqClient

RUNNER = "runner-a"


@pytest.fixture
def make_client(db: Any) -> Iterator[Callable[..., BuildqClient]]:
    """Return a function that opens a client on the test database, closing each at teardown."""
    clients: list[BuildqClient] = []

    def make(**kwargs: Any) -> BuildqClient:
        kwargs.setdefault("runner_id", RUNNER)
        kwargs.setdefault("retry_base_delay", 0.01)
        client = BuildqClient(conninfo=db.dsn, **kwargs)
        client.open()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., BuildqClient]) -> BuildqClient:
    """An open client of runner ``runner-a``."""
    return make_client()


@pytest.fixture
def queued(client: BuildqClient) -> Callable[..., Build]:
    """Return a function that queues a build and returns it as the queue monitor reads it."""

    def queue(job: str = "hello", drv_path: str = "/store/aaaa-hello.recipe") -> Build:
        build_id = client.queue_build(job=job, system="x86_64-linux", drv_path=drv_path)
        return Build(id=build_id, job=job, system="x86_64-linux", drv_path=drv_path, attempt=0)

    return queue
