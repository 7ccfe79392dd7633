"""Connection settings: --dsn, else BUILDQ_DSN, else libpq's PG* variables."""

from __future__ import annotations

import os

__all__ = ["resolve_dsn", "DSN_ENV"]

DSN_ENV = "BUILDQ_DSN"


def resolve_dsn(dsn: str | None = None) -> str:
    """Return the connection string to use.

    An empty string is valid: libpq then reads PGHOST, PGPORT, PGUSER,
    PGDATABASE and the other PG* variables, or uses its defaults.
    """
    if dsn:
        return dsn
    return os.environ.get(DSN_ENV, "")
