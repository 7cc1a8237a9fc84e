"""The sweep of abandoned multipart uploads that :func:`delivering.deliver` runs.

Cases: it runs outside the store lock (a slow listing must not stop every other delivery and
delete); its time is kept in the spool directory, so a new process (the CLI, one per ``--upload``)
sweeps at most once per interval too, and again once the interval has passed; a time ahead of the
clock (a clock set back) does not stop sweeps; an unwritable spool directory does not fail it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from debugcap import delivering
from debugcap.bundle import layout
from debugcap.storage import local, spool

WHEN = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
NAME = layout.bundle_name("team", "api-1", WHEN)


class _Sweeping(local.LocalBackend):
    """A local store that records each sweep and whether the store lock was held during it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.sweeps: list[bool] = []  # per sweep: was the store's lock held
        self.store: delivering.Store | None = None

    def abort_stale_uploads(self, *, prefix: str, older_than: timedelta) -> Sequence[str]:
        assert self.store is not None
        self.sweeps.append(self.store.lock.locked())
        return []


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class _Bundle:
    """What delivering.deliver reads of a WrittenBundle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()


def _process(tmp_path: Path, clock: _Clock) -> tuple[delivering.Store, _Sweeping]:
    """A store as a new process builds it: no sweep remembered in memory."""
    backend = _Sweeping(tmp_path / "store")
    store = delivering.Store(backend, "debugcap", "c1", spool.Spool(tmp_path / "spool"),
                             sweep=delivering.StaleSweep(clock=clock))
    backend.store = store
    return store, backend


def _deliver(store: delivering.Store, tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "work" / body.decode() / NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    delivery, _ = delivering.deliver(store, _Bundle(path), namespace="team", pod="api-1",  # type: ignore[arg-type]
                                     when=WHEN, capture=delivering.Upload.new())
    assert delivery.stored, delivery


def test_the_sweep_runs_outside_the_store_lock(tmp_path: Path) -> None:
    store, backend = _process(tmp_path, _Clock())
    _deliver(store, tmp_path, b"one")
    assert backend.sweeps == [False]


def test_one_sweep_an_hour_across_processes_sharing_a_spool(tmp_path: Path) -> None:
    clock = _Clock()
    first, first_backend = _process(tmp_path, clock)
    _deliver(first, tmp_path, b"one")
    assert len(first_backend.sweeps) == 1
    assert (tmp_path / "spool" / delivering.LAST_SWEEP_FILE).is_file()

    clock.now += 59 * 60
    second, second_backend = _process(tmp_path, clock)  # the next `--upload`, a new process
    _deliver(second, tmp_path, b"two")
    assert second_backend.sweeps == []

    clock.now += 2 * 60
    third, third_backend = _process(tmp_path, clock)
    _deliver(third, tmp_path, b"three")
    assert len(third_backend.sweeps) == 1
    assert spool.Spool(tmp_path / "spool").entries() == []  # the time file is no bundle


def test_a_recorded_time_ahead_of_the_clock_does_not_stop_sweeps(tmp_path: Path) -> None:
    clock = _Clock()
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / delivering.LAST_SWEEP_FILE).write_text(f"{clock.now + 86400}\n")
    store, backend = _process(tmp_path, clock)
    assert delivering.sweep_stale_uploads(store) == [] and len(backend.sweeps) == 1


def test_an_unwritable_time_file_still_sweeps_once_per_interval_in_process(tmp_path: Path) -> None:
    clock = _Clock()
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    store, backend = _process(tmp_path, clock)
    delivering.sweep_stale_uploads(store)
    delivering.sweep_stale_uploads(store)
    assert len(backend.sweeps) == 1
