"""testbed/oci.py: archive structure, determinism and the contents of our images.

The archive is re-parsed here with tarfile/json/hashlib rather than with
helpers from oci.py, so a bug in the writer cannot hide itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed import oci, recipes

BUSYBOX = Path("/bin/busybox")


@dataclass
class Image:
    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]
    blobs: dict[str, bytes]
    layers: list[dict[str, tarfile.TarInfo]]

    def entry(self, path: str) -> tarfile.TarInfo:
        """Entry from the topmost layer that has it (our images never shadow files)."""
        for layer in reversed(self.layers):
            if path in layer:
                return layer[path]
        raise KeyError(path)

    def paths(self) -> set[str]:
        return {p for layer in self.layers for p in layer}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_archive(path: Path) -> Image:
    files: dict[str, bytes] = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                files[m.name] = f.read()
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    blobs = {}
    for name, data in files.items():
        if name.startswith("blobs/"):
            algo, hexdigest = name.split("/")[1:]
            assert algo == "sha256"
            assert hashlib.sha256(data).hexdigest() == hexdigest, f"blob {name} does not match its name"
            blobs[f"sha256:{hexdigest}"] = data
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    digests = {m["digest"] for m in index["manifests"]}
    assert len(digests) == 1, "all refs in one archive name the same manifest"
    desc = index["manifests"][0]
    manifest_bytes = blobs[desc["digest"]]
    assert desc["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    cdesc = manifest["config"]
    assert cdesc["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config_bytes = blobs[cdesc["digest"]]
    assert cdesc["size"] == len(config_bytes)
    config = json.loads(config_bytes)

    layers = []
    diff_ids = []
    for ldesc in manifest["layers"]:
        assert ldesc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        gz = blobs[ldesc["digest"]]
        assert ldesc["size"] == len(gz)
        raw = gzip.decompress(gz)
        diff_ids.append(_sha(raw))
        with tarfile.open(fileobj=io.BytesIO(raw)) as ltar:
            layers.append({"/" + m.name: m for m in ltar.getmembers()})
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    assert set(blobs) == digests | {cdesc["digest"]} | {ld["digest"] for ld in manifest["layers"]}
    return Image(index=index, manifest=manifest, config=config, blobs=blobs, layers=layers)


# ---------------------------------------------------------------------------
# build_image on synthetic inputs


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    p = tmp_path / "payload.bin"
    p.write_bytes(b"#!/bin/sh\necho hello\n")
    return p


def _build(out: Path, payload: Path) -> oci.BuiltImage:
    return oci.build_image(
        out,
        ["myapp:dev", "debugcap.test/myapp:v1"],
        [
            {"/usr/local/bin/app": oci.File(payload, 0o755), "/tmp": oci.Dir(0o1777)},
            {"/etc/motd": oci.Bytes(b"hi\n"), "/bin/app": oci.Symlink("/usr/local/bin/app")},
        ],
        entrypoint=["/usr/local/bin/app"],
        cmd=["--flag"],
        env={"FOO": "bar"},
        workdir="/tmp",
        user="65534:65534",
        labels={"x": "y"},
    )


def test_structure_digests_and_config(tmp_path: Path, payload: Path) -> None:
    built = _build(tmp_path / "img.tar", payload)
    img = read_archive(built.path)

    names = [
        (m["annotations"]["io.containerd.image.name"], m["annotations"]["org.opencontainers.image.ref.name"])
        for m in img.index["manifests"]
    ]
    assert names == [("docker.io/library/myapp:dev", "dev"), ("debugcap.test/myapp:v1", "v1")]
    assert all(m["platform"] == {"architecture": "amd64", "os": "linux"} for m in img.index["manifests"])
    assert img.index["manifests"][0]["digest"] == built.manifest_digest
    assert built.refs == ("docker.io/library/myapp:dev", "debugcap.test/myapp:v1")
    assert list(built.diff_ids) == img.config["rootfs"]["diff_ids"]
    assert len(img.layers) == 2

    assert img.config["os"] == "linux"
    assert img.config["architecture"] == "amd64"
    cc = img.config["config"]
    assert cc["Entrypoint"] == ["/usr/local/bin/app"]
    assert cc["Cmd"] == ["--flag"]
    assert cc["WorkingDir"] == "/tmp"
    assert cc["User"] == "65534:65534"
    assert cc["Labels"] == {"x": "y"}
    assert cc["Env"][0].startswith("PATH=/") and "FOO=bar" in cc["Env"]


def test_layer_entries(tmp_path: Path, payload: Path) -> None:
    img = read_archive(_build(tmp_path / "img.tar", payload).path)
    app = img.entry("/usr/local/bin/app")
    assert app.isfile() and stat.S_IMODE(app.mode) == 0o755
    # Parents are materialised so the runtime never has to invent them.
    for parent in ("/usr", "/usr/local", "/usr/local/bin", "/etc", "/bin"):
        assert img.entry(parent).isdir()
    assert stat.S_IMODE(img.entry("/tmp").mode) == 0o1777
    link = img.entry("/bin/app")
    assert link.issym() and link.linkname == "/usr/local/bin/app"
    for layer in img.layers:
        names = list(layer)
        assert names == sorted(names)
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in layer.values())


def test_deterministic(tmp_path: Path, payload: Path) -> None:
    a = _build(tmp_path / "a.tar", payload)
    b = _build(tmp_path / "b.tar", payload)
    assert a.manifest_digest == b.manifest_digest
    assert a.path.read_bytes() == b.path.read_bytes()
    payload.write_bytes(b"changed")
    assert _build(tmp_path / "c.tar", payload).manifest_digest != a.manifest_digest


def test_explicit_path_env_is_kept(tmp_path: Path, payload: Path) -> None:
    built = oci.build_image(tmp_path / "i.tar", "x:1", [{"/x": oci.File(payload)}], env={"PATH": "/x"})
    assert read_archive(built.path).config["config"]["Env"] == ["PATH=/x"]


@pytest.mark.parametrize(
    "bad",
    [{p: oci.Dir()} for p in ("relative", "/", "/a/../b", "/a/", "//a", "/a/./b")],
)
def test_rejects_bad_paths(tmp_path: Path, bad: dict[str, oci.Source]) -> None:
    with pytest.raises(ValueError):
        oci.build_image(tmp_path / "i.tar", "x:1", [bad])
    assert not (tmp_path / "i.tar").exists()


def test_rejects_file_used_as_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="used as a directory"):
        oci.build_image(tmp_path / "i.tar", "x:1", [{"/a": oci.Bytes(b""), "/a/b": oci.Bytes(b"")}])


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("goapp:dev", "docker.io/library/goapp:dev"),
        ("goapp", "docker.io/library/goapp:latest"),
        ("user/goapp:1", "docker.io/user/goapp:1"),
        ("docker.io/goapp:1", "docker.io/library/goapp:1"),
        ("debugcap.test/goapp:dev", "debugcap.test/goapp:dev"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
        ("localhost/a:1", "localhost/a:1"),
    ],
)
def test_normalize_ref(ref: str, want: str) -> None:
    assert oci.normalize_ref(ref) == want


@pytest.mark.parametrize("ref", ["", "a@sha256:00", "Upper:1", "a:", "a b"])
def test_normalize_ref_rejects(ref: str) -> None:
    with pytest.raises(ValueError):
        oci.normalize_ref(ref)


# ---------------------------------------------------------------------------
# The real testbed images (needs go, gcc and busybox-static)

@pytest.fixture(scope="module")
def toolchain() -> None:
    # Required, not optional (.ci/run installs them): a skip would hide these tests.
    assert shutil.which("go") or Path("/usr/local/go/bin/go").exists(), "needs the Go toolchain"
    assert shutil.which("gcc"), "needs gcc (apt-get install gcc)"
    assert BUSYBOX.exists(), f"needs {BUSYBOX} (apt-get install busybox-static)"


needs_toolchain = pytest.mark.usefixtures("toolchain")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return recipes.build_all(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def images(built: dict[str, Path]) -> dict[str, Image]:
    return {name: read_archive(path) for name, path in built.items()}


def _refs(img: Image) -> list[str]:
    return [m["annotations"]["io.containerd.image.name"] for m in img.index["manifests"]]


@needs_toolchain
def test_build_all_names_and_refs(images: dict[str, Image]) -> None:
    assert set(images) == {"pause", "goapp", "goapp-distroless", "goapp-localhost", "goapp-nodiag"}
    assert _refs(images["goapp-nodiag"]) == ["debugcap.test/goapp-nodiag:dev"]
    assert _refs(images["goapp"]) == ["debugcap.test/goapp:dev"]
    assert _refs(images["goapp-distroless"]) == ["debugcap.test/goapp-distroless:dev"]
    assert _refs(images["goapp-localhost"]) == ["debugcap.test/goapp-localhost:dev"]
    assert _refs(images["pause"]) == [f"registry.k8s.io/pause:{t}" for t in recipes.DEFAULT_PAUSE_TAGS]
    assert "registry.k8s.io/pause:3.10" in _refs(images["pause"])
    for img in images.values():
        for m in img.index["manifests"]:
            assert (
                m["annotations"]["org.opencontainers.image.ref.name"]
                == m["annotations"]["io.containerd.image.name"].rsplit(":", 1)[1]
            )


@needs_toolchain
def test_goapp_image_has_busybox_tools(images: dict[str, Image]) -> None:
    img = images["goapp"]
    assert img.config["config"]["Entrypoint"] == ["/goapp"]
    goapp = img.entry("/goapp")
    assert goapp.isfile() and stat.S_IMODE(goapp.mode) == 0o755
    bb = img.entry("/bin/busybox")
    assert bb.isfile() and stat.S_IMODE(bb.mode) == 0o755
    available = set(subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True).stdout.split())
    wanted = {"sh", "ps", "netstat", "df", "du", "env", "cat", "ls", "sleep", "head", "tail", "sort", "wc"}
    wanted |= {"find", "grep", "awk", "sed", "timeout", "yes", "dd"}
    for applet in wanted:
        link = img.entry(f"/bin/{applet}")
        assert link.issym() and link.linkname == "busybox", applet
    # Only applets busybox really has are linked (Debian's build has no lsof).
    for path in img.paths():
        if path.startswith("/bin/") and path != "/bin/busybox":
            assert path.removeprefix("/bin/") in available, path
    assert stat.S_IMODE(img.entry("/tmp").mode) == 0o1777
    etc = _file_contents(img, "/etc/passwd")
    assert etc.startswith(b"root:x:0:0:") and b"\nnobody:x:65534:65534:" in etc
    assert b"nogroup:x:65534:" in _file_contents(img, "/etc/group")
    assert b"localhost" in _file_contents(img, "/etc/hosts")
    assert "GOAPP_LISTEN=127.0.0.1:6060" not in img.config["config"]["Env"]


def _file_contents(img: Image, path: str) -> bytes:
    for ldesc in reversed(img.manifest["layers"]):
        raw = gzip.decompress(img.blobs[ldesc["digest"]])
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            try:
                f = tar.extractfile(path.lstrip("/"))
            except KeyError:
                continue
            assert f is not None
            return f.read()
    raise KeyError(path)


@needs_toolchain
def test_distroless_has_no_shell(images: dict[str, Image]) -> None:
    img = images["goapp-distroless"]
    paths = img.paths()
    assert "/goapp" in paths and "/etc/passwd" in paths and "/tmp" in paths
    assert not any(p.startswith("/bin") for p in paths)
    assert not any(p.endswith(("/sh", "/busybox", "/bash", "/ash")) for p in paths)
    assert img.config["config"]["Entrypoint"] == ["/goapp"]


@needs_toolchain
def test_localhost_variant_bakes_listen_env(images: dict[str, Image]) -> None:
    env = images["goapp-localhost"].config["config"]["Env"]
    assert "GOAPP_LISTEN=127.0.0.1:6060" in env
    # Same layers as the plain image: only the config differs.
    assert images["goapp-localhost"].manifest["layers"] == images["goapp"].manifest["layers"]


@needs_toolchain
def test_nodiag_variant_has_its_own_binary(built: dict[str, Path]) -> None:
    """goapp-nodiag: the same source without GOEXPERIMENT=goroutineleakprofile and with -tags nodiag."""
    bins = built["goapp"].parent / "bin"
    goapp, nodiag = (bins / "goapp").read_bytes(), (bins / "goapp-nodiag").read_bytes()
    assert b"X:goroutineleakprofile" in goapp and b"X:goroutineleakprofile" not in nodiag
    assert b"/debug/flightrecorder" in goapp and b"/debug/flightrecorder" not in nodiag


@needs_toolchain
def test_pause_image(images: dict[str, Image]) -> None:
    img = images["pause"]
    assert img.config["config"]["Entrypoint"] == ["/pause"]
    assert img.config["config"]["User"] == "65535:65535"
    assert img.paths() == {"/pause"}


@needs_toolchain
def test_build_all_is_cached_and_deterministic(built: dict[str, Path], tmp_path: Path) -> None:
    cache = built["goapp"].parent
    before = {name: (p.stat().st_mtime_ns, p.read_bytes()) for name, p in built.items()}
    again = recipes.build_all(cache)
    assert again == built
    for name, p in again.items():
        assert p.stat().st_mtime_ns == before[name][0], f"{name} was rebuilt although nothing changed"
    # A from-scratch build of the same binary gives byte-identical archives.
    fresh = recipes.goapp_image(tmp_path / "goapp.tar", cache / "bin" / "goapp")
    assert fresh.path.read_bytes() == before["goapp"][1]


@needs_toolchain
def test_binaries_are_static(built: dict[str, Path]) -> None:
    for name in ("goapp", "pause"):
        elf = (built["goapp"].parent / "bin" / name).read_bytes()
        assert elf[:4] == b"\x7fELF"
        assert b"/lib64/ld-linux" not in elf, f"{name} has an ELF interpreter: not static"


@needs_toolchain
def test_pause_exits_zero_on_sigterm_and_reaps(built: dict[str, Path]) -> None:
    pause = built["goapp"].parent / "bin" / "pause"
    assert subprocess.run([str(pause), "-v"], capture_output=True, check=True).stdout == b"debugcap pause\n"
    # A child forks a grandchild and execs pause; the grandchild exits and must
    # not linger as a zombie.
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n    time.sleep(0.2)\n    os._exit(0)\n"
        "os.execv(sys.argv[1], [sys.argv[1]])\n"
    )
    proc = subprocess.Popen([shutil.which("python3") or "python3", "-c", script, str(pause)])
    try:
        time.sleep(1.0)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children == [], f"unreaped children: {children}"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
