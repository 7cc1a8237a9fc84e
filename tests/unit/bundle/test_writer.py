"""BundleWriter: what lands in the archive, what is checked by real tools, and what is cleaned up.

Cases: SHA256SUMS and <bundle>.sha256 accepted by the real `sha256sum -c`; member order (version
first, manifest last); sources (bytes, file objects, iterables); redaction on by default, off on
request; pprof label masking keeps a valid same-length profile; failures remove only the temp
file; existing bundles are never overwritten; streaming 200 MB keeps peak RSS flat.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from debugcap.bundle import layout, writer
from debugcap.errors import BundleError

SECRET = "hunter2-Very-Secret-9"


@pytest.fixture
def name(when) -> str:  # type: ignore[no-untyped-def]
    return layout.bundle_name("prod", "api-1", when)


def _write(tmp_path: Path, name: str, make_fields, **kwargs) -> writer.WrittenBundle:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path, name=name, **kwargs) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app --serve\n")
        w.add_stream(layout.log_path("app"), io.BytesIO(b"line 1\nline 2\n"))
        w.add_stream(layout.PPROF_GOROUTINE_DEBUG2, iter([b"goroutine 1 [running]:\n", b"main.main()\n"]))
        return w.finish(make_fields())


def _members(bundle: Path) -> list[str]:
    with tarfile.open(bundle, "r:gz") as tar:
        return tar.getnames()


def test_sha256sums_is_accepted_by_sha256sum_after_unpacking(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    bundle = _write(tmp_path, name, make_fields)
    subprocess.run(["tar", "xzf", bundle.path.name], cwd=tmp_path, check=True)
    result = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"],
        cwd=tmp_path / layout.stem(name),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{layout.PROC_PS}: OK" in result.stdout
    assert f"{layout.VERSION}: OK" in result.stdout


def test_bundle_checksum_file_is_accepted_by_sha256sum(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    bundle = _write(tmp_path, name, make_fields)
    result = subprocess.run(
        ["sha256sum", "-c", "--strict", bundle.checksum_path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert bundle.checksum_path.read_text() == f"{bundle.sha256}  {name}\n"
    assert bundle.size == bundle.path.stat().st_size


def test_version_is_first_and_manifest_last_all_under_the_stem(
    tmp_path: Path, name: str, make_fields
) -> None:  # type: ignore[no-untyped-def]
    stem = layout.stem(name)
    members = _members(_write(tmp_path, name, make_fields).path)
    assert members[0] == f"{stem}/version"
    assert members[-2:] == [f"{stem}/SHA256SUMS", f"{stem}/manifest.json"]
    assert all(m.startswith(stem + "/") for m in members)


def test_manifest_lists_every_member_with_its_hash(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    bundle = _write(tmp_path, name, make_fields)
    with tarfile.open(bundle.path, "r:gz") as tar:
        data = json.loads(tar.extractfile(f"{layout.stem(name)}/manifest.json").read())  # type: ignore[union-attr]
    assert set(data["files"]) == {
        layout.VERSION,
        layout.PROC_PS,
        "logs/app.log",
        layout.PPROF_GOROUTINE_DEBUG2,
    }
    assert data["files"]["logs/app.log"]["size"] == len(b"line 1\nline 2\n")
    assert bundle.manifest.files == {p: e for p, e in bundle.manifest.files.items()}


def test_only_the_partial_file_goes_when_a_capture_fails(tmp_path: Path, make_fields, when) -> None:  # type: ignore[no-untyped-def]
    first = _write(tmp_path, layout.bundle_name("prod", "api-1", when), make_fields)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="collector exploded"):
        with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-2", when)) as w:
            w.add_bytes(layout.PROC_PS, b"x\n")
            raise RuntimeError("collector exploded")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert first.path.exists() and first.checksum_path.exists()


def test_closing_without_finish_keeps_nothing_and_says_so(tmp_path: Path, name: str) -> None:
    with pytest.raises(BundleError, match="without finish"):
        with writer.BundleWriter(directory=tmp_path, name=name) as w:
            w.add_bytes(layout.PROC_PS, b"x\n")
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_never_overwritten(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    first = _write(tmp_path, name, make_fields)
    with pytest.raises(BundleError, match="already exists.*never overwrites"):
        _write(tmp_path, name, make_fields)
    assert first.checksum_path.read_text().startswith(first.sha256)


@pytest.mark.parametrize("path", [layout.MANIFEST, layout.SHA256SUMS, layout.VERSION], ids=str)
def test_reserved_paths_are_refused(tmp_path: Path, name: str, path: str) -> None:
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        with pytest.raises(BundleError, match="reserved"):
            w.add_bytes(path, b"{}")
        w.abort()
        w._finished = True  # type: ignore[assignment]  # suppress the "without finish" error


def test_duplicate_path_is_refused(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_bytes(layout.PROC_PS, b"a\n")
        with pytest.raises(BundleError, match="already has 'proc/ps.txt'"):
            w.add_bytes(layout.PROC_PS, b"b\n")
        w.finish(make_fields())


def test_text_is_redacted_by_default_and_recorded(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_bytes(layout.PROC_PS, f"root 1 /app --password {SECRET}\n".encode())
        w.add_bytes(layout.ENV_ENVIRONMENT, f"PATH=/bin\nDB_PASSWORD={SECRET}\nAPP_TOKEN={SECRET}\n".encode())
        bundle = w.finish(make_fields())
    raw = gzip.decompress(bundle.path.read_bytes())
    assert SECRET.encode() not in raw
    assert b"PATH=/bin" in raw and b"APP_TOKEN=***REDACTED***" in raw and b"DB_PASSWORD" not in raw
    redactors = {(r.file, r.redactor) for r in bundle.manifest.redactions}
    assert (layout.PROC_PS, "cli-flag-secret") in redactors
    assert (layout.ENV_ENVIRONMENT, "env-secret") in redactors
    assert SECRET not in bundle.manifest.to_json()


def test_no_redact_keeps_text_verbatim(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path, name=name, redact=False) as w:
        w.add_bytes(layout.PROC_PS, f"--password {SECRET}\n".encode())
        bundle = w.finish(make_fields())
    assert SECRET.encode() in gzip.decompress(bundle.path.read_bytes())
    assert bundle.manifest.redactions == ()


def _profile(label: bytes) -> bytes:
    # A protobuf string-table entry: field 6, wire type 2, then the length-prefixed bytes.
    return gzip.compress(b"\x32" + bytes([len(label)]) + label + b"\x32\x04main", mtime=0)


def _stored(bundle: writer.WrittenBundle, path: str) -> bytes:
    with tarfile.open(bundle.path, "r:gz") as tar:
        return tar.extractfile(f"{layout.stem(bundle.path.name)}/{path}").read()  # type: ignore[union-attr]


def test_pprof_label_secret_is_masked_keeping_a_valid_same_length_profile(
    tmp_path: Path,
    name: str,
    make_fields,  # type: ignore[no-untyped-def]
) -> None:
    label = b"auth=Bearer abcdefghijklmnopqrstuvwx"
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_bytes(layout.PPROF_HEAP, _profile(label))
        bundle = w.finish(make_fields())
    stored = gzip.decompress(_stored(bundle, layout.PPROF_HEAP))
    assert b"abcdefghijklmnopqrstuvwx" not in stored
    assert len(stored) == len(gzip.decompress(_profile(label)))
    assert stored[1] == len(label) and stored.endswith(b"\x32\x04main")
    assert [(r.file, r.line, r.redactor) for r in bundle.manifest.redactions] == [
        (layout.PPROF_HEAP, 0, "bearer-token")
    ]


def test_pprof_without_secrets_is_stored_byte_for_byte(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    original = _profile(b"handler=/api/v1/orders")
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_stream(layout.PPROF_CPU, io.BytesIO(original))
        bundle = w.finish(make_fields())
    assert _stored(bundle, layout.PPROF_CPU) == original


def test_only_a_profile_with_something_to_mask_is_gzipped_again(
    tmp_path: Path, name: str, make_fields, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # Issue 17: re-gzipping every profile to throw the result away cost 3-5 ms of CPU per pod.
    gzipped: list[str] = []
    real = writer.gzip.GzipFile

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        gzipped.append(kwargs.get("mode", ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(writer.gzip, "GzipFile", counting)
    clean = _profile(b"handler=/api/v1/orders")
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_bytes(layout.PPROF_CPU, clean)
        w.add_bytes(layout.PPROF_HEAP, _profile(b"auth=Bearer abcdefghijklmnopqrstuvwx"))
        bundle = w.finish(make_fields())
    assert gzipped == ["wb"]  # the heap profile's only
    assert _stored(bundle, layout.PPROF_CPU) == clean
    assert b"abcdefghijklmnopqrstuvwx" not in gzip.decompress(_stored(bundle, layout.PPROF_HEAP))
    assert [(r.file, r.redactor) for r in bundle.manifest.redactions] == [(layout.PPROF_HEAP, "bearer-token")]


def test_error_body_at_a_pprof_path_is_redacted_as_text(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        w.add_bytes(layout.PPROF_CPU, f"404 page not found; token={SECRET}\n".encode())
        bundle = w.finish(make_fields())
    assert _stored(bundle, layout.PPROF_CPU) == b"404 page not found; token=***REDACTED***\n"


def test_streaming_200_mb_keeps_peak_rss_flat(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import random, resource, sys
        from datetime import UTC, datetime
        from pathlib import Path
        from debugcap.bundle import layout, manifest, writer

        rng = random.Random(1)
        words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(500)]
        block = b"".join(
            b"ts=%d level=info msg=" % i + b" ".join(rng.choices(words, k=12)) + b"\\n" for i in range(12000)
        )[: 1024 * 1024]

        def evidence():
            for _ in range(200):
                yield block

        now = datetime.now(UTC)
        fields = manifest.ManifestFields(
            capture=manifest.CaptureInfo("c", "debug-full"),
            target=manifest.TargetInfo("prod", "api-1", "app"),
            started_at=now, finished_at=now,
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        name = layout.bundle_name("prod", "api-1", now)
        with writer.BundleWriter(directory=Path({str(tmp_path)!r}), name=name) as w:
            entry = w.add_stream(layout.log_path("app"), evidence())
            w.finish(fields)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after, entry.size)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    before_kib, after_kib, size = map(int, out.stdout.split())
    assert size == 200 * 1024 * 1024
    # ru_maxrss is in KiB on Linux. 200 MB went through; the peak may grow by a few MiB of buffers.
    assert (after_kib - before_kib) < 40 * 1024, f"peak RSS grew by {(after_kib - before_kib) // 1024} MiB"


REAL_PROFILE = (
    Path(__file__).with_name("data") / "cpu-bearer-label.pb.gz"
)  # Go 1.2x, pprof.Labels("auth", ...)


@pytest.mark.slow  # runs go tool pprof
def test_real_go_profile_label_is_masked_and_go_tool_pprof_still_reads_it(
    tmp_path: Path,
    name: str,
    make_fields,  # type: ignore[no-untyped-def]
) -> None:
    with writer.BundleWriter(directory=tmp_path, name=name) as w:
        with REAL_PROFILE.open("rb") as profile:
            w.add_stream(layout.PPROF_CPU, profile)
        bundle = w.finish(make_fields())
    stored = _stored(bundle, layout.PPROF_CPU)
    assert b"abcdefghijklmnopqrstuvwxyz012345" not in gzip.decompress(stored)
    assert len(gzip.decompress(stored)) == len(gzip.decompress(REAL_PROFILE.read_bytes()))
    assert shutil.which("go"), "go tool pprof is the oracle here; install the Go toolchain"
    (tmp_path / "cpu.pb.gz").write_bytes(stored)
    raw = subprocess.run(
        ["go", "tool", "pprof", "-raw", str(tmp_path / "cpu.pb.gz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert raw.returncode == 0, raw.stderr
    assert "auth:[Bearer ****" in raw.stdout and "user:[alice]" in raw.stdout
