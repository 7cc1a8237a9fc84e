"""Builds hostile bundles for the tests: members as given, a manifest and SHA256SUMS listing them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

STEM = "prod_api-1_20261123T160000Z"
NAME = f"{STEM}.tar.gz"
PS = b"root 1 /app\n"


def manifest_bytes(files: dict[str, bytes], pod: str = "api-1") -> bytes:
    return json.dumps({
        "format_version": 1, "debugcap_version": "0.1.0",
        "capture": {"name": "cap-1", "template": "debug-full", "parameters": {}},
        "target": {"namespace": "prod", "pod": pod, "container": "app", "node": None, "image": None},
        "started_at": "2026-11-23T16:00:00Z", "finished_at": "2026-11-23T16:00:42Z", "collectors": [],
        "files": {p: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in files.items()},
        "redactions": [], "redaction_counts": {}, "access": {}, "runtime": {}}).encode()


def link(name: str, kind: bytes = tarfile.SYMTYPE, target: str = "/etc/passwd") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def build(directory: Path, files: dict[str, bytes], *, raw: tuple[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes],
          ...] = (), manifest: bytes | None = None, listed: dict[str, bytes] | None = None, sidecar: bool = True,
          trailing: bytes = b"") -> Path:
    """``files`` are regular members under the stem; ``raw`` are members named as given (``..``, absolute,
    links, devices); ``listed`` is what the manifest and SHA256SUMS list (default: ``files``)."""
    listed = dict(files) if listed is None else listed
    man = manifest if manifest is not None else manifest_bytes(listed)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {p}\n" for p, d in listed.items()).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        items: list[tuple[tarfile.TarInfo, bytes]] = []
        for path, data in files.items():
            items.append((tarfile.TarInfo(f"{STEM}/{path}"), data))
        items += [item if isinstance(item, tuple) else (item, b"") for item in raw]
        items += [(tarfile.TarInfo(f"{STEM}/SHA256SUMS"), sums), (tarfile.TarInfo(f"{STEM}/manifest.json"), man)]
        for info, data in items:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / NAME
    blob = gzip.compress(buf.getvalue()) + trailing
    out.write_bytes(blob)
    if sidecar:
        (directory / f"{NAME}.sha256").write_text(f"{hashlib.sha256(blob).hexdigest()}  {NAME}\n")
    return out
