"""The client's calls other than finishes: claims, steps, clear_busy, the runners row and reads."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from buildq.client import Build, BuildqClient
from buildq.errors import InvalidArgument

from .conftest import RUNNER


def test_claim_returns_claimed_attempt(client: BuildqClient, queued: Callable[..., Build]) -> None:
    build = queued()

    [claimed] = client.claim_builds(systems=["x86_64-linux"])

    assert claimed.id == build.id
    assert claimed.attempt == 1
    assert claimed.finished_in_db is False


def test_claim_skips_other_systems(client: BuildqClient, queued: Callable[..., Build]) -> None:
    queued()

    assert client.claim_builds(systems=["aarch64-linux"]) == []


def test_claim_needs_runner_id(make_client: Callable[..., BuildqClient]) -> None:
    anonymous = make_client(runner_id=None)

    with pytest.raises(ValueError):
        anonymous.claim_builds()


def test_step_numbers_count_up(client: BuildqClient, queued: Callable[..., Build]) -> None:
    queued()
    [build] = client.claim_builds()

    assert client.create_build_step(build) == 1
    assert client.create_build_step(build) == 2
    assert client.counters.nr_steps_started == 2


def test_step_of_finished_build_is_none(client: BuildqClient, queued: Callable[..., Build]) -> None:
    queued()
    [build] = client.claim_builds()
    client.abort_build(Build(id=build.id, job="hello", system="x", drv_path="/x"), "cancelled")

    assert client.create_build_step(build) is None
    assert client.counters.nr_steps_started == 0


def test_step_records_runner(
    client: BuildqClient, queued: Callable[..., Build], conn: psycopg.Connection
) -> None:
    queued()
    [build] = client.claim_builds()

    step_nr = client.create_build_step(build, machine="host-1")

    row = conn.execute(
        "select runner, attempt, machine, busy from buildq.build_steps where step_nr = %s",
        (step_nr,),
    ).fetchone()
    assert row == (RUNNER, 1, "host-1", 1)


def test_step_finish_counts_once(client: BuildqClient, queued: Callable[..., Build]) -> None:
    queued()
    [build] = client.claim_builds()
    step_nr = client.create_build_step(build)
    assert step_nr is not None

    assert client.finish_build_step(build.id, step_nr, 0) is True
    assert client.finish_build_step(build.id, step_nr, 1) is False
    assert client.counters.nr_steps_done == 1


def test_clear_busy_requeues_claims(client: BuildqClient, queued: Callable[..., Build]) -> None:
    queued()
    [build] = client.claim_builds()
    client.create_build_step(build)

    assert client.clear_busy() == 2
    assert client.count_queued() == 1


def test_first_registration_returns_none(client: BuildqClient) -> None:
    assert client.register_runner(host="host-1", pid=123) is None


def test_unstopped_predecessor_is_reported(client: BuildqClient) -> None:
    client.register_runner(host="host-1", pid=123)

    assert client.register_runner(host="host-1", pid=124) is not None


def test_stopped_predecessor_is_not_reported(client: BuildqClient) -> None:
    client.register_runner(host="host-1", pid=123)
    client.update_runner({"nr_builds_done": 1}, stopped=True)

    assert client.register_runner(host="host-1", pid=124) is None


def test_update_stores_counters(client: BuildqClient, conn: psycopg.Connection) -> None:
    client.register_runner(host="host-1", pid=123)

    assert client.update_runner({"nr_builds_done": 3}) is True
    row = conn.execute(
        "select counters, stopped_at is null from buildq.runners where id = %s", (RUNNER,)
    ).fetchone()
    assert row == ({"nr_builds_done": 3}, True)


def test_registration_resets_counters(client: BuildqClient, conn: psycopg.Connection) -> None:
    client.register_runner(host="host-1", pid=123)
    client.update_runner({"nr_builds_done": 3}, stopped=True)

    client.register_runner(host="host-1", pid=124)

    row = conn.execute(
        "select counters, pid, stopped_at from buildq.runners where id = %s", (RUNNER,)
    ).fetchone()
    assert row == ({}, 124, None)


def test_update_of_unknown_runner_is_false(client: BuildqClient) -> None:
    assert client.update_runner({"nr_builds_done": 0}) is False


def test_register_rejects_bad_pid(client: BuildqClient) -> None:
    with pytest.raises(InvalidArgument):
        client.register_runner(pid=0)


def test_list_queued_flags_succeeded_recipe(
    client: BuildqClient, queued: Callable[..., Build]
) -> None:
    first = queued()
    second = queued()
    other = queued(drv_path="/store/bbbb-other.recipe")
    client.finish_build(first, 0)

    flags = {entry.build.id: entry.has_succeeded_build for entry in client.list_queued(limit=10)}

    assert flags == {second.id: True, other.id: False}


def test_build_states_by_id(client: BuildqClient, queued: Callable[..., Build]) -> None:
    build = queued()
    client.finish_build(queued(), 4)

    states = client.fetch_build_states([build.id, build.id + 1, 12345])

    assert states[build.id].finished is False
    assert states[build.id + 1].finished is True
    assert states[build.id + 1].build_status == 4
    assert 12345 not in states


def test_list_builds_names_states(client: BuildqClient, queued: Callable[..., Build]) -> None:
    done = queued()
    queued()
    queued()
    client.finish_build(done, 6)
    client.claim_builds(max_count=1)

    names = [summary.status_name for summary in client.list_builds(limit=10)]

    assert names == ["failed with output", "running", "queued"]
