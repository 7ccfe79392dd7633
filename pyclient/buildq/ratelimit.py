"""Rate limit for the log lines of a failure that repeats, e.g. while the database is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RepeatedFailureLog"]


class RepeatedFailureLog:
    """Filter that decides which failures in a run of repeated failures get a log line.

    The first failure of a run is logged, then at most one failure per ``interval``
    seconds. A success ends the run. ``clock`` returns seconds, monotonic by default.
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._unlogged = 0
        self._logged_at = 0.0

    def failed(self) -> int | None:
        """Count one failure and return None when it should not be logged.

        Otherwise returns how many failures since the last logged one went unlogged
        (0 for the first failure of a run).
        """
        with self._lock:
            now = self._clock()
            self._failures += 1
            if self._failures > 1 and now - self._logged_at < self.interval:
                self._unlogged += 1
                return None
            unlogged = self._unlogged
            self._unlogged = 0
            self._logged_at = now
            return unlogged

    def succeeded(self) -> int:
        """End the current run of failures and return how many failures it had."""
        with self._lock:
            failures = self._failures
            self._failures = 0
            self._unlogged = 0
            return failures
