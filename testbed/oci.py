"""Write OCI image-layout archives by hand, and define the testbed's images.

The testbed has no Docker engine and no registry: images are built here as
OCI image-layout tarballs and loaded with ``ctr -n k8s.io images import``.
Only the stdlib is used so this works before any tooling is installed.

Output is deterministic (fixed mtimes and owners, sorted entries, gzip mtime 0),
so the same inputs always give the same manifest digest; that is what lets
``build_all`` skip work and lets containerd see "same image" on re-import.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BuiltImage",
    "Bytes",
    "Dir",
    "File",
    "Layer",
    "Source",
    "Symlink",
    "DEFAULT_PAUSE_TAGS",
    "GOAPP_REF",
    "GOAPP_DISTROLESS_REF",
    "GOAPP_LOCALHOST_REF",
    "GOAPP_NODIAG_REF",
    "build_all",
    "build_goapp_binary",
    "build_image",
    "build_pause_binary",
    "goapp_distroless_image",
    "goapp_image",
    "goapp_localhost_image",
    "goapp_nodiag_image",
    "normalize_ref",
    "pause_image",
]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Bump when the archive layout written here changes, so build_all's cache
# stamps from an older oci.py are not trusted.
_FORMAT_VERSION = "1"

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAPP_SRC = REPO_ROOT / "tests" / "fixtures" / "goapp"
PAUSE_SRC = REPO_ROOT / "testbed" / "images" / "pause"

GOAPP_REF = "debugcap.test/goapp:dev"
GOAPP_DISTROLESS_REF = "debugcap.test/goapp-distroless:dev"
GOAPP_LOCALHOST_REF = "debugcap.test/goapp-localhost:dev"
GOAPP_NODIAG_REF = "debugcap.test/goapp-nodiag:dev"
# goapp serves /debug/pprof/goroutineleak (Go 1.26's experiment; standard from Go 1.27);
# goapp-nodiag is built without it and with the `nodiag` tag (no flight recorder handler).
GOAPP_GOEXPERIMENT = "goroutineleakprofile"
PAUSE_REPO = "registry.k8s.io/pause"
# 3.10 is what current kubelets/kubeadm ask for; 3.6 is the built-in
# sandbox_image of Debian's containerd 1.6.20 (`containerd config default`).
# Shipping both under one manifest means neither config ever tries a pull.
DEFAULT_PAUSE_TAGS: tuple[str, ...] = ("3.10", "3.6")

# Applets we want in the goapp image. Debian's busybox-static has no lsof, so
# the list is intersected with `busybox --list` at build time.
BUSYBOX_APPLETS: tuple[str, ...] = (
    "awk", "cat", "cut", "date", "dd", "df", "du", "echo", "env", "false", "find", "free",
    "grep", "head", "hostname", "id", "kill", "ls", "lsof", "mkdir", "nc", "netstat", "pidof",
    "ps", "pwd", "readlink", "rm", "sed", "sh", "sleep", "sort", "stat", "tail", "tee", "timeout",
    "top", "touch", "tr", "true", "uname", "uniq", "uptime", "wc", "wget", "xargs", "yes",
)  # fmt: skip


# ---------------------------------------------------------------------------
# Layer sources


@dataclass(frozen=True)
class File:
    """A regular file copied from the host."""

    src: Path
    mode: int = 0o644


@dataclass(frozen=True)
class Bytes:
    """A regular file with inline content (e.g. /etc/passwd)."""

    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    """A directory. Parents of other entries are created as 0755 if not listed."""

    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    """A symbolic link; ``target`` is stored verbatim (relative or absolute)."""

    target: str


Source = File | Bytes | Dir | Symlink
#: In-image absolute path -> what to put there.
Layer = Mapping[str, Source]


@dataclass(frozen=True)
class BuiltImage:
    """What ``build_image`` wrote."""

    path: Path
    refs: tuple[str, ...]
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]


# ---------------------------------------------------------------------------
# References


def normalize_ref(ref: str) -> str:
    """Normalise like docker/containerd: ``goapp:dev`` -> ``docker.io/library/goapp:dev``.

    Digest references are rejected: an archive names images by tag only.
    """
    if "@" in ref:
        raise ValueError(f"digest references are not supported: {ref!r}")
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise ValueError(f"invalid image reference: {ref!r}")
    name, tag = ref, "latest"
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1 :]
        if not tag:
            raise ValueError(f"empty tag in {ref!r}")
    first, _, rest = name.partition("/")
    # Same rule as the docker reference grammar: the first component is a
    # registry host only if it looks like one.
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if path != path.lower():
        raise ValueError(f"repository must be lowercase: {ref!r}")
    return f"{domain}/{path}:{tag}"


def _tag_of(normalized: str) -> str:
    return normalized.rsplit(":", 1)[1]


# ---------------------------------------------------------------------------
# Blobs and layers


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(obj: object) -> bytes:
    # Canonical-ish JSON so the same config/manifest always hashes the same.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _check_path(path: str) -> str:
    if not path.startswith("/") or path == "/":
        raise ValueError(f"in-image path must be absolute and not '/': {path!r}")
    norm = posixpath.normpath(path)
    # normpath keeps a leading '//' (POSIX allows it to be special); treat as unnormalised.
    if norm != path or path.startswith("//"):
        raise ValueError(f"in-image path must be normalised: {path!r}")
    return path.lstrip("/")


def _with_parents(layer: Layer) -> dict[str, Source]:
    entries: dict[str, Source] = {}
    for path, src in layer.items():
        entries[_check_path(path)] = src
    for name in list(entries):
        parent = posixpath.dirname(name)
        while parent:
            existing = entries.get(parent)
            if existing is None:
                entries[parent] = Dir()
            elif not isinstance(existing, Dir):
                raise ValueError(f"/{parent} is used as a directory but declared as {existing!r}")
            parent = posixpath.dirname(parent)
    return entries


def _layer_tar(layer: Layer) -> bytes:
    """Uncompressed layer tar; its sha256 is the config's diff_id."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, src in sorted(_with_parents(layer).items()):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            data: bytes | None = None
            if isinstance(src, Dir):
                info.type = tarfile.DIRTYPE
                info.mode = src.mode
            elif isinstance(src, Symlink):
                info.type = tarfile.SYMTYPE
                info.linkname = src.target
                info.mode = 0o777
            else:
                data = src.src.read_bytes() if isinstance(src, File) else src.data
                info.type = tarfile.REGTYPE
                info.mode = src.mode
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    # mtime=0 and no filename in the header: both would otherwise vary per build.
    return gzip.compress(data, compresslevel=6, mtime=0)


