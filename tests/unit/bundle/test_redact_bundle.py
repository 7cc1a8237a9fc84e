"""Redacting a whole bundle again (debugcap.bundle.redact_bundle), on bytes.

Cases: an unredacted bundle comes out redacted and passes verify, with the capture's fields and
earlier redaction records kept and nothing counted twice when redacted again; a bundle that fails
its checks (tampered member, ``../`` names, links, not a bundle) is refused and nothing is written;
the output never overwrites anything.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from debugcap.bundle import layout, manifest, redact_bundle, verify, writer
from debugcap.bundle.redact_files import Action
from debugcap.errors import BundleError, ConfigError

SECRET = "hunter2-Very-Secret-9"
DATA = Path(__file__).parent / "data"


def _bundle(tmp_path: Path, name: str, make_fields, *, redact: bool) -> Path:  # type: ignore[no-untyped-def]
    fields = make_fields(
        capture=manifest.CaptureInfo("cap-1", "debug-full", {"cpu_seconds": 30, "args": f"--token {SECRET}"}),
        collectors=(manifest.CollectorRecord("logs", manifest.CollectorStatus.PARTIAL, 5,
                                             message=f"GET https://u:{SECRET}@x/ failed",
                                             files=(layout.log_path("app"),)),),
    )
    with writer.BundleWriter(directory=tmp_path, name=name, redact=redact, mtime=0) as w:
        w.add_bytes(layout.log_path("app"), f"ok\nAuthorization: Bearer {SECRET}\nDB_PASSWORD={SECRET}\n".encode())
        w.add_bytes(layout.PPROF_CPU, (DATA / "cpu-bearer-label.pb.gz").read_bytes())
        w.add_bytes(layout.TRACE, b"go 1.23 trace\x00\x00\x00" + bytes(range(32)))
        w.add_bytes(layout.ENV_ENVIRONMENT, f"PATH=/bin\nAPP_TOKEN={SECRET}\n".encode())
        w.add_bytes(layout.METRICS_EXPVAR, json.dumps({"cmdline": ["app", "--password", SECRET]}).encode())
        return w.finish(fields).path


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def name(when) -> str:  # type: ignore[no-untyped-def]
    return layout.bundle_name("prod", "api-1", when)


def test_an_unredacted_bundle_comes_out_redacted_and_verified(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    src = _bundle(tmp_path, name, make_fields, redact=False)
    out = tmp_path / "prod_api-1_20261123T160000Z.redacted.tar.gz"
    result = redact_bundle.redact_bundle(src, out)
    checked = verify.verify(out)
    assert checked.ok, checked.summary()
    members = _members(out)
    assert all(SECRET.encode() not in data for path, data in members.items() if path not in layout.TRACES)
    assert gzip.decompress(members[layout.PPROF_CPU]) != gzip.decompress((DATA / "cpu-bearer-label.pb.gz").read_bytes())
    assert members[layout.TRACE] == _members(src)[layout.TRACE]
    got = {f.path: f for f in result.files}
    assert got[layout.log_path("app")].rules == {"bearer-token": 1, "env-secret": 1}
    assert got[layout.TRACE].action is Action.KEPT
    assert got[layout.MANIFEST].rules == {"cli-flag-secret": 1, "url-credentials": 1}
    new = checked.manifest
    assert new is not None and new.capture.name == "cap-1" and new.target.pod == "api-1"
    assert new.capture.parameters["cpu_seconds"] == 30 and SECRET not in json.dumps(new.to_dict())
    assert new.redaction_counts[layout.log_path("app")] == {"bearer-token": 1, "env-secret": 1}
    assert SECRET not in result.to_json()
    assert _members(src)[layout.log_path("app")].count(SECRET.encode()) == 2  # the input is untouched


def test_a_redacted_bundle_redacted_again_counts_nothing_twice(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    src = _bundle(tmp_path, name, make_fields, redact=True)
    before = verify.verify(src).manifest
    once = tmp_path / "once.tar.gz"
    first = redact_bundle.redact_bundle(src, once)
    # A capture redacts its members, not the manifest's free text: only that is new.
    assert {f.path for f in first.files if f.rules} == {layout.MANIFEST}
    twice = tmp_path / "twice.tar.gz"
    second = redact_bundle.redact_bundle(once, twice)
    assert second.masked == 0, second.to_dict()
    checked = verify.verify(twice)
    assert checked.ok, checked.summary()
    assert checked.manifest is not None and before is not None
    assert checked.manifest.redaction_counts == before.redaction_counts
    assert checked.manifest.redactions == before.redactions
    assert {p: d for p, d in _members(twice).items() if p not in layout.RESERVED} == \
        {p: d for p, d in _members(src).items() if p not in layout.RESERVED}


def _tamper(bundle: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the archive with ``edit(members)`` applied to its (TarInfo, bytes) list."""
    with tarfile.open(bundle, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]  # type: ignore[union-attr]
    members = edit(members)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    bundle.write_bytes(buf.getvalue())
    bundle.with_name(bundle.name + ".sha256").unlink()


