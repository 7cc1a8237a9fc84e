"""scripts/build_dist.py and the zipapp's bootstrap (scripts/zipapp_main.py), without pip or a network.

Cases: the list of the plugin's dependencies covers what debugcap.kubectl_plugin imports; the
import closure follows relative and function-level imports and leaves unreached packages out;
namespace packages split, dist-info kept with their packages; what differs per Python goes
under cp3XY/; archives are byte-for-byte reproducible; the manifest is what krew reads; the
payload carries what links point to (``debugcap/crds``), never what lies outside the repository;
pip's console-script lines are out of every RECORD. The bootstrap: test_zipapp_main.py.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from scripts_loader import load

TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


dist = load("build_dist")


def _requirements(name: str, seen: set[str]) -> set[str]:
    """``name`` and every distribution it requires (extras left out), by normalised name."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return seen
    try:
        requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return seen  # a requirement for other Pythons (a marker), not installed here
    seen.add(key)
    for req in requires:
        if "extra ==" not in req:
            _requirements(re.split(r"[<>=!~;\[ (]", req, maxsplit=1)[0], seen)
    return seen


def test_the_dependency_list_covers_what_the_plugin_imports(tmp_path: Path) -> None:
    package = Path(importlib.util.find_spec("debugcap").origin).parent  # type: ignore[arg-type,union-attr]
    shutil.copytree(package, tmp_path / "debugcap", ignore=shutil.ignore_patterns("__pycache__"))
    known = dist.modules(tmp_path)
    imported = set()
    for name in dist.closure(tmp_path, dist.ROOTS):
        tree = ast.parse(known[name].read_bytes())
        imported |= {m.split(".")[0] for m in dist._imported(tree, name, known[name].name == "__init__.py")}
    imported -= {"debugcap", *sys.stdlib_module_names}
    imported = {m for m in imported if importlib.util.find_spec(m)}  # _typeshed: under TYPE_CHECKING only
    assert {"click", "kubernetes", "minio", "yaml", "google"} <= imported  # the check sees them at all
    owners = importlib.metadata.packages_distributions()
    allowed: set[str] = set()
    for name in dist.PLUGIN_DEPENDENCIES:
        _requirements(name, allowed)
    missing = {top: owners.get(top) for top in imported
               if not any(re.sub(r"[-_.]+", "-", d).lower() in allowed for d in owners.get(top, []))}
    assert not missing, f"the plugin imports {missing}: add them to PLUGIN_DEPENDENCIES in scripts/build_dist.py"
    _, declared = dist.project()
    assert set(dist.PLUGIN_DEPENDENCIES) <= set(declared)
    assert not {"kopf", "aiohttp", "prometheus_client"} & imported


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


SITE = {
    "app/__init__.py": "",
    "app/cli.py": "from . import util\ndef run():\n    import lazy.inner\n    from ns.part import thing\n",
    "app/util.py": "import json\nfrom .sub import x\n",
    "app/sub/__init__.py": "x = 1\n",
    "lazy/__init__.py": "",
    "lazy/inner.py": "",
    "lazy/unused.py": "import never\n",
    "never/__init__.py": "",
    "ns/part/__init__.py": "thing = 1\n",
    "ns/other/__init__.py": "",
    "lone.py": "",
    "app-1.0.dist-info/RECORD": "app/__init__.py,,\napp/cli.py,,\n",
    "never-1.0.dist-info/RECORD": "never/__init__.py,,\n",
}


def test_closure_follows_relative_and_function_level_imports(tmp_path: Path) -> None:
    site = _tree(tmp_path, SITE)
    reached = dist.closure(site, ["app"])
    assert reached == {"app", "app.cli", "app.util", "app.sub", "lazy", "lazy.inner", "ns.part"}
    units = dist.units(site)
    assert "ns/part" in units and "ns/other" in units and "ns" not in units  # a namespace package splits
    assert dist.kept_units(site, reached) == ["app", "app-1.0.dist-info", "lazy", "ns/part"]


