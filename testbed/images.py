"""The testbed's container images: defined in ``recipes.py`` and ``debug_images.py``, written by
``oci.py``, never pulled."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from testbed import debug_images, layout, oci, recipes

IMAGE_CACHE = layout.CACHE / "images"


def build_all() -> dict[str, Path]:
    """Image reference -> OCI archive, rebuilt only when the sources changed."""
    archives = recipes.build_all(IMAGE_CACHE)
    goapp_bin = recipes.build_goapp_binary(IMAGE_CACHE)
    busybox = Path("/bin/busybox")
    recipe = Path(debug_images.__file__).resolve()
    for name, inputs, build in debug_images.jobs(goapp_bin, busybox):
        out = IMAGE_CACHE / f"{name}.oci.tar"
        key = recipes._file_key(recipe, Path(oci.__file__).resolve(), *inputs)
        if not recipes._up_to_date(out, key):
            build(out)
            recipes._mark(out, key)
        archives[name] = out
    return {layout.IMAGES[name]: path for name, path in archives.items()}


def operator_archive() -> Path:
    """The operator's image (``recipes.OPERATOR_REF``) built from this checkout, rebuilt only when the
    project's sources or the interpreter changed. Its packages come from ``pip install --target``
    (PyPI, or pip's cache)."""
    repo = layout.REPO
    h = hashlib.sha256(f"{sys.version}\0{oci._FORMAT_VERSION}\0".encode())
    recipe = [repo / "pyproject.toml", repo / "testbed" / "oci.py", repo / "testbed" / "recipes.py",
              repo / "testbed" / "images.py"]
    for path in sorted([*recipe, *(repo / "debugcap").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(repo).as_posix().encode() + b"\0" + path.read_bytes())
    key = h.hexdigest()[:16]
    out = IMAGE_CACHE / "operator.tar"
    if recipes._up_to_date(out, key):
        return out
    site = IMAGE_CACHE / "operator-site"
    shutil.rmtree(site, ignore_errors=True)
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    # A copy of the sources, not the checkout: pip builds in place and would leave build/ behind.
    src = IMAGE_CACHE / "operator-src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(repo, src, ignore=shutil.ignore_patterns(".git", ".venv", ".testbed", "__pycache__", "tests",
                                                             "*.egg-info", "build"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-script-location",
                    "--target", str(site), str(src)], check=True)
    recipes.operator_image(out, site)
    recipes._mark(out, key)
    shutil.rmtree(src, ignore_errors=True)
    return out
