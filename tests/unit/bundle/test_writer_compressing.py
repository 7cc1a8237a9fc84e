"""The bundle writer's gzip stream (issue 16): members compressed apart while they are redacted,
joined into one standard gzip stream, by ISA-L when installed and by zlib otherwise.

What is checked: the tar inside is byte for byte what tarfile itself writes for the same members
(headers, blocks, records), with either deflate; the stream is one gzip member that gzip and
tarfile read; CRC-32s combine as zlib's; an error while spooling stops the deflate thread and is
the writer's error. How fast is benchmarks/bench_bundle.py's business, not a test's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from debugcap.bundle import compressing, layout, writer
from debugcap.errors import BundleError

MEMBERS = {
    layout.PROC_PS: b"root 1 /app --serve\n" * 3,
    layout.TRACE: random.Random(16).randbytes(700_001),  # several chunks, not compressible
    layout.NET_RESOLV_CONF: b"",
    "logs/app.log": b"level=info msg=ok password=hunter2\n" * 40_000,  # redacted, 1.4 MB
}


def _write(directory: Path, name: str, level: int = 6) -> Path:
    """The bundle's archive with a fixed manifest (the tar can then be compared with tarfile's)."""
    w = writer.BundleWriter(directory=directory, name=name, mtime=0, compresslevel=level, durable=False)
    w.open()
    for path, data in MEMBERS.items():
        w.add_stream(path, io.BytesIO(data))
    w._add_raw(layout.SHA256SUMS, b"sums\n", record=False)
    w._add_raw(layout.MANIFEST, b"{}\n", record=False)
    assert w._stream is not None and w._raw is not None and w._tmp_path is not None
    w._close_archive(w._stream)
    w._raw.close()
    return w._tmp_path


def _tarfile_bytes(name: str, stored: dict[str, bytes]) -> bytes:
    """What tarfile writes for the same members (BundleWriter's header fields)."""
    out = io.BytesIO()
    with tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in stored.items():
            info = tarfile.TarInfo(layout.member_name(layout.stem(name), path))
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("isal", [True, False], ids=["isal", "zlib"])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_the_tar_inside_is_tarfiles_own_with_either_deflate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isal: bool, level: int, when  # type: ignore[no-untyped-def]
) -> None:
    if not isal:
        monkeypatch.setattr(compressing, "_isal", None)
    assert compressing.engine(level) == ("isal" if isal and level else "zlib")
    name = layout.bundle_name("prod", "api-1", when)
    path = _write(tmp_path, name, level)
    raw = path.read_bytes()
    with tarfile.open(path) as tar:  # tarfile's own gzip reading: one stream, CRC checked
        stored = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert stored["logs/app.log"].count(b"***REDACTED***") == 40_000
    assert gzip.decompress(raw) == _tarfile_bytes(name, stored)
    # One gzip member, nothing after it: what verify() demands.
    z = zlib.decompressobj(wbits=31)
    z.decompress(raw)
    assert z.eof and not z.unused_data
    subprocess.run(["gzip", "-t"], input=raw, check=True)
    if level == 0:
        assert MEMBERS[layout.PROC_PS] in raw  # stored: the members' bytes can be read in the file


def test_a_finished_bundle_is_the_same_tar_with_isal_and_with_zlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_fields, when  # type: ignore[no-untyped-def]
) -> None:
    tars = []
    for isal in (True, False):
        if not isal:
            monkeypatch.setattr(compressing, "_isal", None)
        with writer.BundleWriter(directory=tmp_path / str(isal), name=layout.bundle_name("prod", "api-1", when),
                                 mtime=0, durable=False) as w:
            for path, data in MEMBERS.items():
                w.add_bytes(path, data)
            bundle = w.finish(make_fields())
        tars.append(gzip.decompress(bundle.path.read_bytes()))
    assert tars[0] == tars[1]


def test_crc32_combine_is_zlibs() -> None:
    rng = random.Random(5)
    for size_a, size_b in [(0, 0), (1, 0), (0, 7), (3, 5), (1000, 1), (70_000, 123_457)]:
        a, b = rng.randbytes(size_a), rng.randbytes(size_b)
        expected = zlib.crc32(a + b)
        assert compressing._crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == expected
        assert compressing.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == expected


class _FailingSpool(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise OSError(28, "No space left on device")


def test_a_spool_error_in_the_deflate_thread_is_the_writers_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(writer, "spool_file", lambda directory: _FailingSpool())
    w = writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-1", when), durable=False)
    w.open()
    # Many chunks, the failure at the first or the last write: the producer never waits forever.
    for data in ([b"x" * 1000 + b"\n"] * 5000, [random.Random(1).randbytes(1 << 20)] * 12):
        with pytest.raises(BundleError, match="No space left on device"):
            w.add_stream("logs/app.log", data)
    w.abort()
    assert not list(tmp_path.iterdir())


def _count_deflate_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    real_start = compressing.threading.Thread.start

    def start(self) -> None:  # type: ignore[no-untyped-def]
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(compressing.threading.Thread, "start", start)
    return started


def test_small_members_are_deflated_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_fields, when  # type: ignore[no-untyped-def]
) -> None:
    # Issue 17: a thread per member cost 5-8 ms of operator CPU per pod; most members are KiBs.
    started = _count_deflate_threads(monkeypatch)
    with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-1", when),
                             mtime=0, durable=False) as w:
        w.add_bytes(layout.PROC_PS, MEMBERS[layout.PROC_PS])
        w.add_bytes(layout.NET_RESOLV_CONF, b"")
        w.add_bytes(layout.TRACE, MEMBERS[layout.TRACE])  # 700 KB: under one batch
        assert started == []
        w.add_bytes("logs/app.log", MEMBERS["logs/app.log"])  # 1.4 MB: a full batch, then a thread
        assert started == ["bundle-deflate"]
        bundle = w.finish(make_fields())
    with tarfile.open(bundle.path) as tar:
        stored = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert stored[layout.TRACE] == MEMBERS[layout.TRACE]
    assert stored[layout.PROC_PS] == MEMBERS[layout.PROC_PS]


@pytest.mark.parametrize("size", [0, 10, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 5])
def test_a_member_packs_to_the_same_bytes_inline_and_in_its_thread(size: int) -> None:
    data = random.Random(size).randbytes(size // 2) + b"a" * (size - size // 2)
    spool = io.BytesIO()
    packer = compressing.MemberPacker(spool, 6)
    for start in range(0, size, 64 << 10):
        packer.write(data[start:start + (64 << 10)])
    packer.close()
    assert packer.threaded == (size >= 1 << 20)
    # What the thread always did: one compress call per full batch, the rest at close.
    one = compressing.compressor(6)
    expected = b"".join(one.compress(data[i:i + (1 << 20)]) for i in range(0, size, 1 << 20))
    assert spool.getvalue() == expected + compressing.end_piece(one)
    assert (packer.size, packer.crc) == (size, zlib.crc32(data))
    assert packer.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_thread_that_cannot_start_leaves_its_own_error_not_a_join_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot(self) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(compressing.threading.Thread, "start", cannot)
    packer = compressing.MemberPacker(io.BytesIO(), 6)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        packer.write(b"x" * (1 << 20))
    packer.stop()  # the writer's cleanup: nothing to join, nothing raised


def test_an_inline_close_that_failed_fails_again() -> None:
    class Full(io.BytesIO):
        def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
            raise OSError(28, "No space left on device")

    packer = compressing.MemberPacker(Full(), 6)
    packer.write(b"small")
    for _ in range(2):  # as the threaded path: every close says it
        with pytest.raises(OSError, match="No space left"):
            packer.close()
