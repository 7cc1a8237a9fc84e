"""``kubectl debugcap redact --patterns FILE``: admin patterns over a file, a directory and a bundle
(masked, reported as custom:<name>, the bundle still verified); a bad pattern file is a usage error
naming the pattern and the fix, and nothing is written."""

from __future__ import annotations

import gzip
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from debugcap.bundle import layout, manifest, verify, writer
from debugcap.kubectl_plugin.cli import cli

TOKEN = "acme_" + "Zp4k" * 8
PATTERNS = "- name: acme-token\n  regex: 'acme_[A-Za-z0-9]{32}'\n"
WHEN = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["redact", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def _patterns(tmp_path: Path, text: str = PATTERNS) -> Path:
    path = tmp_path / "patterns.yaml"
    path.write_text(text)
    return path


def test_a_file_without_and_with_patterns(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"user logged in with {TOKEN}\n")
    code, out, _ = _invoke(src, "--out", "-", "--report", tmp_path / "plain.json")
    assert code == 0 and TOKEN in out  # the built-in detectors do not know the company format
    code, out, _ = _invoke(src, "--out", "-", "--report", tmp_path / "r.json", "--patterns", _patterns(tmp_path))
    assert (code, out) == (0, "user logged in with ***REDACTED***\n")
    assert json.loads((tmp_path / "r.json").read_text())["totals"]["rules"] == {"custom:acme-token": 1}


def test_a_directory_with_a_gzipped_log(tmp_path: Path) -> None:
    src = tmp_path / "evidence"
    src.mkdir()
    (src / "app.log.gz").write_bytes(gzip.compress(f"x {TOKEN}\n".encode()))
    code, _, err = _invoke(src, "--out", tmp_path / "share", "--patterns", _patterns(tmp_path))
    assert code == 0, err
    assert gzip.decompress((tmp_path / "share" / "app.log.gz").read_bytes()) == b"x ***REDACTED***\n"


def test_a_bundle_stays_verified_and_records_the_kind(tmp_path: Path) -> None:
    fields = manifest.ManifestFields(capture=manifest.CaptureInfo("cap-1", "debug-full"),
                                     target=manifest.TargetInfo("prod", "api-1", "app"), started_at=WHEN,
                                     finished_at=WHEN,
                                     collectors=(manifest.CollectorRecord("logs", manifest.CollectorStatus.OK, 1,
                                                                          message=f"saw {TOKEN}"),))
    with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-1", WHEN), redact=True,
                             mtime=0) as w:
        w.add_bytes(layout.log_path("app"), f"token {TOKEN}\n".encode())
        src = w.finish(fields).path
    code, _, err = _invoke(src, "--patterns", _patterns(tmp_path), "--report", tmp_path / "r.json")
    assert code == 0, err
    target = tmp_path / "prod_api-1_20261123T160000Z.redacted.tar.gz"
    assert verify.verify(target).ok
    with tarfile.open(target, "r:gz") as tar:
        data = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert not any(TOKEN.encode() in member for member in data.values())
    assert json.loads(data["manifest.json"])["redaction_counts"][layout.log_path("app")] == {"custom:acme-token": 1}


def test_a_bad_pattern_file_is_a_usage_error_and_nothing_is_written(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"{TOKEN}\n")
    code, _, err = _invoke(src, "--patterns", _patterns(tmp_path, "- {name: acme-token, regex: 'acme_(?!x)'}\n"))
    assert code == 2
    assert "--patterns" in err and '"acme-token"' in err and "look-around" in err
    code, _, err = _invoke(src, "--patterns", tmp_path / "missing.yaml")
    assert code == 2 and "cannot read" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "patterns.yaml"]


def test_a_lone_surrogate_or_bytes_not_utf8_are_usage_errors_not_tracebacks(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text(f"user logged in with {TOKEN}\n")
    code, _, err = _invoke(src, "--out", "-", "--patterns", _patterns(tmp_path, '- {name: x, regex: "a\\udcffb"}\n'))
    assert code == 2 and '[0] ("x"): the regex holds a lone surrogate' in err and "Traceback" not in err
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"- {name: x, regex: 'caf\xe9'}\n")
    code, _, err = _invoke(src, "--out", "-", "--patterns", path)
    assert code == 2 and "is not UTF-8 text (byte offset 23)" in err
