"""The testbed's container images: defined in ``recipes.py`` and ``debug_images.py``, written by
``oci.py``, never pulled. The operator's image is the Dockerfile's, built and pushed to the
testbed's registry by ``make image`` (``image_build.py``)."""

from __future__ import annotations

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

