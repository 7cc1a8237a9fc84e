"""The zipapp's bootstrap (scripts/zipapp_main.py), run in a zipapp built by scripts/build_dist.py.

Cases: a built zipapp unpacks once, runs on its own packages, refuses (in one line) a Python it has
no parts for, a free-threaded one and one on musl; an unusable cache falls back to a private
temporary directory, and so does one another user could write to (the directory of builds or a
build's own, or a directory above them); a build another process unpacked first is used, not
replaced; a build partly deleted since it was unpacked is unpacked again, not an ImportError;
housekeeping removes only stale builds it unpacked, never other directories beside them.
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from scripts_loader import load

TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"
MARKER = ".debugcap-zipapp-complete"


dist = load("build_dist")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _zipapp(tmp_path: Path, body: str, pythons: tuple[str, ...] = (TAG,)) -> Path:
    site = _tree(tmp_path / "src" / TAG, {
        "debugcap/__init__.py": "",
        "debugcap/kubectl_plugin/__init__.py": "",
        "debugcap/kubectl_plugin/cli.py": body,
        "click/__init__.py": "NAME = 'the archive click'\n",
    })
    placement = dist.place({TAG: site}, dist.closure(site, ["debugcap.kubectl_plugin"]))
    target = tmp_path / "kubectl-debugcap"
    dist.write_zipapp(target, dist.Placement(placement.files, pythons), "1.2.3", 1700000000)
    return target


def _build_id(app: Path) -> str:
    with zipfile.ZipFile(app) as zf:
        config: dict[str, object] = {}
        exec(zf.read("_debugcap_zipapp.py").decode(), config)
    return str(config["BUILD_ID"])


def _run(app: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(app)], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "DEBUGCAP_ZIPAPP_CACHE": str(cache), **env})


def test_a_zipapp_unpacks_once_and_runs_on_its_own_packages(tmp_path: Path) -> None:
    app = _zipapp(tmp_path, "import click\ndef main():\n    print(click.NAME, __file__)\n")
    poisoned = _tree(tmp_path / "poisoned", {"click/__init__.py": "NAME = 'the PYTHONPATH click'\n"})
    first = _run(app, tmp_path / "c", PYTHONPATH=str(poisoned))
    assert first.returncode == 0, first.stderr
    name, path = first.stdout.rsplit(" ", 1)
    assert name == "the archive click" and path.strip().startswith(str(tmp_path / "c" / "debugcap-zipapp"))
    (build,) = (tmp_path / "c" / "debugcap-zipapp").iterdir()
    assert build.name == _build_id(app) and sorted(p.name for p in build.iterdir()) == [TAG, "site"]
    assert (build / "site" / MARKER).is_file() and (build / TAG / MARKER).is_file()
    marker = build / "site" / "marker"
    marker.write_text("unpacked once")
    again = _run(app, tmp_path / "c", PYTHONPATH=str(poisoned))
    assert again.returncode == 0 and marker.exists(), again.stderr


def test_a_zipapp_refuses_a_python_it_has_no_parts_for(tmp_path: Path) -> None:
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n", pythons=("cp39",))
    res = _run(app, tmp_path / "c")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.startswith("kubectl-debugcap: this single-file build runs on CPython 3.9 (")
    assert f"; this is cpython {sys.version_info[0]}.{sys.version_info[1]}." in res.stderr
    assert "pipx install debugcap" in res.stderr and "Traceback" not in res.stderr


@pytest.fixture
def bootstrap(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/zipapp_main.py imported here, with a build configuration carrying this Python."""
    config = ModuleType("_debugcap_zipapp")
    config.VERSION, config.BUILD_ID, config.PYTHONS = "1.2.3", "1.2.3-0123456789abcdef", (TAG,)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_debugcap_zipapp", config)
    return load("zipapp_main")