# ---------------------------------------------------------------------------
# Image archive


def build_image(
    out_path: Path | str,
    ref: str | Sequence[str],
    layers: Sequence[Layer],
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    labels: Mapping[str, str] | None = None,
    exposed_ports: Sequence[str] = (),
) -> BuiltImage:
    """Write an OCI image-layout tar for one linux/amd64 image.

    ``ref`` may be several references; all of them name the same manifest
    (``ctr images import`` creates one image per index entry).
    ``env`` gets a default ``PATH`` unless it sets one. The archive is written
    to a temporary file and renamed, so readers never see a partial archive.
    """
    out = Path(out_path)
    refs = [ref] if isinstance(ref, str) else list(ref)
    if not refs:
        raise ValueError("at least one image reference is required")
    normalized = tuple(dict.fromkeys(normalize_ref(r) for r in refs))

    blobs: dict[str, bytes] = {}
    layer_descs: list[dict[str, object]] = []
    diff_ids: list[str] = []
    for layer in layers:
        raw = _layer_tar(layer)
        gz = _gzip(raw)
        d = _digest(gz)
        blobs[d] = gz
        diff_ids.append(_digest(raw))
        layer_descs.append({"mediaType": MEDIA_LAYER_GZIP, "digest": d, "size": len(gz)})

    env_map = dict(env or {})
    env_list = [f"{k}={v}" for k, v in env_map.items()]
    if "PATH" not in env_map:
        env_list.insert(0, DEFAULT_PATH)
    container_config: dict[str, object] = {"Env": env_list}
    if entrypoint is not None:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    if workdir:
        container_config["WorkingDir"] = workdir
    if user:
        container_config["User"] = user
    if labels:
        container_config["Labels"] = dict(labels)
    if exposed_ports:
        container_config["ExposedPorts"] = {p: {} for p in exposed_ports}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "debugcap testbed/oci.py"} for _ in layers],
    }
    config_bytes = _json_bytes(config)
    config_digest = _digest(config_bytes)
    blobs[config_digest] = config_bytes

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descs,
    }
    manifest_bytes = _json_bytes(manifest)
    manifest_digest = _digest(manifest_bytes)
    blobs[manifest_digest] = manifest_bytes

    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    ANNOTATION_REF_NAME: _tag_of(n),
                    ANNOTATION_CONTAINERD_NAME: n,
                },
            }
            for n in normalized
        ],
    }

    files: list[tuple[str, bytes | None]] = [
        ("blobs", None),
        ("blobs/sha256", None),
        *((f"blobs/sha256/{d.removeprefix('sha256:')}", b) for d, b in sorted(blobs.items())),
        ("index.json", _json_bytes(index)),
        ("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"})),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        # mkstemp creates 0600; archives are meant to be read by other users/tools.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.mtime = 0
                info.uname = info.gname = ""
                if data is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                else:
                    info.mode = 0o644
                    info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return BuiltImage(
        path=out,
        refs=normalized,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digests=tuple(str(d["digest"]) for d in layer_descs),
        diff_ids=tuple(diff_ids),
    )