def _changed_log(members):  # type: ignore[no-untyped-def]
    return [(m, d.replace(b"ok", b"KO") if m.name.endswith(".log") else d) for m, d in members]


def _dotdot(members):  # type: ignore[no-untyped-def]
    extra = tarfile.TarInfo(f"{members[0][0].name.split('/')[0]}/../../escape.txt")
    return [*members, (extra, b"x")]


def _symlink(members):  # type: ignore[no-untyped-def]
    link = tarfile.TarInfo(f"{members[0][0].name.split('/')[0]}/logs/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return [*members, (link, b"")]


@pytest.mark.parametrize("edit", [_changed_log, _dotdot, _symlink], ids=["tampered", "dotdot", "symlink"])
def test_a_bundle_that_fails_its_checks_is_refused(tmp_path: Path, name: str, make_fields, edit) -> None:  # type: ignore[no-untyped-def]
    src = _bundle(tmp_path, name, make_fields, redact=False)
    _tamper(src, edit)
    out = tmp_path / "out.tar.gz"
    with pytest.raises(redact_bundle.InputFailsChecks) as caught:
        redact_bundle.redact_bundle(src, out)
    assert "FAILED" in caught.value.summary
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert not (tmp_path.parent / "escape.txt").exists()


def test_an_archive_that_is_no_bundle_is_refused_with_what_to_do(tmp_path: Path) -> None:
    src = tmp_path / "logs.tar.gz"
    with tarfile.open(src, "w:gz") as tar:
        info = tarfile.TarInfo("logs/a.log")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ConfigError, match="not a debugcap bundle.*redact the directory"):
        redact_bundle.redact_bundle(src, tmp_path / "out.tar.gz")


def test_a_bundle_changed_between_verify_and_copy_is_refused(tmp_path: Path, name: str, make_fields,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    src = _bundle(tmp_path, name, make_fields, redact=False)
    real = verify.verify

    def verified_then_changed(path: Path) -> verify.VerifyResult:
        result = real(path)
        _tamper(src, _changed_log)
        return result

    monkeypatch.setattr(redact_bundle.verify, "verify", verified_then_changed)
    with pytest.raises(BundleError, match="changed after the bundle was verified"):
        redact_bundle.redact_bundle(src, tmp_path / "out.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_the_output_is_never_written_over(tmp_path: Path, name: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    src = _bundle(tmp_path, name, make_fields, redact=False)
    out = tmp_path / "out.tar.gz"
    out.write_bytes(b"precious")
    with pytest.raises(BundleError, match="already exists"):
        redact_bundle.redact_bundle(src, out)
    assert out.read_bytes() == b"precious"
    assert hashlib.sha256(src.read_bytes()).hexdigest() == verify.verify(src).sha256