def _refused(bootstrap: ModuleType, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        bootstrap.setup("not read")
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("kubectl-debugcap: this single-file build runs on CPython ")
    assert "`pipx install debugcap`" in err
    return err


def test_this_python_is_supported(bootstrap: ModuleType) -> None:
    if sys.platform.startswith("linux") and platform.libc_ver()[0] != "glibc":
        pytest.fail("the unit tests run on glibc", pytrace=False)
    assert bootstrap.unsupported() is None


def test_a_free_threaded_python_is_refused(bootstrap: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else real(name))
    assert "free-threaded" in _refused(bootstrap, capsys)


def test_a_python_on_musl_is_refused(bootstrap: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "libc_ver", lambda *args, **kwargs: ("", ""))
    assert "glibc" in _refused(bootstrap, capsys)


def test_an_unwritable_cache_falls_back_to_a_private_temp_dir(tmp_path: Path) -> None:
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n")
    # A cache under a regular file: no one can create it, root included (a read-only directory
    # would stop everyone but root, and CI runs as root).
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    res = _run(app, blocked / "c", TMPDIR=str(tmp_path))
    assert res.returncode == 0 and res.stdout == "ran\n", res.stderr
    assert (tmp_path / f"debugcap-zipapp-{os.getuid()}" / _build_id(app) / "site" / MARKER).is_file()


@pytest.mark.parametrize("writable", ["builds", "build", "builds-link", "parent"])
def test_a_cache_others_could_write_to_is_not_trusted(tmp_path: Path, writable: str) -> None:
    """Code planted in a shared cache (a directory of builds, or a build's own, that others may
    write to; or a link) is not imported: the private temporary directory is used instead."""
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n")
    build_id = _build_id(app)
    planted = {"site/debugcap/kubectl_plugin/cli.py": "def main():\n    print('planted')\n",
               f"site/{MARKER}": "", f"{TAG}/{MARKER}": ""}
    cache = tmp_path / "shared"
    _tree(cache / build_id, planted)  # where builds were unpacked before (the cache's root)
    builds = cache / "debugcap-zipapp"
    if writable == "builds-link":
        _tree(tmp_path / "elsewhere" / build_id, planted)
        builds.symlink_to(tmp_path / "elsewhere")
    elif writable == "parent":  # others may rename the checked directory of builds and put theirs there
        _tree(builds / build_id, planted)
        cache.chmod(0o777)
    else:
        _tree(builds / build_id, planted)
        (builds if writable == "builds" else builds / build_id).chmod(0o777)
    (tmp_path / "tmp").mkdir()
    res = _run(app, cache, TMPDIR=str(tmp_path / "tmp"))
    assert res.returncode == 0 and res.stdout == "ran\n", res.stdout + res.stderr
    assert (tmp_path / "tmp" / f"debugcap-zipapp-{os.getuid()}" / build_id / "site").is_dir()


def test_a_partly_deleted_build_is_unpacked_again(tmp_path: Path) -> None:
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n")
    assert _run(app, tmp_path / "c").returncode == 0
    site = tmp_path / "c" / "debugcap-zipapp" / _build_id(app) / "site"
    module = site / "debugcap" / "kubectl_plugin" / "cli.py"
    # A temp-file cleaner removed old files, the marker with them: unpacked again before the import.
    module.unlink()
    (site / MARKER).unlink()
    res = _run(app, tmp_path / "c")
    assert res.returncode == 0 and res.stdout == "ran\n", res.stderr
    # Removed while the marker stayed: one line, and the next run unpacks it again.
    module.unlink()
    res = _run(app, tmp_path / "c")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert "unpacked again at the next run" in res.stderr
    res = _run(app, tmp_path / "c")
    assert res.returncode == 0 and res.stdout == "ran\n", res.stderr


def test_housekeeping_removes_only_stale_builds_it_unpacked(tmp_path: Path) -> None:
    """DEBUGCAP_ZIPAPP_CACHE=$HOME/.cache must not cost the user their other cached directories."""
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n")
    cache = tmp_path / "dot-cache"
    builds = cache / "debugcap-zipapp"
    dirs = {
        "user": _tree(cache / "pip", {"http/x": "the user's"}),
        "user-named-as-a-build": _tree(cache / "0.1.0-0123456789abcdef", {"x": "the user's"}),
        "stale": _tree(builds / "0.1.0-0123456789abcdef", {"site/x.py": "", f"site/{MARKER}": ""}),
        "no-marker": _tree(builds / "0.1.1-0123456789abcdef", {"site/x.py": ""}),
        "other-name": _tree(builds / "notes", {"x": ""}),
        "recent": _tree(builds / "0.1.2-0123456789abcdef", {"site/x.py": "", f"site/{MARKER}": ""}),
    }
    month_ago = time.time() - 30 * 86400
    for name, path in dirs.items():
        if name != "recent":
            os.utime(path, (month_ago, month_ago))
    res = _run(app, cache)
    assert res.returncode == 0, res.stderr
    assert {name for name, path in dirs.items() if not path.exists()} == {"stale"}
    assert (builds / _build_id(app) / "site" / MARKER).is_file()


def test_a_damaged_payload_member_is_refused(tmp_path: Path) -> None:
    app = _zipapp(tmp_path, "def main():\n    print('ran')\n")
    data = app.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data[data.index(b"\n") + 1:])) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as zf:
        zf.writestr(f"{TAG}/../../escaped.py", "x")
    members["payload.zip"] = payload.getvalue()
    with zipfile.ZipFile(app, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    res = _run(app, tmp_path / "c")
    assert res.returncode == 1 and "the archive is damaged" in res.stderr
    assert not list(tmp_path.rglob("escaped.py"))


def test_a_build_another_process_finished_first_is_used_not_replaced(bootstrap: ModuleType, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two first runs at once (shell completion): the one that finishes second keeps the first's
    directory, which the first may be importing from already."""
    builds = tmp_path / "builds"
    final = builds / "1.2.3-0123456789abcdef" / "site"

    def unpacked_meanwhile(archive: str, prefix: str, target: str) -> None:
        _tree(final, {"mod.py": "first", MARKER: ""})  # the other process renamed its unpack in place
        _tree(Path(target), {"mod.py": "second"})

    monkeypatch.setattr(bootstrap, "_unpack", unpacked_meanwhile)
    assert bootstrap.extract("not read", "site", str(builds)) == str(final)
    assert (final / "mod.py").read_text() == "first"
    assert [p.name for p in final.parent.iterdir()] == ["site"]  # the second unpack removed
