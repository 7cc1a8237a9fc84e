"""Redacting files and directories for sharing (debugcap.bundle.redact_files), on bytes.

Cases: what a file is read from its bytes, never its name; text, gzip text, pprof and JSON come out
redacted and still readable; traces are kept, binaries and archives left out (or copied with
keep_binary); links, FIFOs and escapes are never followed; nothing existing is overwritten and a
failed run leaves nothing behind; a large file streams in bounded memory; the report never holds a
masked value.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from debugcap.bundle import redact_files as rf
from debugcap.errors import ConfigError

SECRET = "hunter2-Very-Secret-9"
DATA = Path(__file__).parent / "data"


def _one(data: bytes, name: str = "f.txt", *, keep_binary: bool = False) -> tuple[bytes, rf.FileResult]:
    out = io.BytesIO()
    result = rf.redact_stream_to(io.BytesIO(data), out, name, keep_binary=keep_binary, spool_dir=Path("/tmp"))
    return out.getvalue(), result


@pytest.mark.parametrize(("head", "content"), [
    (b"level=info msg=ok\n", rf.Content.TEXT),
    (b"", rf.Content.TEXT),
    (b"caf\xc3\xa9 \x1b[1mbold\x1b[0m\tx\r\n", rf.Content.TEXT),
    (b"go 1.23 trace\x00\x00\x00\x01\x02", rf.Content.TRACE),
    (b"\x7fELF\x02\x01\x01\x00\x00", rf.Content.BINARY),
    (b"abc\x01\x02\x03\x04\x05", rf.Content.BINARY),
    (gzip.compress(b"a log line\n"), rf.Content.GZIP_TEXT),
    ((DATA / "cpu-bearer-label.pb.gz").read_bytes(), rf.Content.PROFILE),
])
def test_sniff_reads_the_bytes(head: bytes, content: rf.Content) -> None:
    assert rf.sniff(head) is content


def test_sniff_finds_archives_plain_and_compressed() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("x/a.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    assert rf.sniff(buf.getvalue()) is rf.Content.ARCHIVE
    assert rf.sniff(gzip.compress(buf.getvalue())) is rf.Content.ARCHIVE


def test_text_is_redacted_and_the_report_counts_without_values() -> None:
    out, result = _one(f"ok\nAuthorization: Bearer {SECRET}\nDB_PASSWORD={SECRET}\npassword={SECRET}\n".encode())
    assert SECRET.encode() not in out and out.startswith(b"ok\nAuthorization: Bearer ***REDACTED***\n")
    assert result.action is rf.Action.REDACTED
    assert dict(result.rules) == {"bearer-token": 1, "env-secret": 2}
    doc = rf.RedactionResult(Path("in"), "out", "file", (result,)).to_json()
    assert SECRET not in doc and json.loads(doc)["totals"]["masked"] == 3


def test_gzip_text_is_redacted_inside_and_compressed_again() -> None:
    out, result = _one(gzip.compress(f"x\ntoken={SECRET}\n".encode()), "app.log.gz")
    assert gzip.decompress(out) == b"x\ntoken=***REDACTED***\n"
    assert dict(result.rules) == {"env-secret": 1}


def test_a_corrupt_gzip_is_left_out() -> None:
    data = gzip.compress(b"line\n" * 1000)
    out, result = _one(data[: len(data) // 2], "app.log.gz")
    assert result.action is rf.Action.SKIPPED and "cannot be decompressed" in result.note


def test_a_pprof_profile_is_masked_same_length_and_stays_gzip() -> None:
    raw = (DATA / "cpu-bearer-label.pb.gz").read_bytes()
    out, result = _one(raw, "cpu.pb.gz")
    inner, masked = gzip.decompress(raw), gzip.decompress(out)
    assert len(masked) == len(inner) and masked != inner
    assert dict(result.rules) == {"bearer-token": 1}


def test_a_profile_with_nothing_to_mask_is_copied_byte_for_byte() -> None:
    # The smallest pprof Profile: one string table entry (field 6), the empty string.
    raw = gzip.compress(b"\x32\x00\x32\x04\x01\x02\x03\x04", mtime=0)
    out, result = _one(raw, "heap.pb.gz")
    assert out == raw and result.action is rf.Action.REDACTED and not result.rules


def test_gzip_binary_that_is_no_profile_is_binary() -> None:
    out, result = _one(gzip.compress(bytes(range(256)) * 10), "blob.gz")
    assert result.action is rf.Action.SKIPPED and out == b""
    out, result = _one(gzip.compress(bytes(range(256)) * 10), "blob.gz", keep_binary=True)
    assert result.action is rf.Action.KEPT and gzip.decompress(out) == bytes(range(256)) * 10


def test_binary_is_left_out_unless_kept_and_traces_are_kept() -> None:
    blob = b"\x7fELF\x00\x01" + SECRET.encode()
    out, result = _one(blob, "app")
    assert out == b"" and result.action is rf.Action.SKIPPED and "--keep-binary" in result.note
    out, result = _one(blob, "app", keep_binary=True)
    assert out == blob and result.action is rf.Action.KEPT
    trace = b"go 1.23 trace\x00\x00\x00" + bytes(range(64))
    out, result = _one(trace, "trace.out")
    assert out == trace and result.action is rf.Action.KEPT


@pytest.mark.parametrize("doc", [
    {"password": 'ab"cd', "n": 1},
    {"auth": {"user": "u", "password": SECRET}, "tokens": ["a", "b"], "secret": {}, "key": None},
    {"token_ttl": 30, "apiKey": SECRET, "env": [{"name": "API_TOKEN", "value": SECRET}]},
    {"url": f"https://user:{SECRET}@db/x", "h": f"Bearer {SECRET}"},
])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_stays_valid_json(doc: dict[str, object], indent: int | None) -> None:
    out, result = _one(json.dumps(doc, indent=indent).encode(), "expvar.json")
    assert SECRET.encode() not in out
    json.loads(out)
    assert result.note == ""


def test_json_broken_by_a_mask_is_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rf.redactor, "redact_stream", lambda chunks, file, report, *_: [b'{"a": ***}'])
    _, result = _one(b'{"a": 1}', "x.json")
    assert "no longer valid JSON" in result.note


def test_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    line = b"ts=1 level=info msg=" + b"x" * 200 + b"\n"
    src = tmp_path / "big.log"
    with src.open("wb") as fh:
        for _ in range(40):
            fh.write(line * 4000 + f"token={SECRET}\n".encode())  # ~32 MiB in all
    tracemalloc.start()
    try:
        result = rf.redact_file(src, tmp_path / "big.redacted.log")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dict(result.files[0].rules) == {"env-secret": 40}
    assert peak < 8 << 20, f"peak {peak >> 20} MiB for a 32 MiB file"
    assert SECRET.encode() not in (tmp_path / "big.redacted.log").read_bytes()


# --- one file on disk ------------------------------------------------------------------------


def test_redact_file_writes_a_new_file_and_never_over_one(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_bytes(f"token={SECRET}\n".encode())
    out = rf.default_output(src)
    assert out.name == "app.redacted.log"
    result = rf.redact_file(src, out)
    assert result.output == str(out) and out.read_bytes() == b"token=***REDACTED***\n"
    assert src.read_bytes() == f"token={SECRET}\n".encode()
    with pytest.raises(ConfigError, match="already exists"):
        rf.check_output(src, out)
    with pytest.raises(ConfigError, match="the input itself"):
        rf.check_output(src, src)
    hard = tmp_path / "hard.log"
    os.link(src, hard)
    with pytest.raises(ConfigError, match="the input itself"):
        rf.check_output(src, hard)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "app.redacted.log", "hard.log"]


def test_a_skipped_file_leaves_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.write_bytes(b"\x7fELF\x00\x00")
    result = rf.redact_file(src, tmp_path / "app.redacted")
    assert result.output is None and result.files[0].action is rf.Action.SKIPPED
    assert [p.name for p in tmp_path.iterdir()] == ["app"]


def test_redact_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ConfigError, match="not a regular file"):
        rf.redact_file(tmp_path / "fifo", tmp_path / "out")


@pytest.mark.parametrize(("name", "expected"), [
    ("app.log", "app.redacted.log"),
    ("notes", "notes.redacted"),
    (".env", ".env.redacted"),
    ("cpu.pb.gz", "cpu.redacted.pb.gz"),
    ("app.log.gz", "app.redacted.log.gz"),
])
def test_default_output_names(tmp_path: Path, name: str, expected: str) -> None:
    (tmp_path / name).write_text("x")
    assert rf.default_output(tmp_path / name) == tmp_path.resolve() / expected


def test_default_output_of_bundles_and_directories(tmp_path: Path) -> None:
    assert rf.default_output(tmp_path / "prod_a_20261123T160000Z.tar.gz", bundle=True).name == \
        "prod_a_20261123T160000Z.redacted.tar.gz"
    assert rf.default_output(tmp_path / "x.tgz", bundle=True).name == "x.redacted.tar.gz"
    (tmp_path / "ev").mkdir()
    assert rf.default_output(tmp_path / "ev").name == "ev.redacted"


# --- directories -----------------------------------------------------------------------------


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.log").write_bytes(f"password={SECRET}\n".encode())
    (root / "sub" / "deeper" / "b.json").write_bytes(json.dumps({"token": SECRET}).encode())
    (root / "sub" / "app.bin").write_bytes(b"\x00\x01" + SECRET.encode())
    (root / "sub" / "cpu.pb.gz").write_bytes((DATA / "cpu-bearer-label.pb.gz").read_bytes())
    outside = root.parent / "outside.txt"
    outside.write_bytes(f"password={SECRET}\n".encode())
    (root / "link.txt").symlink_to(outside)
    (root / "dirlink").symlink_to(root.parent)
    (root / "escape").symlink_to("../outside.txt")
    os.mkfifo(root / "fifo")


def test_a_directory_is_redacted_file_by_file_and_links_are_not_followed(tmp_path: Path) -> None:
    src = tmp_path / "evidence"
    src.mkdir()
    _tree(src)
    out = tmp_path / "share"
    result = rf.redact_directory(src, out)
    got = {f.path: f for f in result.files}
    assert sorted(got) == ["a.log", "dirlink", "escape", "fifo", "link.txt", "sub/app.bin", "sub/cpu.pb.gz",
                           "sub/deeper/b.json"]
    for skipped in ("dirlink", "escape", "link.txt"):
        assert got[skipped].action is rf.Action.SKIPPED and "symbolic link" in got[skipped].note
    assert got["fifo"].action is rf.Action.SKIPPED and "FIFO" in got["fifo"].note
    assert got["sub/app.bin"].action is rf.Action.SKIPPED
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.log", "sub/cpu.pb.gz", "sub/deeper/b.json"]
    for path in out.rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()
            assert path.stat().st_mode & 0o077 == 0
    assert json.loads((out / "sub/deeper/b.json").read_bytes()) == {"token": "***REDACTED***"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    assert SECRET not in json.dumps(result.to_dict())


def test_keep_binary_copies_binaries_in_a_directory(tmp_path: Path) -> None:
    src = tmp_path / "ev"
    src.mkdir()
    (src / "app.bin").write_bytes(b"\x00\x01\x02")
    result = rf.redact_directory(src, tmp_path / "out", keep_binary=True)
    assert result.files[0].action is rf.Action.KEPT
    assert (tmp_path / "out" / "app.bin").read_bytes() == b"\x00\x01\x02"


def test_a_directory_is_never_redacted_into_itself_or_over_something(tmp_path: Path) -> None:
    src = tmp_path / "ev"
    src.mkdir()
    (src / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match="inside"):
        rf.redact_directory(src, src / "out")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        rf.redact_directory(src, tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev", "taken"]


def test_a_failed_directory_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "ev"
    src.mkdir()
    (src / "a.txt").write_text("x")

    def boom(*args: object, **kwargs: object) -> rf.FileResult:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rf, "redact_stream_to", boom)
    with pytest.raises(OSError):
        rf.redact_directory(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]


def test_an_unreadable_file_is_named_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "ev"
    src.mkdir()
    (src / "secret.txt").write_text("x")
    (src / "secret.txt").chmod(0)
    real_open = os.open

    def refused(path: object, flags: int, *args: int, **kwargs: object) -> int:
        # What a mode-0 file answers anyone but root: CI runs as root, which the mode does not stop.
        if str(path).endswith("secret.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rf.os, "open", refused)
    result = rf.redact_directory(src, tmp_path / "out")
    assert result.files[0].action is rf.Action.SKIPPED and "cannot be read" in result.files[0].note
