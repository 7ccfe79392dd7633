"""Client of the buildq schema: one method per SQL function, over a psycopg connection pool.

Every call runs in its own transaction on an autocommit connection. Database errors become
the exceptions of :mod:`buildq.errors`. Transient ones (lost connection, serialization
failure, deadlock, lock timeout) are retried with exponential backoff, which is safe because
every transition function is guarded: a repeated finish changes nothing and returns false.

Finishing methods follow the rules that keep the runner's bookkeeping exact:

- a :class:`Build` whose ``finished_in_db`` is already set is not sent to the database again;
- after the call returns, ``finished_in_db`` is set whatever the function returned,
  because the database now contains a finish, from this call or from another actor;
- ``nr_builds_done`` grows only when the function returned true.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from buildq.counters import Counters
from buildq.errors import (
    LOCK_NOT_AVAILABLE,
    BuildqError,
    TransientDatabaseError,
    map_database_error,
)

__all__ = [
    "Build",
    "BuildState",
    "BuildSummary",
    "BuildqClient",
    "DEFAULT_LOCK_TIMEOUT",
    "MAX_LOCK_TIMEOUT",
    "QueuedBuild",
    "STATUS_ABORTED",
    "STATUS_SUCCEEDED",
    "STATUS_UNSUPPORTED",
]

logger = logging.getLogger(__name__)

STATUS_SUCCEEDED = 0
STATUS_ABORTED = 3
STATUS_UNSUPPORTED = 9

#: Default seconds that a call waits for a lock, e.g. a build's row lock, before it fails.
DEFAULT_LOCK_TIMEOUT = 30.0

#: Maximum lock timeout in seconds, because PostgreSQL's lock_timeout is at most 2**31 - 1 ms.
MAX_LOCK_TIMEOUT = (2**31 - 1) / 1000

# serialization_failure, deadlock_detected and lock_not_available roll the
# transaction back for certain. Any other transient error may have struck after
# the commit.
_ROLLED_BACK_SQLSTATES = frozenset({"40001", "40P01", LOCK_NOT_AVAILABLE})

T = TypeVar("T")


@dataclass(eq=False)
class Build:
    """Build row as read by one thread of this process, the queue monitor or a builder.

    ``attempt`` is the attempt the thread acts for: the claimed attempt for a builder, the
    queued one for the queue monitor. Finishing calls pass it, so a finish lands only while
    the build is still in that attempt. None finishes whatever attempt is current.
    ``finished_in_db`` is set once a finishing call for this build has returned.
    """

    id: int
    job: str
    system: str
    drv_path: str
    attempt: int | None = None
    priority: int = 0
    global_priority: int = 0
    timeout: int | None = None
    max_silent: int | None = None
    queued_at: datetime | None = None
    finished_in_db: bool = False


@dataclass(frozen=True)
class QueuedBuild:
    """A queued build and whether a build of the same recipe has already succeeded."""

    build: Build
    has_succeeded_build: bool


@dataclass(frozen=True)
class BuildState:
    """Columns of a build row that show whether a running build is still wanted."""

    id: int
    finished: bool
    attempt: int
    build_status: int | None
    finished_by: str | None


@dataclass(frozen=True)
class BuildSummary:
    """Row of the `buildq status` table.

    ``size`` is in bytes. ``status_name`` is queued or running for an unfinished build.
    """

    id: int
    job: str
    status_name: str
    is_cached_build: bool
    finished_by: str | None
    start_time: datetime | None
    stop_time: datetime | None
    size: int | None
    release_name: str | None


class BuildqClient:
    """Client that calls the buildq schema's functions over a pool of autocommit connections.

    ``runner_id`` is recorded as ``finished_by`` of every finish and as the runner of claims
    and steps. Without it, finishes record the database user.

    A call that fails with a transient error is tried up to ``retry_attempts`` times in all,
    sleeping a random time of up to ``retry_base_delay * 2**n`` seconds (at most
    ``retry_max_delay``) between tries.

    The pool keeps ``min_size`` to ``max_size`` connections. Opening a connection, and
    waiting for a pooled one, each time out after ``connect_timeout`` seconds, and a timeout
    counts as a transient error. ``lock_timeout`` is set as PostgreSQL's lock_timeout on
    every pooled connection and on those of :meth:`connect`. A statement that waits longer
    than that many seconds for a lock fails with SQLSTATE 55P03, which is retried like the
    other transient errors. 0 means no limit, and None leaves the server's setting alone.

    :meth:`open` must be called first, or the client used as a context manager.
    """

    def __init__(
        self,
        *,
        conninfo: str = "",
        runner_id: str | None = None,
        counters: Counters | None = None,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        retry_attempts: int = 5,
        retry_base_delay: float = 0.1,
        retry_max_delay: float = 5.0,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        application_name: str = "buildq",
    ) -> None:
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts}")
        if lock_timeout is not None and not (0 <= lock_timeout <= MAX_LOCK_TIMEOUT):
            raise ValueError(
                f"lock_timeout must be from 0 to {MAX_LOCK_TIMEOUT} seconds, got {lock_timeout}"
            )
        if runner_id == "":
            raise ValueError(
                "runner_id must not be empty. Pass None for a client without a runner."
            )

        self.conninfo = conninfo
        self.runner_id = runner_id
        self.counters = counters if counters is not None else Counters()
        self.connect_timeout = connect_timeout
        self.retry_attempts = retry_attempts
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.lock_timeout = lock_timeout

        # Opening a connection, pooled or not, to an unreachable server fails after
        # connect_timeout seconds instead of the operating system's TCP timeout.
        # libpq takes whole seconds.
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": application_name,
            "connect_timeout": max(1, round(connect_timeout)),
            # A database created with encoding SQL_ASCII (initdb under the POSIX
            # locale) would otherwise return text columns as bytes.
            "client_encoding": "UTF8",
        }

        self._pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs=self._connect_kwargs,
            open=False,
            name=application_name,
            timeout=connect_timeout,
            configure=self._configure_connection,
        )

    # -- lifecycle -----------------------------------------------------------------

    def open(self) -> None:
        """Check that the database is reachable, then open the pool.

        Raises a BuildqError with a one-line message when the first connection fails.
        """
        try:
            with psycopg.connect(self.conninfo, **self._connect_kwargs):
                pass
        except psycopg.Error as exc:
            error = map_database_error(exc)
            message = " ".join(str(error).split())
            raise type(error)(f"cannot connect to the database: {message}") from exc
        self._pool.open(wait=True, timeout=self.connect_timeout)
        logger.debug("connection pool %s opened", self._pool.name)

    def close(self) -> None:
        """Close the pool, after which calls raise."""
        self._pool.close()

    def __enter__(self) -> BuildqClient:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> psycopg.Connection[Any]:
        """Open a separate autocommit connection, e.g. for LISTEN, which the caller must close.

        The attempt times out after ``connect_timeout`` seconds.
        """
        try:
            conn = psycopg.connect(self.conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise map_database_error(exc) from exc
        try:
            self._configure_connection(conn)
        except psycopg.Error as exc:
            conn.close()
            raise map_database_error(exc) from exc
        return conn

    def _configure_connection(self, conn: psycopg.Connection[Any]) -> None:
        """Set the session's lock_timeout. The pool calls this on each new connection."""
        if self.lock_timeout is None:
            return
        milliseconds = round(self.lock_timeout * 1000)
        if self.lock_timeout > 0:
            # Rounding must not turn a positive timeout below 0.5 ms into 0, which means no limit.
            milliseconds = max(1, milliseconds)
        conn.execute("select set_config('lock_timeout', %s, false)", (f"{milliseconds}ms",))

    # -- queue and claims ----------------------------------------------------------

    def queue_build(
        self,
        *,
        job: str,
        system: str,
        drv_path: str,
        priority: int | None = None,
        global_priority: int | None = None,
        timeout: int | None = None,
        max_silent: int | None = None,
    ) -> int:
        """Queue a build and return its id (SQL queue_build)."""
        arguments = {
            "job": job,
            "system": system,
            "drv_path": drv_path,
            "priority": priority,
            "global_priority": global_priority,
            "timeout": timeout,
            "max_silent": max_silent,
        }
        build_id = self._call_function("queue_build", arguments)
        logger.info("queued build %s of job %s (%s)", build_id, job, drv_path)
        return int(build_id)

    def claim_builds(
        self, *, max_count: int = 1, systems: Sequence[str] | None = None
    ) -> list[Build]:
        """Claim up to ``max_count`` queued builds for this client's runner (SQL claim_builds)."""
        runner = self._require_runner_id("claim_builds")
        arguments = {
            "runner": runner,
            "max_count": max_count,
            "systems": list(systems) if systems is not None else None,
        }
        query = _function_call("claim_builds", arguments, returns_table=True)
        rows = self._fetch_dicts("claim_builds", query, arguments)
        builds = [Build(**row) for row in rows]
        for build in builds:
            logger.info(
                "runner %s claimed build %s (job %s, attempt %s)",
                runner,
                build.id,
                build.job,
                build.attempt,
            )
        return builds

    # -- finishing builds ----------------------------------------------------------

    def finish_build(
        self,
        build: Build,
        status: int,
        *,
        start_time: datetime | None = None,
        stop_time: datetime | None = None,
        is_cached: bool | None = None,
        size: int | None = None,
        closure_size: int | None = None,
        release_name: str | None = None,
        error_msg: str | None = None,
    ) -> bool:
        """Record the result of ``build`` and return whether this call recorded it.

        Calls SQL finish_build.
        """
        arguments = {
            "build_id": build.id,
            "status": status,
            "start_time": start_time,
            "stop_time": stop_time,
            "is_cached": is_cached,
            "size": size,
            "closure_size": closure_size,
            "release_name": release_name,
            "error_msg": error_msg,
        }
        return self._finish(
            "finish_build",
            build,
            arguments,
            status=status,
            is_cached=bool(is_cached),
            error_msg=error_msg,
        )

    def abort_build(self, build: Build, reason: str) -> bool:
        """Finish ``build`` as aborted (status 3) with ``reason`` as its message (SQL abort_build)."""
        arguments = {"build_id": build.id, "reason": reason}
        return self._finish(
            "abort_build",
            build,
            arguments,
            status=STATUS_ABORTED,
            is_cached=False,
            error_msg=reason,
        )

    def finish_cached_build(self, build: Build) -> bool | None:
        """Finish ``build`` as a cached success if the same recipe already succeeded.

        Returns True when this call finished the build and False when it was already
        finished or in another attempt (SQL finish_cached_build). Returns None, and leaves
        ``finished_in_db`` alone, when no succeeded build of the recipe exists.
        """
        arguments = {"build_id": build.id}
        return self._finish(
            "finish_cached_build",
            build,
            arguments,
            status=STATUS_SUCCEEDED,
            is_cached=True,
            error_msg=None,
            null_means_not_applicable=True,
        )

    # -- steps ---------------------------------------------------------------------

    def create_build_step(
        self,
        build: Build,
        *,
        drv_path: str | None = None,
        type: int | None = None,
        system: str | None = None,
        machine: str | None = None,
        start_time: datetime | None = None,
    ) -> int | None:
        """Start a busy step of ``build`` and return its number (SQL create_build_step).

        Returns None when the build is already finished or in another attempt, and also,
        without a database call, when ``build.finished_in_db`` is set.
        """
        if build.finished_in_db:
            logger.debug("build %s is already finished, so no step was created", build.id)
            return None
        arguments = {
            "build_id": build.id,
            "drv_path": drv_path,
            "type": type,
            "system": system,
            "machine": machine,
            "runner": self.runner_id,
            "attempt": build.attempt,
            "start_time": start_time,
        }
        step_nr = self._call_function("create_build_step", arguments, build_id=build.id)
        if step_nr is None:
            logger.info(
                "build %s is finished or in another attempt, so no step was created", build.id
            )
            return None
        self.counters.increment("nr_steps_started")
        logger.info("build %s: step %s started", build.id, step_nr)
        return int(step_nr)

    def finish_build_step(
        self,
        build_id: int,
        step_nr: int,
        status: int,
        *,
        error_msg: str | None = None,
        stop_time: datetime | None = None,
        machine: str | None = None,
        overhead: int | None = None,
        times_built: int | None = None,
        is_non_deterministic: bool | None = None,
        propagated_from: int | None = None,
    ) -> bool:
        """Record the result of a busy step and return whether this call recorded it.

        Calls SQL finish_build_step. ``nr_steps_done`` grows only when it returns true.
        """
        arguments = {
            "build_id": build_id,
            "step_nr": step_nr,
            "status": status,
            "error_msg": error_msg,
            "stop_time": stop_time,
            "machine": machine,
            "overhead": overhead,
            "times_built": times_built,
            "is_non_deterministic": is_non_deterministic,
            "propagated_from": propagated_from,
        }
        finished = bool(self._call_function("finish_build_step", arguments, build_id=build_id))
        if finished:
            self.counters.increment("nr_steps_done")
            logger.info("build %s: step %s finished with status %s", build_id, step_nr, status)
        else:
            logger.info(
                "build %s: step %s was already finished, so nothing changed", build_id, step_nr
            )
        return finished

    def clear_busy(self, runner: str | None = None) -> int:
        """Abort the busy steps and requeue the claimed builds of a runner (SQL clear_busy).

        ``runner`` defaults to this client's runner id. Returns the number of steps and
        builds changed.
        """
        runner = runner or self._require_runner_id("clear_busy")
        changed = int(self._call_function("clear_busy", {"runner": runner}))
        logger.info("cleared %s busy steps and builds of runner %s", changed, runner)
        return changed

    def release_build(self, build: Build) -> bool:
        """Return ``build``, claimed by this client's runner, to the queue (SQL release_build).

        Passes ``build.attempt``, so a build that moved on to another attempt stays as it
        is. Returns whether this call released it. ``nr_builds_released`` grows only then.
        """
        runner = self._require_runner_id("release_build")
        arguments = {"build_id": build.id, "runner": runner, "attempt": build.attempt}
        # NOTE: when the connection breaks after the release committed, the retry returns
        # false, and the release is logged and counted as not done by this call.
        released = bool(self._call_function("release_build", arguments, build_id=build.id))
        if released:
            self.counters.increment("nr_builds_released")
            logger.warning(
                "build %s (attempt %s) released by runner %s and queued again",
                build.id,
                build.attempt,
                runner,
            )
        else:
            logger.info(
                "build %s was not released: it is finished, not claimed by runner %s "
                "or no longer in attempt %s",
                build.id,
                runner,
                build.attempt,
            )
        return released

    # -- the runner's own row ------------------------------------------------------

    def register_runner(
        self, *, host: str | None = None, pid: int | None = None
    ) -> datetime | None:
        """Take over the runners row of this client's runner id (SQL register_runner).

        Returns the last heartbeat of a previous process with this id that never recorded
        a stop, else None.
        """
        runner = self._require_runner_id("register_runner")
        arguments = {"runner": runner, "host": host, "pid": pid}
        previous_heartbeat: datetime | None = self._call_function("register_runner", arguments)
        return previous_heartbeat

    def update_runner(self, counters: Mapping[str, int], *, stopped: bool = False) -> bool:
        """Store the heartbeat and ``counters`` of this client's runner (SQL update_runner).

        Returns False when the runner has no row.
        """
        runner = self._require_runner_id("update_runner")
        arguments = {"runner": runner, "counters": Jsonb(dict(counters)), "stopped": stopped}
        return bool(self._call_function("update_runner", arguments))

    # -- reads ---------------------------------------------------------------------

    def list_queued(self, *, limit: int) -> list[QueuedBuild]:
        """Return up to ``limit`` unfinished, unclaimed builds in dispatch order."""
        query = sql.SQL(
            "select b.id, b.attempt, b.job, b.system, b.drv_path, b.priority, b.global_priority,"
            " b.timeout, b.max_silent, b.queued_at,"
            " exists ("
            "  select 1 from buildq.builds as s"
            "  where s.drv_path = b.drv_path and s.id <> b.id"
            "  and s.finished = 1 and s.build_status = 0"
            " ) as has_succeeded_build"
            " from buildq.builds as b"
            " where b.finished = 0 and b.busy = 0"
            " order by b.global_priority desc, b.priority desc, b.id"
            " limit %(limit)s"
        )
        rows = self._fetch_dicts("list_queued", query, {"limit": limit})
        queued = []
        for row in rows:
            has_succeeded_build = row.pop("has_succeeded_build")
            queued.append(QueuedBuild(build=Build(**row), has_succeeded_build=has_succeeded_build))
        return queued

    def count_queued(self) -> int:
        """Return the number of unfinished builds that no runner has claimed."""
        query = sql.SQL("select count(*) from buildq.builds where finished = 0 and busy = 0")
        row = self._execute("count_queued", lambda conn: conn.execute(query).fetchone())
        return int(row[0]) if row is not None else 0

    def list_claimed(self) -> list[Build]:
        """Return the unfinished builds that the database shows as claimed by this runner."""
        runner = self._require_runner_id("list_claimed")
        query = sql.SQL(
            "select id, attempt, job, system, drv_path, priority, global_priority,"
            " timeout, max_silent, queued_at"
            " from buildq.builds"
            " where claimed_by = %(runner)s and busy = 1 and finished = 0"
            " order by id"
        )
        rows = self._fetch_dicts("list_claimed", query, {"runner": runner})
        return [Build(**row) for row in rows]

    def fetch_build_states(self, build_ids: Iterable[int]) -> dict[int, BuildState]:
        """Return the state of each given build that exists, by id."""
        ids = list(build_ids)
        if not ids:
            return {}
        query = sql.SQL(
            "select id, finished = 1 as finished, attempt, build_status, finished_by"
            " from buildq.builds where id = any(%(ids)s)"
        )
        rows = self._fetch_dicts("fetch_build_states", query, {"ids": ids})
        return {row["id"]: BuildState(**row) for row in rows}

    def list_builds(self, *, limit: int) -> list[BuildSummary]:
        """Return the ``limit`` newest builds, oldest first, for `buildq status`."""
        query = sql.SQL(
            "select * from ("
            " select b.id, b.job,"
            "  case when b.finished = 1 then coalesce(s.name, 'unknown')"
            "   when b.busy = 1 then 'running' else 'queued' end as status_name,"
            "  b.is_cached_build, b.finished_by, b.start_time, b.stop_time, b.size, b.release_name"
            " from buildq.builds as b"
            " left join buildq.build_statuses as s on s.code = b.build_status"
            " order by b.id desc limit %(limit)s"
            ") as newest order by id"
        )
        rows = self._fetch_dicts("list_builds", query, {"limit": limit})
        return [BuildSummary(**row) for row in rows]

    # -- internals -----------------------------------------------------------------

    def _require_runner_id(self, function: str) -> str:
        if self.runner_id is None:
            raise ValueError(
                f"{function} needs a runner id. Create the client with runner_id=..."
            )
        return self.runner_id

    def _finish(
        self,
        function: str,
        build: Build,
        arguments: dict[str, Any],
        *,
        status: int,
        is_cached: bool,
        error_msg: str | None,
        null_means_not_applicable: bool = False,
    ) -> Any:
        if build.finished_in_db:
            logger.debug("build %s is already finished, so %s was not called", build.id, function)
            return False

        arguments = {**arguments, "finished_by": self.runner_id, "attempt": build.attempt}
        stop_time = arguments.get("stop_time")
        tries = _Tries()
        result = self._call_function(function, arguments, build_id=build.id, tries=tries)

        if result is None and null_means_not_applicable:
            logger.debug("build %s: %s does not apply, so nothing was finished", build.id, function)
            return None
        finished = bool(result)
        if not finished and tries.maybe_committed:
            finished = self._finish_was_ours(build, status, error_msg, stop_time)

        # The database contains a finish now, from this call or from another actor.
        build.finished_in_db = True
        if finished:
            self._count_finish(status, is_cached)
            logger.info(
                "build %s finished with status %s%s by %s",
                build.id,
                status,
                " (cached)" if is_cached else "",
                self.runner_id or "this session",
            )
        else:
            self.counters.increment("nr_builds_lost")
            logger.info(
                "build %s was already finished or in another attempt, so %s changed nothing",
                build.id,
                function,
            )
        return finished

    def _count_finish(self, status: int, is_cached: bool) -> None:
        self.counters.increment("nr_builds_done")
        if is_cached:
            self.counters.increment("nr_builds_cached")
        elif status == STATUS_SUCCEEDED:
            self.counters.increment("nr_builds_succeeded")
        elif status == STATUS_ABORTED:
            self.counters.increment("nr_builds_aborted")
        elif status == STATUS_UNSUPPORTED:
            self.counters.increment("nr_builds_unsupported")
        else:
            self.counters.increment("nr_builds_failed")

    def _finish_was_ours(
        self, build: Build, status: int, error_msg: str | None, stop_time: datetime | None
    ) -> bool:
        """Check whether a finish that returned false after a lost connection was our own.

        An earlier try may have committed before its connection broke. The retry then finds
        the build finished and returns false. The finish counts as ours when the row shows
        our runner id, status, message and, when we sent one, stop time.
        """
        # NOTE: without a stop time (abort_build, finish_cached_build) a finish by another
        # actor of this runner id with the same status and message also matches.
        query = sql.SQL(
            "select exists (select 1 from buildq.builds as b"
            " where b.id = %(build_id)s and b.finished = 1"
            " and b.finished_by = coalesce(%(finished_by)s::text, session_user)"
            " and b.build_status = %(status)s"
            " and b.error_msg is not distinct from %(error_msg)s::text"
            " and (%(stop_time)s::timestamptz is null or b.stop_time = %(stop_time)s::timestamptz)"
            " and (%(attempt)s::integer is null or b.attempt = %(attempt)s::integer))"
        )
        parameters = {
            "build_id": build.id,
            "finished_by": self.runner_id,
            "status": status,
            "error_msg": error_msg,
            "stop_time": stop_time,
            "attempt": build.attempt,
        }
        row = self._execute(
            "finish check",
            lambda conn: conn.execute(query, parameters).fetchone(),
            build_id=build.id,
        )
        ours = bool(row and row[0])
        if ours:
            logger.warning(
                "build %s: the finish committed before the connection was lost, "
                "so it is counted once",
                build.id,
            )
        return ours

    def _call_function(
        self,
        function: str,
        arguments: dict[str, Any],
        *,
        build_id: int | None = None,
        tries: _Tries | None = None,
    ) -> Any:
        query = _function_call(function, arguments)
        present = {name: value for name, value in arguments.items() if value is not None}
        row = self._execute(
            function,
            lambda conn: conn.execute(query, present).fetchone(),
            build_id=build_id,
            tries=tries,
        )
        return row[0] if row is not None else None

    def _fetch_dicts(
        self, call_name: str, query: sql.Composable, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return self._execute(
            call_name,
            lambda conn: conn.cursor(row_factory=dict_row).execute(query, parameters).fetchall(),
        )

    def _execute(
        self,
        call_name: str,
        operation: Callable[[psycopg.Connection[Any]], T],
        *,
        build_id: int | None = None,
        tries: _Tries | None = None,
    ) -> T:
        """Run ``operation`` on a pooled connection, retrying transient errors with backoff."""
        tries = tries or _Tries()
        while True:
            tries.count += 1
            try:
                with self._pool.connection() as conn:
                    return operation(conn)
            except psycopg.Error as exc:
                error = map_database_error(exc)
                if not isinstance(error, TransientDatabaseError):
                    raise error from exc
                if exc.sqlstate not in _ROLLED_BACK_SQLSTATES:
                    tries.maybe_committed = True
                if tries.count >= self.retry_attempts:
                    self._log_transient_error(call_name, build_id, tries.count, exc, error)
                    raise error from exc
                ceiling = self.retry_base_delay * 2 ** (tries.count - 1)
                delay = random.uniform(0, min(self.retry_max_delay, ceiling))
                self.counters.increment("nr_retries")
                self._log_transient_error(call_name, build_id, tries.count, exc, error, delay)
                time.sleep(delay)

    def _log_transient_error(
        self,
        call_name: str,
        build_id: int | None,
        try_number: int,
        exc: psycopg.Error,
        error: BuildqError,
        retry_delay: float | None = None,
    ) -> None:
        """Log one failed try, as a warning before a retry or as an error when the call gives up.

        ``retry_delay`` is None when the call gives up.
        """
        call = call_name if build_id is None else f"{call_name} (build {build_id})"
        if exc.sqlstate != LOCK_NOT_AVAILABLE:
            cause, advice = "with a transient error", ""
        else:
            waited = "" if self.lock_timeout is None else f" after {self.lock_timeout:g} s"
            cause = f"because a lock wait timed out{waited}"
            advice = (
                ". Another session holds a lock that this call needs, for example a "
                "transaction left open in psql. Find it with: select * from pg_stat_activity "
                "where state = 'idle in transaction'"
            )
            if 1 < try_number < self.retry_attempts:
                # Only the first and the last try log the advice, so retries do not repeat it.
                advice = ""

        if retry_delay is None:
            logger.error(
                "%s failed %s, try %s of %s, giving up: %s%s",
                call,
                cause,
                try_number,
                self.retry_attempts,
                error,
                advice,
            )
        else:
            logger.warning(
                "%s failed %s, try %s of %s, retrying in %.2f s: %s%s",
                call,
                cause,
                try_number,
                self.retry_attempts,
                retry_delay,
                error,
                advice,
            )


@dataclass
class _Tries:
    """Bookkeeping of one retried call."""

    count: int = 0
    maybe_committed: bool = False


def _function_call(
    function: str, arguments: Mapping[str, Any], *, returns_table: bool = False
) -> sql.Composed:
    """Compose ``select buildq.f(name => %(name)s, ...)`` for the arguments that are not None.

    Omitted arguments take the SQL function's defaults.
    """
    named = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name))
        for name, value in arguments.items()
        if value is not None
    )
    call = sql.SQL("{}.{}({})").format(sql.Identifier("buildq"), sql.Identifier(function), named)
    if returns_table:
        return sql.SQL("select * from {}").format(call)
    return sql.SQL("select {}").format(call)

