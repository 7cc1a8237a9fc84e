"""A user with kubectl, krew and the manifest installs the plugin offline; the single file runs on a
clean Python.

What `make dist` builds is used as built: the krew archive and manifest go to a real krew (built
from its Go module like the testbed's other programs, cached in ~/.cache/debugcap-testbed) with a
temporary KREW_ROOT, and kubectl finds the plugin on PATH. No cluster is involved: kubectl looks
for plugins before it reads a kubeconfig or contacts anything. That is checked, not assumed: the
kubeconfig points at a listening socket of this test, which must see no connection. So this test
does not use the testbed fixture (it needs kubectl and krew binaries, built here if missing).
`get` is run against a stub API server of this test answering a DebugCaptureList: its table is the
CRD's printer columns, which the plugin reads from its own copy of crds/.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from debugcap import __version__
from debugcap.bundle import layout, manifest, writer
from testbed import builds
from testbed.layout import REPO

ARCHIVE = f"kubectl-debugcap-{__version__}-linux-amd64.tar.gz"
MANIFEST = REPO / "deploy" / "krew" / "debugcap.yaml"


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def dist() -> Path:
    """`make dist` for this machine, as a user or a release would run it."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.fail("this test installs the linux/amd64 archive; run it on linux/amd64", pytrace=False)
    res = subprocess.run(["make", "dist"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"make dist failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
    assert (REPO / "dist" / ARCHIVE).is_file() and MANIFEST.is_file(), res.stderr
    return REPO / "dist" / ARCHIVE


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kubectl and krew (as the kubectl-krew plugin) from the testbed's builds."""
    for name in ("kubernetes", "krew"):
        builds.build(builds.component(name))
    bin_dir = tmp_path_factory.mktemp("tools")
    (bin_dir / "kubectl").symlink_to(builds.binary("kubernetes", "kubectl"))
    (bin_dir / "kubectl-krew").symlink_to(builds.binary("krew"))
    return {"bin": bin_dir, "kubectl": bin_dir / "kubectl"}


def clean_python() -> Path:
    """A python3 of 3.11+ outside the project's virtualenv: the system's, else the one the venv was made from."""
    for candidate in (Path("/usr/bin/python3"), Path(sys.base_prefix) / "bin" / "python3"):
        if candidate.is_file():
            res = subprocess.run([str(candidate), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                 capture_output=True, text=True)
            if res.stdout.strip() == "True":
                return candidate
    pytest.fail("no CPython 3.11+ outside the virtualenv (/usr/bin/python3 or the venv's base)", pytrace=False)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket a kubeconfig can point at: any connection to it means something contacted the 'cluster'."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _contacted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def _user_env(tmp_path: Path, tools: dict[str, Path], server: socket.socket | str) -> dict[str, str]:
    """A user's environment: kubectl, krew and python3 on PATH, a kubeconfig for ``server`` (a
    listening socket, or an API server's URL)."""
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = home / "kubeconfig"
    url = server if isinstance(server, str) else f"https://127.0.0.1:{server.getsockname()[1]}"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    krew_root = tmp_path / "krew"
    python_dir = clean_python().parent
    return {"PATH": f"{tools['bin']}:{krew_root / 'bin'}:{python_dir}:/usr/bin:/bin", "HOME": str(home),
            "KREW_ROOT": str(krew_root), "KREW_NO_UPGRADE_CHECK": "1", "KUBECONFIG": str(kubeconfig)}


def test_the_manifest_names_each_archive_with_its_sha256(dist: Path) -> None:
    doc = yaml.safe_load(MANIFEST.read_text())
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == (
        "krew.googlecontainertools.github.com/v1alpha2", "Plugin", "debugcap")
    assert doc["spec"]["version"] == f"v{__version__}" and doc["spec"]["shortDescription"]
    (platform,) = [p for p in doc["spec"]["platforms"]
                   if p["selector"]["matchLabels"] == {"os": "linux", "arch": "amd64"}]
    assert platform["sha256"] == hashlib.sha256(dist.read_bytes()).hexdigest()
    assert platform["uri"].endswith(f"/v{__version__}/{ARCHIVE}") and platform["bin"] == "kubectl-debugcap"
    with tarfile.open(dist) as tar:
        members = {m.name: m for m in tar}
    assert "kubectl-debugcap" in members and members["kubectl-debugcap"].mode & 0o111
    assert set(members) <= {"kubectl-debugcap", "LICENSE", "LICENSE.txt", "LICENSE.md"}


def test_krew_installs_it_offline_and_kubectl_finds_it(dist: Path, tools: dict[str, Path], tmp_path: Path,
                                                        listener: socket.socket) -> None:
    env = _user_env(tmp_path, tools, listener)
    kubectl = str(tools["kubectl"])
    res = _run([kubectl, "krew", "install", f"--manifest={MANIFEST}", f"--archive={dist}"], env)
    assert res.returncode == 0, res.stderr
    assert "Installed plugin: debugcap" in res.stderr + res.stdout
    installed = Path(env["KREW_ROOT"]) / "bin" / "kubectl-debugcap"
    assert installed.is_symlink()

    # `krew list` wants the plugin index (a git clone from the network); its receipt is what it lists.
    receipt = yaml.safe_load((Path(env["KREW_ROOT"]) / "receipts" / "debugcap.yaml").read_text())
    assert receipt["spec"]["version"] == f"v{__version__}"
    plugins = _run([kubectl, "plugin", "list"], env)
    assert str(installed) in plugins.stdout, plugins.stdout + plugins.stderr

    helped = _run([kubectl, "debugcap", "--help"], env)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: kubectl debugcap" in helped.stdout and "redact" in helped.stdout
    version = _run([kubectl, "debugcap", "--version"], env)
    assert version.stdout.strip() == f"kubectl debugcap, version {__version__}", version.stderr
    # kubectl 1.26+ completes a plugin through kubectl_complete-<name>: a link to the same file (docs/plugin.md).
    (installed.parent / "kubectl_complete-debugcap").symlink_to(installed)
    completed = _run([kubectl, "__complete", "debugcap", "re"], env)
    assert "redact\t" in completed.stdout and "report\t" in completed.stdout, completed.stdout + completed.stderr
    assert not _contacted(listener), "kubectl or the plugin contacted the API server"
    # The first run unpacked the build into the user's cache, nowhere else.
    assert list((Path(env["HOME"]) / ".cache" / "debugcap-zipapp").iterdir())


CAPTURE = {
    "apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
    "metadata": {"name": "api-1-debug-full", "namespace": "default", "creationTimestamp": "2026-11-23T16:00:00Z"},
    "spec": {"target": {"pod": "api-1"}, "template": "debug-full", "firing": {"reason": "OOMKilled"}},
    "status": {"phase": "Succeeded", "summary": {"unhealthy": 0, "findings": 3}, "message": "done",
               "conditions": [{"type": "Ready", "status": "True"}, {"type": "Healthy", "status": "True"}]},
}


class _Captures(http.server.BaseHTTPRequestHandler):
    """An API server that knows one DebugCapture, and records the paths asked for."""

    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's name)
        self.paths.append(self.path)
        if re.fullmatch(r"/apis/debugcap\.io/v1alpha1/namespaces/default/debugcaptures(\?.*)?", self.path):
            doc: dict[str, object]
            status, doc = 200, {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCaptureList",
                                "metadata": {"resourceVersion": "7"}, "items": [CAPTURE]}
        else:
            status, doc = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                "code": 404, "message": f"{self.path} not found"}
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[tuple[str, list[str]]]:
    """(its URL, the paths asked for so far)."""
    paths: list[str] = []
    handler = type("Handler", (_Captures,), {"paths": paths})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


def _payload_names(executable: Path) -> set[str]:
    data = executable.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data[data.index(b"\n") + 1:])) as outer:
        with zipfile.ZipFile(io.BytesIO(outer.read("payload.zip"))) as inner:
            return set(inner.namelist())


