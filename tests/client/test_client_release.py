"""The client's release_build and list_claimed calls, and its connect timeout."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import psycopg

from buildq.client import Build, BuildqClient

from .conftest import RUNNER


def claimed_state(conn: psycopg.Connection, build_id: int) -> tuple[int, str | None, int]:
    row = conn.execute(
        "select busy, claimed_by, attempt from buildq.builds where id = %s", (build_id,)
    ).fetchone()
    assert row is not None
    return row


def test_release_requeues_claim(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    queued()
    [claimed] = client.claim_builds()

    released = client.release_build(claimed)

    assert released is True
    assert claimed_state(conn, claimed.id) == (0, None, 1)
    assert client.counters.nr_builds_released == 1


def test_release_other_attempt_changes_nothing(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    queued()
    [claimed] = client.claim_builds()
    stale = dataclasses.replace(claimed, attempt=0)

    released = client.release_build(stale)

    assert released is False
    assert claimed_state(conn, claimed.id) == (1, RUNNER, 1)
    assert client.counters.nr_builds_released == 0


def test_list_claimed_shows_own_claims(
    client: BuildqClient, make_client: Callable[..., BuildqClient], queued: Callable[..., Build]
) -> None:
    queued(job="mine")
    queued(job="theirs")
    [mine] = client.claim_builds()
    make_client(runner_id="runner-b").claim_builds()

    listed = client.list_claimed()

    assert [(build.id, build.attempt, build.job) for build in listed] == [(mine.id, 1, "mine")]


def test_list_claimed_skips_finished(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    queued()
    [claimed] = client.claim_builds()
    client.finish_build(claimed, 0)

    assert client.list_claimed() == []


def test_connect_sets_connect_timeout(make_client: Callable[..., BuildqClient]) -> None:
    client = make_client(connect_timeout=7)

    with client.connect() as connection:
        parameters = connection.info.get_parameters()

    assert parameters.get("connect_timeout") == "7"