# ---------------------------------------------------------------------------
# The testbed's images


def _etc_files(shell: str) -> dict[str, Source]:
    passwd = f"root:x:0:0:root:/root:{shell}\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    group = "root:x:0:\nnogroup:x:65534:\n"
    return {
        "/etc/passwd": Bytes(passwd.encode()),
        "/etc/group": Bytes(group.encode()),
    }


def _busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout
    available = set(out.split())
    return [a for a in BUSYBOX_APPLETS if a in available]


def goapp_image(
    out_path: Path | str,
    goapp_bin: Path,
    *,
    busybox: Path = Path("/bin/busybox"),
    ref: str = GOAPP_REF,
    env: Mapping[str, str] | None = None,
) -> BuiltImage:
    """goapp plus a static busybox with the applets debugging needs, as /bin/*."""
    base: dict[str, Source] = {
        "/bin/busybox": File(busybox, 0o755),
        "/tmp": Dir(0o1777),
        "/root": Dir(0o700),
        "/etc/hosts": Bytes(b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        "/etc/nsswitch.conf": Bytes(b"hosts: files dns\n"),
        # Scripts commonly use `#!/usr/bin/env sh`.
        "/usr/bin/env": Symlink("/bin/busybox"),
        **_etc_files("/bin/sh"),
    }
    for applet in _busybox_applets(busybox):
        base[f"/bin/{applet}"] = Symlink("busybox")
    app: dict[str, Source] = {"/goapp": File(goapp_bin, 0o755)}
    return build_image(
        out_path,
        ref,
        [base, app],
        entrypoint=["/goapp"],
        env=env,
        workdir="/",
        exposed_ports=["6060/tcp"],
    )


def goapp_distroless_image(
    out_path: Path | str, goapp_bin: Path, *, ref: str = GOAPP_DISTROLESS_REF
) -> BuiltImage:
    """goapp alone: no shell or tools, so debugcap must cope without `exec sh`."""
    layer: dict[str, Source] = {
        "/goapp": File(goapp_bin, 0o755),
        "/tmp": Dir(0o1777),
        **_etc_files("/sbin/nologin"),
    }
    return build_image(out_path, ref, [layer], entrypoint=["/goapp"], workdir="/", exposed_ports=["6060/tcp"])


def goapp_localhost_image(
    out_path: Path | str,
    goapp_bin: Path,
    *,
    busybox: Path = Path("/bin/busybox"),
    ref: str = GOAPP_LOCALHOST_REF,
) -> BuiltImage:
    """Same as goapp_image, but pprof only listens on 127.0.0.1 (not reachable via the pod IP)."""
    return goapp_image(out_path, goapp_bin, busybox=busybox, ref=ref, env={"GOAPP_LISTEN": "127.0.0.1:6060"})


def goapp_nodiag_image(
    out_path: Path | str,
    goapp_nodiag_bin: Path,
    *,
    busybox: Path = Path("/bin/busybox"),
    ref: str = GOAPP_NODIAG_REF,
) -> BuiltImage:
    """Same as goapp_image, with the binary built without goroutineleak or a flight recorder
    (``build_goapp_binary(..., nodiag=True)``): a program that serves neither."""
    return goapp_image(out_path, goapp_nodiag_bin, busybox=busybox, ref=ref)


def pause_image(
    out_path: Path | str, pause_bin: Path, *, tags: Sequence[str] = DEFAULT_PAUSE_TAGS
) -> BuiltImage:
    """The sandbox image, under every ``registry.k8s.io/pause:<tag>`` in ``tags``."""
    return build_image(
        out_path,
        [f"{PAUSE_REPO}:{t}" for t in tags],
        [{"/pause": File(pause_bin, 0o755)}],
        entrypoint=["/pause"],
        # Same unprivileged user as the upstream pause image.
        user="65535:65535",
    )


# ---------------------------------------------------------------------------
# Building binaries and archives, with input-hash caching


def _hash_inputs(root: Path, suffixes: tuple[str, ...], *extra: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name.endswith(suffixes):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    for e in extra:
        h.update(b"\0" + e.encode())
    return h.hexdigest()


def _tool_version(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.splitlines()[0]


def _up_to_date(out: Path, key: str) -> bool:
    stamp = out.with_name(out.name + ".inputs")
    return out.exists() and stamp.exists() and stamp.read_text() == key


def _mark(out: Path, key: str) -> None:
    out.with_name(out.name + ".inputs").write_text(key)


def _find_go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise FileNotFoundError("go toolchain not found (PATH or /usr/local/go/bin/go)")
    return go


def build_goapp_binary(cache_dir: Path | str, *, src: Path = GOAPP_SRC, nodiag: bool = False) -> Path:
    """Static goapp binary in ``cache_dir/bin``; rebuilt only if sources or go version changed.

    Built with ``GOEXPERIMENT=goroutineleakprofile`` (it serves /debug/pprof/goroutineleak) and
    its flight recorder; ``nodiag`` builds ``bin/goapp-nodiag`` without the experiment and with
    the ``nodiag`` tag (no /debug/flightrecorder)."""
    out = Path(cache_dir) / "bin" / ("goapp-nodiag" if nodiag else "goapp")
    go = _find_go()
    args = ["build", "-trimpath", *(["-tags", "nodiag"] if nodiag else []), "-o"]
    experiment = "" if nodiag else GOAPP_GOEXPERIMENT
    key = _hash_inputs(src, (".go", "go.mod", "go.sum"), _tool_version([go, "version"]), repr(args), experiment)
    if _up_to_date(out, key):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOOS="linux", GOARCH="amd64", GOFLAGS="-buildvcs=false",
               GOEXPERIMENT=experiment)
    # The Go module cache and build cache need a writable home; some callers
    # (systemd units, sudo -i) have none.
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(Path(cache_dir) / "go-build")
    # Sources are stdlib-only and go.mod says go 1.26: never fetch a toolchain.
    env["GOTOOLCHAIN"] = "local"
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run([go, *args, str(tmp), "."], cwd=src, env=env, check=True)
    os.replace(tmp, out)
    _mark(out, key)
    return out


def build_pause_binary(cache_dir: Path | str, *, src: Path = PAUSE_SRC) -> Path:
    """Static, stripped pause binary in ``cache_dir/bin``."""
    out = Path(cache_dir) / "bin" / "pause"
    cc = shutil.which("gcc") or "gcc"
    flags = ["-static", "-Os", "-s", "-Wall", "-Wextra"]
    key = _hash_inputs(src, (".c",), _tool_version([cc, "--version"]), repr(flags))
    if _up_to_date(out, key):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run([cc, *flags, "-o", str(tmp), str(src / "pause.c")], check=True)
    os.replace(tmp, out)
    _mark(out, key)
    return out


def _file_key(*paths: Path) -> str:
    h = hashlib.sha256(_FORMAT_VERSION.encode())
    for p in paths:
        h.update(str(p).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def build_all(
    cache_dir: Path | str,
    *,
    pause_tags: Sequence[str] = DEFAULT_PAUSE_TAGS,
    busybox: Path = Path("/bin/busybox"),
) -> dict[str, Path]:
    """Compile goapp and pause and write every testbed image archive into ``cache_dir``.

    Returns ``{"pause", "goapp", "goapp-distroless", "goapp-localhost", "goapp-nodiag"}`` -> archive path.
    Archives whose inputs (binaries, this module's format, parameters) did not
    change are left alone.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    goapp_bin = build_goapp_binary(cache)
    goapp_nodiag_bin = build_goapp_binary(cache, nodiag=True)
    pause_bin = build_pause_binary(cache)
    applets = ",".join(_busybox_applets(busybox))

    result: dict[str, Path] = {}
    jobs: list[tuple[str, list[Path], str, Callable[[Path], BuiltImage]]] = [
        ("pause", [pause_bin], repr(list(pause_tags)), lambda p: pause_image(p, pause_bin, tags=pause_tags)),
        ("goapp", [goapp_bin, busybox], applets, lambda p: goapp_image(p, goapp_bin, busybox=busybox)),
        ("goapp-distroless", [goapp_bin], "", lambda p: goapp_distroless_image(p, goapp_bin)),
        (
            "goapp-localhost",
            [goapp_bin, busybox],
            applets,
            lambda p: goapp_localhost_image(p, goapp_bin, busybox=busybox),
        ),
        (
            "goapp-nodiag",
            [goapp_nodiag_bin, busybox],
            applets,
            lambda p: goapp_nodiag_image(p, goapp_nodiag_bin, busybox=busybox),
        ),
    ]
    # Hashing this file too means a change to an image definition rebuilds it.
    this_file = Path(__file__).resolve()
    for name, inputs, extra, build in jobs:
        out = cache / f"{name}.oci.tar"
        key = _file_key(this_file, *inputs) + ":" + extra
        if not _up_to_date(out, key):
            build(out)
            _mark(out, key)
        result[name] = out
    return result


if __name__ == "__main__":
    import sys

    for image_name, archive in build_all(
        sys.argv[1] if len(sys.argv) > 1 else ".cache/testbed-images"
    ).items():
        print(f"{image_name}\t{archive}")


# ---------------------------------------------------------------------------
# The operator's image (built on demand by the chart's e2e test, not at `testbed up`)

OPERATOR_REF = "debugcap.test/operator:dev"
OPERATOR_SITE = "/opt/debugcap/site"
# Parts of the standard library an operator never imports; leaving them out keeps the image smaller.
_STDLIB_SKIP = frozenset({"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data"})


def _tree(src: Path, dest: str, skip: frozenset[str] = frozenset()) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if skip & set(rel.parts):
            continue
        target = f"{dest}/{rel.as_posix()}"
        if p.is_symlink():
            out[target] = Symlink(os.readlink(p))
        elif p.is_dir():
            out[target] = Dir(0o755)
        elif p.is_file():
            out[target] = File(p, 0o755 if os.access(p, os.X_OK) else 0o644)
    return out


def _shared_libraries(binaries: Sequence[Path]) -> dict[str, Source]:
    """The shared libraries ``binaries`` load, at the paths the host's loader finds them."""
    libs: dict[str, Source] = {}
    for binary in binaries:
        res = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            m = re.search(r"(/\S+) \(0x[0-9a-f]+\)", line)
            if m and m.group(1) not in libs:
                libs[m.group(1)] = File(Path(os.path.realpath(m.group(1))), 0o755)
    return libs


def operator_image(out_path: Path | str, site: Path, *, python: Path | None = None,
                   ref: str = OPERATOR_REF) -> BuiltImage:
    """The operator as the chart runs it (``debugcap-operator``, uid 10001, read-only root): this
    host's Python interpreter and standard library, the shared libraries they and the packages
    in ``site`` (a ``pip install --target`` of the project) load, and those packages. The
    repository's Dockerfile builds the real image; there is no container engine here to run it."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    # The interpreter itself, not a venv's link to it: base_prefix is where it was installed.
    python = Path(os.path.realpath(python or Path(sys.base_prefix) / "bin" / version))
    stdlib = Path(sys.base_prefix) / "lib" / version
    runtime: dict[str, Source] = {
        f"/usr/bin/{version}": File(python, 0o755),
        "/tmp": Dir(0o1777),
        "/etc/passwd": Bytes(b"root:x:0:0:root:/root:/sbin/nologin\ndebugcap:x:10001:10001::/tmp:/sbin/nologin\n"),
        "/etc/group": Bytes(b"root:x:0:\ndebugcap:x:10001:\n"),
        "/etc/hosts": Bytes(b"127.0.0.1\tlocalhost\n"),
        "/etc/nsswitch.conf": Bytes(b"hosts: files dns\n"),
        **_tree(stdlib, f"/usr/lib/{version}", _STDLIB_SKIP),
    }
    native = [python, *(p for p in stdlib.rglob("*.so") if not _STDLIB_SKIP & set(p.relative_to(stdlib).parts)),
              *site.rglob("*.so")]
    runtime.update(_shared_libraries(native))
    app: dict[str, Source] = {
        **_tree(site, OPERATOR_SITE, frozenset({"bin"})),
        "/usr/local/bin/debugcap-operator": Bytes(
            f"#!/usr/bin/{version}\nfrom debugcap.operator.main import main\nmain()\n".encode(), 0o755),
    }
    return build_image(
        out_path, ref, [runtime, app], entrypoint=["debugcap-operator"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": OPERATOR_SITE, "PYTHONDONTWRITEBYTECODE": "1",
             "LD_LIBRARY_PATH": "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu"},
        workdir="/tmp", user="10001:10001",
    )
