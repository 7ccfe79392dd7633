"""Connection settings: --dsn, else BUILDQ_DSN, else libpq's PG* variables."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict

from buildq.errors import InvalidArgument

__all__ = ["resolve_dsn", "DSN_ENV"]

DSN_ENV = "BUILDQ_DSN"


def resolve_dsn(dsn: str | None = None) -> str:
    """Return the connection string to use, after checking its syntax.

    An empty string is valid: libpq then reads PGHOST, PGPORT, PGUSER,
    PGDATABASE and the other PG* variables, or uses its defaults. Raises
    InvalidArgument naming where an unparsable string came from.
    """
    if dsn:
        source, value = "--dsn", dsn
    else:
        source, value = DSN_ENV, os.environ.get(DSN_ENV, "")
    try:
        conninfo_to_dict(value)
    except psycopg.ProgrammingError as exc:
        raise InvalidArgument(
            f"invalid connection string in {source}: {str(exc).strip()}. Pass key=value pairs "
            "such as 'host=127.0.0.1 dbname=ci' or a URI such as 'postgresql://host/ci'"
        ) from exc
    return value