def test_what_differs_per_python_goes_under_its_tag(tmp_path: Path) -> None:
    a = _tree(tmp_path / "cp311", {**SITE, "lazy/_speed.cpython-311-x86_64-linux-gnu.so": "311"})
    b = _tree(tmp_path / "cp312", {**SITE, "lazy/_speed.cpython-312-x86_64-linux-gnu.so": "312"})
    placement = dist.place({"cp311": a, "cp312": b}, dist.closure(a, ["app"]))
    names = set(placement.files)
    assert "site/app/cli.py" in names and "site/ns/part/__init__.py" in names
    assert {"cp311/lazy/_speed.cpython-311-x86_64-linux-gnu.so", "cp311/lazy/inner.py",
            "cp312/lazy/_speed.cpython-312-x86_64-linux-gnu.so"} <= names
    assert not any(n.startswith("site/lazy") or "never" in n for n in names)


def _placement(root: Path, main_body: str) -> object:
    site = _tree(root / TAG, {
        "debugcap/__init__.py": "",
        "debugcap/kubectl_plugin/__init__.py": "",
        "debugcap/kubectl_plugin/cli.py": main_body,
        "click/__init__.py": "NAME = 'the archive click'\n",
    })
    return dist.place({TAG: site}, dist.closure(site, ["debugcap.kubectl_plugin"]))


def test_the_archive_and_the_zipapp_are_reproducible(tmp_path: Path) -> None:
    placement = _placement(tmp_path / "src", "def main():\n    print('hi')\n")
    one, two = tmp_path / "one", tmp_path / "two"
    assert dist.write_zipapp(one, placement, "1.2.3", 1700000000) == dist.write_zipapp(two, placement, "1.2.3",
                                                                                       1700000000)
    assert one.read_bytes() == two.read_bytes() and one.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(one, os.X_OK)
    with zipfile.ZipFile(one) as zf:
        assert zf.namelist() == ["__main__.py", "_debugcap_zipapp.py", "payload.zip"]
    sums = {dist.write_archive(tmp_path / f"{n}.tar.gz", one, 1700000000) for n in ("a", "b")}
    assert len(sums) == 1
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        (member, *_) = tar.getmembers()
        assert (member.name, member.mode, member.mtime, member.uid) == ("kubectl-debugcap", 0o755, 1700000000, 0)


def test_the_manifest_is_what_krew_reads() -> None:
    text = dist.render_manifest("1.2.3", {"linux/amd64": ("https://x/a.tar.gz", "a" * 64),
                                          "darwin/arm64": ("https://x/b.tar.gz", "b" * 64)})
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2" and doc["kind"] == "Plugin"
    assert doc["metadata"]["name"] == "debugcap" and doc["spec"]["version"] == "v1.2.3"
    assert "\n" not in doc["spec"]["shortDescription"]
    assert [(p["selector"]["matchLabels"], p["sha256"], p["bin"]) for p in doc["spec"]["platforms"]] == [
        ({"os": "darwin", "arch": "arm64"}, "b" * 64, "kubectl-debugcap"),
        ({"os": "linux", "arch": "amd64"}, "a" * 64, "kubectl-debugcap")]


def _payload_names(zipapp: Path) -> list[str]:
    data = zipapp.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data[data.index(b"\n") + 1:])) as outer:
        with zipfile.ZipFile(io.BytesIO(outer.read("payload.zip"))) as inner:
            return inner.namelist()


