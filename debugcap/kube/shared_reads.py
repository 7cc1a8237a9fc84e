"""Reads that the pods of one sweep share: each object read once per ``max_age``, not once per pod.

A sweep of 100 pods of one namespace on one node asked the API server for that namespace's Events
100 times (a field-selected LIST, which the API server answers by scanning every Event of the
namespace: it grows with the namespace, ~90 ms of its CPU each with 200 pods' Events), for the one
node 100 times, and for each pod again after the sweep had just listed it. Shared, they cost one
read per ``max_age`` seconds (issue 17: read each object once).

What is shared is a value and when its read began; a caller that finds it older than ``max_age``
begins a new read, so a pod captured late in a long sweep sees evidence at most ``max_age`` old
(5 s: the same bound as the sweep's pod reads in ``debugcap.operator.targets``). One read in
flight per key: the callers that ask meanwhile take its answer, whatever it took (a slow read
would otherwise send each of them to read on its own, the herd sharing was to prevent). A shared
read that fails, or does not answer within ``wait``, is not kept: each caller then makes its own
read, ``alone`` (a narrower one: the events of its pod, not of the namespace) or ``read``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Final, TypeVar

T = TypeVar("T")

MAX_AGE_SECONDS: Final = 5.0
# Longest a caller waits for another's read: past the API client's own request timeout (30 s), the
# read is stuck beyond what waiting helps.
WAIT_SECONDS: Final = 35.0


class _Entry:
    def __init__(self) -> None:
        self.value: Any = None
        self.read_at: float | None = None  # None: no value yet
        self.reading: threading.Event | None = None  # set when the read in flight answered
        self.failed_at: float | None = None  # when the last shared read that failed began


class SharedReads:
    """Values keyed by what was read (a path, a node's name), each read at most once per ``max_age``."""

    def __init__(self, *, max_age: float = MAX_AGE_SECONDS, wait: float = WAIT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self.wait, self.clock = max_age, wait, clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self.reads = 0  # shared reads begun (not answered from what was kept): for tests and benchmarks

    def put(self, key: Hashable, value: Any, read_at: float) -> None:
        """Keep a value read elsewhere (a pod from the sweep's LIST), as of ``read_at`` (``clock``'s)."""
        with self._lock:
            self._keep(self._entries.setdefault(key, _Entry()), value, read_at)

    def get(self, key: Hashable, read: Callable[[], T], *, alone: Callable[[], T] | None = None) -> T:
        """The value under ``key`` while it is younger than ``max_age``, else ``read()``'s (kept), or
        the answer of the read in flight. When that shared read fails or hangs, ``alone()`` (default
        ``read``): this caller's own read, whose errors are its own."""
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            if self._fresh(entry):
                return entry.value  # type: ignore[no-any-return]
            # A shared read that failed is not tried again for max_age by the pods that come next:
            # each would pay the failing LIST (up to the request timeout) before its own read.
            failed = alone is not None and entry.failed_at is not None and \
                self.clock() - entry.failed_at < self.max_age
            reading = entry.reading
            if reading is None and not failed:
                started = self.clock()  # the value stands for the object as of before the read
                before = entry.read_at
                done = entry.reading = threading.Event()  # last: nothing may raise between it and the try
                self.reads += 1
        if failed:
            return alone()  # type: ignore[misc]
        if reading is not None:
            reading.wait(self.wait)
            with self._lock:
                # The read this caller waited for answered: its value, however long it took.
                if entry.read_at is not None and entry.reading is not reading:
                    return entry.value  # type: ignore[no-any-return]
            return (alone or read)()
        ok, value = False, None
        try:
            value, ok = read(), True
        except Exception:
            if alone is None:
                raise
        finally:
            with self._lock:
                if entry.reading is done:
                    entry.reading = None
                if ok:
                    self._keep(entry, value, started)
                else:
                    entry.failed_at = started
                    if entry.read_at == before:  # nothing newer came meanwhile: the waiters on this
                        entry.read_at = None     # failed read must not take the stale value for its answer
            done.set()
        return value if ok else alone()  # type: ignore[misc,return-value]

    def _fresh(self, entry: _Entry) -> bool:
        return entry.read_at is not None and self.clock() - entry.read_at < self.max_age

    @staticmethod
    def _keep(entry: _Entry, value: Any, read_at: float) -> None:
        """An older read never replaces a newer one (a pod re-read while a slow read was out)."""
        if entry.read_at is None or read_at > entry.read_at:
            entry.value, entry.read_at = value, read_at