def test_the_installed_plugin_prints_the_crds_columns(dist: Path, tools: dict[str, Path], tmp_path: Path,
                                                      api_server: tuple[str, list[str]]) -> None:
    """`get` reads the printer columns from the plugin's copy of the CRDs (debugcap/crds, a link in
    the repository): the single file must carry them."""
    url, paths = api_server
    env = _user_env(tmp_path, tools, url)
    kubectl = str(tools["kubectl"])
    res = _run([kubectl, "krew", "install", f"--manifest={MANIFEST}", f"--archive={dist}"], env)
    assert res.returncode == 0, res.stderr
    installed = (Path(env["KREW_ROOT"]) / "bin" / "kubectl-debugcap").resolve()
    crds = sorted((REPO / "crds").glob("*.yaml"))
    assert {f"site/debugcap/crds/{p.name}" for p in crds} <= _payload_names(installed)

    doc = yaml.safe_load((REPO / "crds" / "debugcap.io_debugcaptures.yaml").read_text())
    printed = next(v for v in doc["spec"]["versions"] if v.get("storage"))["additionalPrinterColumns"]
    for args, wide in ((["get"], False), (["get", "-o", "wide"], True)):
        got = _run([kubectl, "debugcap", *args], env)
        assert got.returncode == 0 and "Traceback" not in got.stderr, got.stdout + got.stderr
        header, row, *rest = got.stdout.splitlines()
        assert re.split(r"\s{2,}", header.strip()) == ["NAME", *(
            c["name"].upper() for c in printed if wide or not c.get("priority"))], got.stdout
        assert row.startswith("api-1-debug-full ") and "Succeeded" in row and not rest, got.stdout
        assert ("OOMKilled" in row) == wide, got.stdout
    assert any("/debugcaptures" in p for p in paths), paths



