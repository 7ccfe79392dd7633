"""Counters of one runner process, shared by its threads and stored in buildq.runners."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields

__all__ = ["Counters"]


@dataclass
class Counters:
    """Event counts of one process. :meth:`increment` is safe to call from any thread.

    docs/runner.md describes each counter. Reading one attribute needs no lock.
    """

    nr_builds_read: int = 0
    nr_builds_done: int = 0
    nr_builds_succeeded: int = 0
    nr_builds_failed: int = 0
    nr_builds_aborted: int = 0
    nr_builds_cached: int = 0
    nr_builds_unsupported: int = 0
    nr_builds_lost: int = 0
    nr_builds_stopped: int = 0
    nr_builds_released: int = 0
    nr_steps_started: int = 0
    nr_steps_done: int = 0
    nr_retries: int = 0
    nr_queue_wakeups: int = 0
    nr_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def increment(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``, or raise AttributeError for an unknown name."""
        if name.startswith("_") or not hasattr(self, name):
            raise AttributeError(f"unknown counter {name!r}")
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        """Return every counter by name, read under the lock so that the values are consistent."""
        with self._lock:
            return {
                item.name: getattr(self, item.name)
                for item in fields(self)
                if not item.name.startswith("_")
            }
