"""Exceptions of buildq, chosen by the SQLSTATE of the database error.

The SQL functions raise their own codes of class BQ (see docs/errors.md) or
standard ones. `map_database_error` turns a psycopg error into one of the
classes below and keeps the original as ``__cause__``.
"""

from __future__ import annotations

import psycopg

__all__ = [
    "BuildqError",
    "BuildNotFound",
    "StepNotFound",
    "InvalidStatus",
    "InvalidTimeRange",
    "InvalidArgument",
    "TransientDatabaseError",
    "DatabaseError",
    "MigrationError",
    "map_database_error",
    "TRANSIENT_SQLSTATES",
    "LOCK_NOT_AVAILABLE",
]


class BuildqError(Exception):
    """Base class of every error buildq raises."""

    sqlstate: str | None = None


class BuildNotFound(BuildqError):
    """Error for a build id that does not exist (BQ001)."""


class StepNotFound(BuildqError):
    """Error for a build step that does not exist (BQ002)."""


class InvalidStatus(BuildqError):
    """Error for a status code that is unknown or does not apply here (BQ003)."""


class InvalidTimeRange(BuildqError):
    """Error for a stop time before its start time (BQ004)."""


class InvalidArgument(BuildqError):
    """Error for an argument that is null, empty or out of range (22004, 22023 and class 22)."""


class TransientDatabaseError(BuildqError):
    """Failure that may pass on retry.

    Examples are a lost connection, a serialization failure, a deadlock and a lock timeout.
    """


class DatabaseError(BuildqError):
    """Any other database error."""


class MigrationError(BuildqError):
    """Error that prevents a schema migration, e.g. an applied migration file was edited."""


_BY_SQLSTATE: dict[str, type[BuildqError]] = {
    "BQ001": BuildNotFound,
    "BQ002": StepNotFound,
    "BQ003": InvalidStatus,
    "BQ004": InvalidTimeRange,
    "22004": InvalidArgument,
    "22023": InvalidArgument,
}

# lock_not_available: a lock wait outlasted lock_timeout, usually because another
# session holds a row lock in a transaction left open. The server cancels the
# statement, so the transaction of an autocommit call is rolled back.
LOCK_NOT_AVAILABLE = "55P03"

# SQLSTATEs of errors that may pass on retry: serialization_failure,
# deadlock_detected and lock_not_available. admin_shutdown and crash_shutdown
# (57P01, 57P02) and cannot_connect_now (57P03) end a connection through no
# fault of the call, like the connection exceptions of class 08, which
# _is_transient checks by prefix.
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", LOCK_NOT_AVAILABLE, "57P01", "57P02", "57P03"},
)


def _is_transient(exc: psycopg.Error) -> bool:
    sqlstate = exc.sqlstate
    if sqlstate is None:
        # psycopg raises OperationalError without a SQLSTATE when the
        # connection breaks or cannot be opened.
        return isinstance(exc, psycopg.OperationalError)
    return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08")


def map_database_error(exc: psycopg.Error) -> BuildqError:
    """Return the buildq exception for a psycopg error, with the cause attached.

    The message keeps the server's text and hint, so a caller that logs the
    exception shows both.
    """
    sqlstate = exc.sqlstate
    if _is_transient(exc):
        cls: type[BuildqError] = TransientDatabaseError
    elif sqlstate in _BY_SQLSTATE:
        cls = _BY_SQLSTATE[sqlstate]
    elif sqlstate is not None and sqlstate.startswith("22"):
        cls = InvalidArgument
    else:
        cls = DatabaseError

    message = str(exc.diag.message_primary or exc).strip()
    hint = exc.diag.message_hint
    if hint:
        message = f"{message} (hint: {hint})"
    mapped = cls(message)
    mapped.sqlstate = sqlstate
    mapped.__cause__ = exc
    return mapped
