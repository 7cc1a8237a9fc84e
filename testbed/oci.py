"""Write OCI image-layout archives by hand (the images themselves: ``recipes.py``).

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
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
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
    "build_image",
    "normalize_ref",
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