def test_the_payload_carries_every_crd_through_the_link(tmp_path: Path) -> None:
    """debugcap/crds is a link to crds/ (git keeps it as one): the copy the wheel is built from has
    the files, and so has the payload (pip installing the wheel is stood in for by a copy)."""
    crds = sorted(p.name for p in (dist.REPO / "crds").glob("*.yaml"))
    assert crds and (dist.REPO / "debugcap" / "crds").is_symlink()
    dist.copy_sources(tmp_path / "src")
    for name in crds:
        copied = tmp_path / "src" / "debugcap" / "crds" / name
        assert not copied.is_symlink() and copied.read_bytes() == (dist.REPO / "crds" / name).read_bytes()
    site = tmp_path / "site" / TAG
    shutil.copytree(tmp_path / "src" / "debugcap", site / "debugcap")
    placement = dist.place({TAG: site}, dist.closure(site, dist.ROOTS))
    dist.write_zipapp(tmp_path / "app", placement, "1.2.3", 1700000000)
    names = _payload_names(tmp_path / "app")
    assert {f"site/debugcap/crds/{name}" for name in crds} <= set(names)


@pytest.mark.parametrize("git", [True, False], ids=["git checkout", "source tarball"])
def test_links_are_copied_as_what_they_point_to_inside_the_repository_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git: bool) -> None:
    repo = _tree(tmp_path / "repo", {"pyproject.toml": "", "README.md": "", "debugcap/__init__.py": "",
                                     "crds/a.yaml": "kind: A\n", "crds/sub/b.yaml": "kind: B\n"})
    outside = _tree(tmp_path / "outside", {"secret.txt": "not the project's\n"})
    (repo / "debugcap" / "crds").symlink_to("../crds")
    (repo / "debugcap" / "leak").symlink_to(outside)
    (repo / "debugcap" / "leak.txt").symlink_to(outside / "secret.txt")
    (repo / "debugcap" / "readme.md").symlink_to("../README.md")
    if git:
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.setattr(dist, "REPO", repo.resolve())
    dist.copy_sources(tmp_path / "src")
    src = tmp_path / "src" / "debugcap"
    assert (src / "crds" / "a.yaml").read_text() == "kind: A\n" and (src / "crds" / "sub" / "b.yaml").is_file()
    assert not (src / "crds").is_symlink() and (src / "readme.md").is_file()
    assert not (src / "leak").exists() and not (src / "leak.txt").exists()
    assert "not the project's" not in "".join(p.read_text() for p in tmp_path.joinpath("src").rglob("*")
                                              if p.is_file())


def test_records_name_no_console_scripts_and_no_wheel_origin(tmp_path: Path) -> None:
    """pip --target writes bin/ scripts whose shebang is the builder's Python; their RECORD lines
    (``../../bin/...``, with that script's hash) would make two builders' payloads differ."""
    target = _tree(tmp_path, {
        "a-1.0.dist-info/RECORD": ("a/__init__.py,sha256=x,1\n../../bin/a-cli,sha256=builder,180\n"
                                   "a-1.0.dist-info/direct_url.json,sha256=y,50\na-1.0.dist-info/RECORD,,\n"),
        "a-1.0.dist-info/direct_url.json": '{"url": "file:///tmp/x/a.whl"}',
        "b-2.0.dist-info/RECORD": "b.py,sha256=z,1\n../../bin/b,sha256=builder,170\n",
    })
    dist.reproducible(target)
    assert (target / "a-1.0.dist-info/RECORD").read_text() == "a/__init__.py,sha256=x,1\na-1.0.dist-info/RECORD,,\n"
    assert (target / "b-2.0.dist-info/RECORD").read_text() == "b.py,sha256=z,1\n"
    assert not (target / "a-1.0.dist-info/direct_url.json").exists()


def test_a_dirty_working_tree_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _tree(tmp_path, {"kept.txt": "1\n", "gone.txt": "2\n"})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    monkeypatch.setattr(dist, "REPO", repo)
    assert dist.dirty_files() == []
    (repo / "kept.txt").write_text("changed\n")
    (repo / "new.txt").write_text("")
    subprocess.run([*git, "mv", "gone.txt", "moved.txt"], check=True)
    assert sorted(dist.dirty_files()) == ["kept.txt", "moved.txt", "new.txt"]
