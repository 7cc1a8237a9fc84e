"""verify(): every failing file is named.

Cases: a fresh bundle verifies; a rewritten member (tar repacked by the real `tar`) is reported
as sha-mismatch by name and the bundle's own .sha256 no longer matches; a removed member is
missing; an added member is unlisted; a SHA256SUMS line disagreeing with the manifest is named;
a missing .sha256 is reported as unknown, not as failure; garbage is a BundleError. The .sha256
is judged by its hash: a line naming the bundle by a path, in binary mode, in upper case or by
another name (a renamed bundle) matches when its hash does, the name at most a note.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from debugcap.bundle import layout, verify, writer
from debugcap.errors import BundleError


@pytest.fixture
def bundle(tmp_path: Path, make_fields, when) -> writer.WrittenBundle:  # type: ignore[no-untyped-def]
    with writer.BundleWriter(directory=tmp_path / "out", name=layout.bundle_name("prod", "api-1", when)) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        w.add_bytes(layout.NET_RESOLV_CONF, b"nameserver 10.96.0.10\n")
        return w.finish(make_fields())


def _repack(bundle: writer.WrittenBundle, work: Path, mutate: Callable[[Path], None]) -> None:
    """Unpack with tar, let ``mutate`` edit the stem directory, pack it again in place."""
    work.mkdir()
    subprocess.run(["tar", "xzf", str(bundle.path), "-C", str(work)], check=True)
    stem = layout.stem(bundle.path.name)
    mutate(work / stem)
    subprocess.run(["tar", "czf", str(bundle.path), "-C", str(work), stem], check=True)
    shutil.rmtree(work)


def test_fresh_bundle_verifies(bundle: writer.WrittenBundle) -> None:
    result = verify.verify(bundle.path)
    assert result.ok, result.summary()
    assert result.bundle_checksum_ok is True
    assert result.sha256 == bundle.sha256
    assert result.checked_files == 3


def test_tampered_member_is_named(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    _repack(bundle, tmp_path / "w", lambda d: (d / layout.PROC_PS).write_bytes(b"root 1 /evil\n"))
    result = verify.verify(bundle.path)
    assert not result.ok
    assert result.failing_paths == [layout.PROC_PS]
    assert result.problems[0].kind is verify.ProblemKind.SHA_MISMATCH
    assert result.bundle_checksum_ok is False
    assert "proc/ps.txt: sha-mismatch" in result.summary()


def test_removed_member_is_missing(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    _repack(bundle, tmp_path / "w", lambda d: (d / layout.NET_RESOLV_CONF).unlink())
    result = verify.verify(bundle.path)
    assert [(p.path, p.kind) for p in result.problems] == [
        (layout.NET_RESOLV_CONF, verify.ProblemKind.MISSING)
    ]


def test_added_member_is_unlisted(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    def add(stem_dir: Path) -> None:
        (stem_dir / "proc" / "extra.txt").write_bytes(b"smuggled\n")

    _repack(bundle, tmp_path / "w", add)
    result = verify.verify(bundle.path)
    assert [(p.path, p.kind) for p in result.problems] == [("proc/extra.txt", verify.ProblemKind.UNLISTED)]


def test_sha256sums_disagreeing_with_manifest_is_named(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    def edit(stem_dir: Path) -> None:
        sums = stem_dir / layout.SHA256SUMS
        lines = [
            ("0" * 64 + line[64:]) if line.endswith(layout.NET_RESOLV_CONF) else line
            for line in sums.read_text().splitlines()
        ]
        sums.write_text("\n".join(lines) + "\n")

    _repack(bundle, tmp_path / "w", edit)
    result = verify.verify(bundle.path)
    assert [(p.path, p.kind) for p in result.problems] == [
        (layout.NET_RESOLV_CONF, verify.ProblemKind.SUMS_DISAGREE)
    ]


def test_missing_checksum_file_is_unknown_not_failure(bundle: writer.WrittenBundle) -> None:
    bundle.checksum_path.unlink()
    result = verify.verify(bundle.path)
    assert result.bundle_checksum_ok is None and result.ok


def test_garbage_is_a_bundle_error_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "prod_api-1_20261123T160000Z.tar.gz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(BundleError, match="not a readable tar.gz.*Fetch it again"):
        verify.verify(path)


@pytest.mark.parametrize("line", [
    "{sha}  {name}", "{sha} *{name}", "{upper}  {name}", "{sha}  dir/sub/{name}", "{upper} */abs/{name}\n",
    "SHA256 ({name}) = {sha}", "{other}  other.tar.gz\n{sha}  {name}\n",
])
def test_the_sha256_file_is_judged_by_its_hash_whatever_the_form_of_its_line(
        bundle: writer.WrittenBundle, line: str) -> None:
    bundle.checksum_path.write_text(line.format(sha=bundle.sha256, upper=bundle.sha256.upper(),
                                                name=bundle.path.name, other="1" * 64))
    result = verify.verify(bundle.path)
    assert result.ok and result.bundle_checksum_ok is True and result.notes == (), result.summary()


def test_a_sha256_file_naming_another_name_is_a_note_not_a_failure(bundle: writer.WrittenBundle) -> None:
    # A bundle and its .sha256 copied to api.tar.gz and api.tar.gz.sha256: the line still names the original.
    bundle.checksum_path.write_text(f"{bundle.sha256}  /spool/prod/{'x_' + bundle.path.name}\n")
    result = verify.verify(bundle.path)
    assert result.ok and result.bundle_checksum_ok is True
    (note,) = result.notes
    assert note == (f"{bundle.checksum_path.name} names the bundle x_{bundle.path.name}, not {bundle.path.name} "
                    "(renamed?); its hash is what was compared")
    assert result.summary() == f"{bundle.path.name}: OK (3 files; {note})"


@pytest.mark.parametrize(("text", "note"), [
    ("not a checksum\n", "holds no `<sha256>  <name>` line"),
    ("{sha}  a.tar.gz\n{sha}  b.tar.gz\n", "lists 2 files, none of them {name}"),
])
def test_a_sha256_file_without_a_usable_line_fails_saying_why(bundle: writer.WrittenBundle, text: str,
                                                              note: str) -> None:
    bundle.checksum_path.write_text(text.format(sha=bundle.sha256))
    result = verify.verify(bundle.path)
    assert not result.ok and result.bundle_checksum_ok is False
    assert f"note: {bundle.checksum_path.name} {note.format(name=bundle.path.name)}" in result.summary()


def test_a_wrong_hash_still_fails_whatever_the_name(bundle: writer.WrittenBundle) -> None:
    bundle.checksum_path.write_text(f"{'0' * 64}  {bundle.path.name}\n")
    assert verify.verify(bundle.path).bundle_checksum_ok is False


def test_a_renamed_bundle_verifies_with_notes(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    # Copied to api.tar.gz with its .sha256: the members are under the old stem, the line names the old name.
    renamed = tmp_path / "api.tar.gz"
    shutil.copy(bundle.path, renamed)
    shutil.copy(bundle.checksum_path, tmp_path / "api.tar.gz.sha256")
    result = verify.verify(renamed)
    assert result.ok and result.bundle_checksum_ok is True and result.checked_files == 3, result.summary()
    assert result.notes[0] == (f"its members are under {layout.stem(bundle.path.name)}/, not api/ as its file "
                               "name says (renamed?)")


def test_a_member_outside_the_stem_is_still_named(bundle: writer.WrittenBundle, tmp_path: Path) -> None:
    def add(stem_dir: Path) -> None:
        (stem_dir.parent / "elsewhere.txt").write_bytes(b"outside\n")

    work = tmp_path / "w"
    work.mkdir()
    subprocess.run(["tar", "xzf", str(bundle.path), "-C", str(work)], check=True)
    add(work / layout.stem(bundle.path.name))
    subprocess.run(["tar", "czf", str(bundle.path), "-C", str(work), layout.stem(bundle.path.name), "elsewhere.txt"],
                   check=True)
    result = verify.verify(bundle.path)
    assert [(p.path, p.kind) for p in result.problems] == [("elsewhere.txt", verify.ProblemKind.UNEXPECTED_MEMBER)]
    assert result.notes == ()
