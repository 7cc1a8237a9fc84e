"""A write that fails part-way into the archive breaks the bundle; a failed spool does not.

A failure while a member is *spooled* (its source or the spool file fails) happens before any
byte of it reaches the archive: that member is left out and the bundle still finishes and
verifies. A failure while the member is *written into the archive* leaves a torn gzip piece
behind, so the writer refuses every later add and finish() instead of shipping a corrupt
bundle under a valid-looking ``.sha256``.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from debugcap.bundle import layout, manifest, verify, writer
from debugcap.errors import BundleError

FieldsFactory = Callable[..., manifest.ManifestFields]
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def name(when: datetime) -> str:
    return layout.bundle_name("prod", "api-1", when)


def _tear_next_archive_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next write to the bundle file puts half its bytes on disk, then the disk is full."""
    real = writer._HashingWriter.write
    armed = {"on": True}

    def write(self: writer._HashingWriter, data: bytes) -> int:
        if armed["on"] and len(data) > 1:
            armed["on"] = False
            real(self, data[: len(data) // 2])
            raise ENOSPC
        return real(self, data)

    monkeypatch.setattr(writer._HashingWriter, "write", write)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_member_torn_in_the_archive_fails_the_bundle_and_keeps_nothing(
    tmp_path: Path, name: str, make_fields: FieldsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BundleError) as caught, writer.BundleWriter(directory=tmp_path, name=name, durable=False) as w:
        w.add_bytes(layout.log_path("a"), os.urandom(200_000), redact=False)
        _tear_next_archive_write(monkeypatch)
        with pytest.raises(BundleError, match="cannot write logs/.* into bundle"):
            w.add_bytes(layout.log_path("b"), os.urandom(200_000), redact=False)
        # The other collectors go on adding members (capture/steps.py); each is refused.
        with pytest.raises(BundleError, match="damaged by an earlier write failure") as later:
            w.add_bytes(layout.log_path("c"), b"hello\n")
        assert name in str(later.value)
        w.finish(make_fields())
    message = str(caught.value)
    assert name in message
    assert "damaged by an earlier write failure" in message
    assert "No space left on device" in message
    assert "free space" in message.lower()
    assert _leftovers(tmp_path) == [], "no bundle, no .sha256 and no temp file may be left"


def test_finish_outside_a_with_block_removes_the_temp_file_of_a_torn_bundle(
    tmp_path: Path, name: str, make_fields: FieldsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = writer.BundleWriter(directory=tmp_path, name=name, durable=False)
    w.open()
    _tear_next_archive_write(monkeypatch)
    with pytest.raises(BundleError):
        w.add_bytes(layout.log_path("a"), os.urandom(100_000), redact=False)
    with pytest.raises(BundleError, match="damaged by an earlier write failure"):
        w.finish(make_fields())
    assert _leftovers(tmp_path) == []


def _source_failing_midway() -> Iterator[bytes]:
    yield b"first line\n" * 1000
    raise ENOSPC  # e.g. the collector's scratch file could not be read back


class _FullSpool(io.BytesIO):
    def write(self, data: Any) -> int:
        raise ENOSPC


@pytest.mark.parametrize("failure", ["source", "spool"])
def test_member_that_fails_while_spooling_is_left_out_and_the_bundle_still_verifies(
    tmp_path: Path, name: str, make_fields: FieldsFactory, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    with writer.BundleWriter(directory=tmp_path, name=name, durable=False) as w:
        w.add_bytes(layout.log_path("a"), os.urandom(200_000), redact=False)
        if failure == "source":
            bad: Any = _source_failing_midway()
        else:
            bad = b"payload\n" * 1000
            real_spool = writer.spool_file
            monkeypatch.setattr(writer, "spool_file", lambda directory: _FullSpool())
        with pytest.raises(BundleError, match="cannot spool"):
            w.add_stream(layout.log_path("b"), bad)
        if failure == "spool":
            monkeypatch.setattr(writer, "spool_file", real_spool)
        w.add_bytes(layout.log_path("c"), b"hello\n")
        bundle = w.finish(make_fields(collectors=()))
    with gzip.open(bundle.path, "rb") as fh:
        while fh.read(1 << 20):
            pass  # a torn gzip stream raises here
    result = verify.verify(bundle.path)
    assert result.ok, result.summary()
    assert set(bundle.manifest.files) >= {layout.log_path("a"), layout.log_path("c")}
    assert layout.log_path("b") not in bundle.manifest.files
