"""verify() on hostile bundles: memory stays bounded whatever a small archive inflates to.

Cases: a manifest.json (or SHA256SUMS) of 40 MiB of spaces, a few kB packed, is unreadable "too
large" and never held in memory (tracemalloc's peak, not time, is measured); the same under the
cap reads as before; the reader refuses such a bundle naming the manifest, not as "no manifest".
"""

from __future__ import annotations

import tarfile
import tracemalloc
from pathlib import Path

import pytest

from debugcap.analysis.bundle_reading import BundleReader, CheckFailedError
from debugcap.bundle import layout, verify, writer

SPACES = 40 << 20


@pytest.fixture
def bundle(tmp_path: Path, make_fields, when) -> writer.WrittenBundle:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path / "out", name=layout.bundle_name("prod", "api-1", when),
                             durable=False) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        return w.finish(make_fields())


def _pad(bundle: writer.WrittenBundle, member: str, pad: int) -> None:
    """Repack the bundle with ``pad`` spaces after ``member`` (still valid JSON and SHA256SUMS), streamed."""
    stem = layout.stem(bundle.path.name)
    padded = bundle.path.with_suffix(".tmp")
    with tarfile.open(bundle.path) as src, tarfile.open(padded, "w:gz", compresslevel=1) as dst:
        for info in src:
            fh = src.extractfile(info)
            data = fh.read() if fh else b""
            if info.name == f"{stem}/{member}":
                info.size = len(data) + pad
                dst.addfile(info, _Padded(data, pad))
            else:
                dst.addfile(info, fh and _Padded(data, 0))
    padded.replace(bundle.path)
    bundle.checksum_path.unlink()


class _Padded:
    """``data`` then ``pad`` spaces, read in pieces: the test itself never holds the padding."""

    def __init__(self, data: bytes, pad: int) -> None:
        self._data, self._left = data, pad

    def read(self, size: int) -> bytes:
        out, self._data = self._data[:size], self._data[size:]
        n = min(size - len(out), self._left)
        self._left -= n
        return out + b" " * n


def _peak(fn) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("member", [layout.MANIFEST, layout.SHA256SUMS])
def test_a_huge_manifest_or_checksum_list_is_unreadable_and_not_kept(bundle: writer.WrittenBundle,
                                                                     member: str) -> None:
    _pad(bundle, member, SPACES)
    assert bundle.path.stat().st_size < 1 << 20
    results: list[verify.VerifyResult] = []
    peak = _peak(lambda: results.append(verify.verify(bundle.path)))
    assert peak < 8 << 20  # a few 1 MiB buffers; keeping the member took over 40 MiB
    what = "a manifest" if member == layout.MANIFEST else "a checksum list"
    assert [(p.path, p.kind, p.detail) for p in results[0].problems if p.path == member] == [
        (member, verify.ProblemKind.UNREADABLE, f"too large (40 MiB; {what} is at most 16 MiB)")]
    with pytest.raises(CheckFailedError, match=f"first at {member}: unreadable: too large"):
        BundleReader(bundle.path)


def test_a_padded_manifest_under_the_cap_reads_as_before(bundle: writer.WrittenBundle,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _pad(bundle, layout.MANIFEST, 1000)
    assert verify.verify(bundle.path).ok
    monkeypatch.setattr(verify, "RESERVED_MAX", 1000)
    assert not verify.verify(bundle.path).ok
