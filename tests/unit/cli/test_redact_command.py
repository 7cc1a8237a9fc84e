"""``kubectl debugcap redact``: what a user types, what lands where, and the exit codes."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from debugcap.bundle import layout, manifest, verify, writer
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.options import ExitCode

SECRET = "hunter2-Very-Secret-9"
WHEN = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["redact", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def _bundle(directory: Path) -> Path:
    fields = manifest.ManifestFields(capture=manifest.CaptureInfo("cap-1", "debug-full"),
                                     target=manifest.TargetInfo("prod", "api-1", "app"),
                                     started_at=WHEN, finished_at=WHEN)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("prod", "api-1", WHEN),
                             redact=False, mtime=0) as w:
        w.add_bytes(layout.log_path("app"), f"token={SECRET}\n".encode())
        return w.finish(fields).path


def test_a_file_goes_beside_the_input_and_the_report_to_stderr(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"ok\npassword={SECRET}\n")
    code, out, err = _invoke(src)
    assert code == 0, err
    target = tmp_path / "app.redacted.log"
    assert target.read_text() == "ok\npassword=***REDACTED***\n"
    assert out.startswith(f"{target}: 1 file, 1 masked (env-secret 1)")
    report = json.loads(err)
    assert report["files"] == [{"path": "app.log", "action": "redacted", "rules": {"env-secret": 1}, "masked": 1}]
    assert SECRET not in out + err


def test_out_dash_writes_the_file_to_stdout_and_report_to_a_file(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"Authorization: Bearer {SECRET}\n")
    code, out, err = _invoke(src, "--out", "-", "--report", tmp_path / "r.json")
    assert (code, out, err) == (0, "Authorization: Bearer ***REDACTED***\n", "")
    assert json.loads((tmp_path / "r.json").read_text())["totals"]["rules"] == {"bearer-token": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "r.json"]


def test_a_bundle_becomes_a_bundle_that_verify_accepts(tmp_path: Path) -> None:
    src = _bundle(tmp_path)
    code, out, err = _invoke(src, "--report", tmp_path / "r.json")
    assert code == 0, err
    target = tmp_path / "prod_api-1_20261123T160000Z.redacted.tar.gz"
    assert f"check it with: kubectl debugcap verify {target}" in out
    assert verify.verify(target).ok
    verified = CliRunner().invoke(cli, ["verify", str(target)])
    assert verified.exit_code == 0, verified.output


def test_a_bundle_failing_its_checks_exits_like_verify(tmp_path: Path) -> None:
    src = _bundle(tmp_path)
    with tarfile.open(src, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]  # type: ignore[union-attr]
    with tarfile.open(src, "w:gz") as tar:
        for info, data in members:
            data = data.replace(b"token", b"TOKEN")  # a changed member: its sha256 no longer matches
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    code, out, err = _invoke(src)
    assert code == ExitCode.VERIFY_FAILED
    assert "fails its checks, so it is not redacted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name, src.name + ".sha256"]


def test_a_directory(tmp_path: Path) -> None:
    src = tmp_path / "ev"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.log").write_text(f"token={SECRET}\n")
    (src / "core").write_bytes(b"\x7fELF\x00")
    code, out, err = _invoke(src, "--out", tmp_path / "share")
    assert code == 0, err
    assert "2 files, 1 masked (env-secret 1); 0 kept unredacted, 1 skipped" in out
    assert (tmp_path / "share" / "sub" / "a.log").read_text() == "token=***REDACTED***\n"
    assert not (tmp_path / "share" / "core").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["{src}", "--out", "{src}"], "is the input itself"),
    (["{src}", "--out", "{taken}"], "already exists"),
    (["{src}", "--out", "{tmp}/nope/x.log"], "is not a directory"),
    (["{dir}", "--out", "-"], "--out - (stdout) takes one file"),
    (["{dir}", "--out", "{dir}/inside"], "inside"),
    (["{bundle}", "--keep-binary"], "--keep-binary applies to files and directories"),
    (["{bundle}", "--out", "{tmp}/x.zip"], "ends in .tar.gz"),
    (["{src}", "--report", "{src}"], "--report"),
    (["{tmp}/missing.log"], "does not exist"),
])
def test_usage_errors_name_the_flag_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"token={SECRET}\n")
    (tmp_path / "taken.log").write_text("precious")
    (tmp_path / "ev").mkdir()
    bundle = _bundle(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    values = {"src": src, "taken": tmp_path / "taken.log", "tmp": tmp_path, "dir": tmp_path / "ev", "bundle": bundle}
    code, out, err = _invoke(*[a.format(**values) for a in args])
    assert code == ExitCode.USAGE, err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert src.read_text() == f"token={SECRET}\n" and (tmp_path / "taken.log").read_text() == "precious"


def test_a_binary_file_alone_is_an_error_unless_kept(tmp_path: Path) -> None:
    src = tmp_path / "core"
    src.write_bytes(b"\x7fELF\x00\x01")
    code, out, err = _invoke(src)
    assert code == 1 and "nothing was written" in err and "--keep-binary" in err
    assert [p.name for p in tmp_path.iterdir()] == ["core"]
    code, out, err = _invoke(src, "--keep-binary", "--report", tmp_path / "r.json")
    assert code == 0 and (tmp_path / "core.redacted").read_bytes() == src.read_bytes()


def test_an_archive_that_is_no_bundle_is_an_error_saying_what_to_do(tmp_path: Path) -> None:
    src = tmp_path / "logs.tar.gz"
    with tarfile.open(src, "w:gz") as tar:
        tar.add(__file__, arcname="logs/x.py")
    code, out, err = _invoke(src)
    assert code == 1 and "not a debugcap bundle" in err and "redact the directory" in err