def _bundle(directory: Path) -> Path:
    when = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)
    fields = manifest.ManifestFields(capture=manifest.CaptureInfo("cap-1", "debug-full"),
                                     target=manifest.TargetInfo("prod", "api-1", "app"),
                                     started_at=when, finished_at=when)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("prod", "api-1", when)) as w:
        w.add_bytes(layout.log_path("app"), b"hello\nAuthorization: Bearer abcdefghijklmnop\n")
        return w.finish(fields).path


def test_the_single_file_runs_on_a_clean_python(dist: Path, tmp_path: Path) -> None:
    with tarfile.open(dist) as tar:
        tar.extract("kubectl-debugcap", tmp_path, filter="data")
    executable = tmp_path / "kubectl-debugcap"
    python = str(clean_python())
    # Nothing of the project's: an empty environment but PATH, isolated mode, another directory.
    env = {"PATH": "/usr/bin:/bin"}
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([python, "-I", str(executable), *args], env, cwd=work)

    helped = run("--help")
    assert helped.returncode == 0 and "Usage: kubectl debugcap" in helped.stdout, helped.stderr
    bundle = _bundle(work)
    verified = run("verify", str(bundle))
    assert verified.returncode == 0 and ": OK (" in verified.stdout, verified.stdout + verified.stderr
    redacted = run("redact", str(bundle), "--report", str(work / "report.json"))
    assert redacted.returncode == 0, redacted.stderr
    again = run("verify", str(work / "prod_api-1_20261123T160000Z.redacted.tar.gz"))
    assert again.returncode == 0, again.stdout + again.stderr
    bundle.write_bytes(bundle.read_bytes()[:-100])  # cut short
    failed = run("verify", str(bundle))
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr


def test_the_single_file_uses_its_own_packages_only(dist: Path, tmp_path: Path) -> None:
    """Not isolated mode this time: a PYTHONPATH with a broken click must not reach the plugin."""
    with tarfile.open(dist) as tar:
        tar.extract("kubectl-debugcap", tmp_path, filter="data")
    poisoned = tmp_path / "poisoned" / "click"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('the PYTHONPATH click was imported')\n")
    env = {"PATH": f"{clean_python().parent}:/usr/bin:/bin", "PYTHONPATH": str(poisoned.parent),
           "DEBUGCAP_ZIPAPP_CACHE": str(tmp_path / "cache")}
    res = _run([str(tmp_path / "kubectl-debugcap"), "--version"], env)
    assert res.returncode == 0 and res.stdout.strip() == f"kubectl debugcap, version {__version__}", res.stderr
    assert [p.name for p in (tmp_path / "cache" / "debugcap-zipapp").iterdir()][0].startswith(__version__)
