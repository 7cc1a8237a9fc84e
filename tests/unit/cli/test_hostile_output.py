"""Nothing from a bundle reaches the terminal raw (issue 16), and a bundle without its .sha256 is
told (a warning; a failure with --strict)."""

from __future__ import annotations

from pathlib import Path

from bundle.hostile import PS, build, manifest_bytes  # tests/unit is on sys.path (rootdir-relative packages)
from click.testing import CliRunner

from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.cli import cli

ESC = "\x1b[31mRED\x1b]0;pwned\x07"


def test_clean_escapes_controls_but_newline_and_tab() -> None:
    cleaned = terminal.clean(f"a\tb\n{ESC}\r\x7f\x9b\u202e")
    assert cleaned == "a\tb\n\\x1b[31mRED\\x1b]0;pwned\\x07\\x0d\\x7f\\x9b\\u202e"


def test_verify_prints_a_hostile_member_name_escaped(tmp_path: Path) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS, f"custom/{ESC}": b"x"}, listed={"proc/ps.txt": PS})
    result = CliRunner().invoke(cli, ["verify", str(bundle)])
    assert result.exit_code == 4
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "custom/\\x1b[31mRED\\x1b]0;pwned\\x07: unlisted" in result.output


def test_report_prints_a_hostile_pod_name_escaped(tmp_path: Path) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS}, manifest=manifest_bytes({"proc/ps.txt": PS}, pod=f"api-{ESC}"))
    result = CliRunner().invoke(cli, ["report", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "Target: prod/api-\\x1b[31mRED" in result.output


def test_an_error_quoting_a_member_is_escaped(tmp_path: Path) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS, f"../{ESC}": b"x"})
    result = CliRunner().invoke(cli, ["report", str(bundle)])
    assert result.exit_code == 4
    assert "\x1b" not in result.output and "../\\x1b[31mRED" in result.output


def test_verify_without_a_sidecar_warns_and_fails_with_strict(tmp_path: Path) -> None:
    bundle = build(tmp_path, {"proc/ps.txt": PS}, sidecar=False)
    lenient = CliRunner().invoke(cli, ["verify", str(bundle)])
    assert lenient.exit_code == 0
    assert "warning: no prod_api-1_20261123T160000Z.tar.gz.sha256 beside the bundle" in lenient.stderr
    assert "UNVOUCHED: no .sha256 beside it" in lenient.stdout
    strict = CliRunner().invoke(cli, ["verify", "--strict", str(bundle)])
    assert strict.exit_code == 4
    assert "FAILED (--strict: no .sha256 beside it)" in strict.stderr
    with_sidecar = CliRunner().invoke(cli, ["verify", "--strict", str(build(tmp_path / "b", {"proc/ps.txt": PS}))])
    assert with_sidecar.exit_code == 0 and "warning" not in with_sidecar.stderr


def test_redact_to_a_terminal_escapes_what_a_hostile_file_holds() -> None:
    import io

    from debugcap.kubectl_plugin.commands.redact import _EscapedTerminal

    out = io.StringIO()
    sink = _EscapedTerminal(out)
    for piece in (b"ok \x1b]0;owned\x07 caf", b"\xc3", b"\xa9\n"):  # an OSC, and an \u00e9 split across writes
        sink.write(piece)
    assert out.getvalue() == "ok \\x1b]0;owned\\x07 caf\u00e9\n"
