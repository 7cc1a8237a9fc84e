"""The testbed's container images: built locally (see ``oci.py``), never pulled."""

from __future__ import annotations

from pathlib import Path

from testbed import layout, oci

IMAGE_CACHE = layout.CACHE / "images"


def build_all() -> dict[str, Path]:
    """Image reference -> OCI archive, rebuilt only when the sources changed."""
    archives = oci.build_all(IMAGE_CACHE)
    return {layout.IMAGES[name]: path for name, path in archives.items()}
