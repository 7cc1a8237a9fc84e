"""Images for the shell-less work (issue 11): the toolbox an ephemeral debug container runs, and
goapp as people really ship it (distroless ``nonroot``, ``FROM scratch``). Built like the rest
(``oci.build_image``, nothing pulled) and imported with them by :func:`testbed.images.build_all`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from testbed import oci, recipes

TOOLBOX_REFS = ("debugcap.test/toolbox:dev",
                # debugcap's default debug image (settings.DEFAULT_DEBUG_IMAGE), so the default works
                # on the testbed without a pull, as the pause image does for the kubelet.
                "docker.io/library/busybox:1.37")
GOAPP_NONROOT_REF = "debugcap.test/goapp-nonroot:dev"
GOAPP_SCRATCH_REF = "debugcap.test/goapp-scratch:dev"
NONROOT = "65532"  # distroless' nonroot user and group


def toolbox_image(out: Path, busybox: Path) -> oci.BuiltImage:
    """Debian's static busybox with its applets as /bin/*; readable and runnable by any UID, since
    the debug container runs as its target's user."""
    layer: dict[str, oci.Source] = {"/bin/busybox": oci.File(busybox, 0o755), "/tmp": oci.Dir(0o1777)}
    for applet in recipes._busybox_applets(busybox):
        layer[f"/bin/{applet}"] = oci.Symlink("busybox")
    return oci.build_image(out, list(TOOLBOX_REFS), [layer], cmd=["sh"], workdir="/")


def goapp_nonroot_image(out: Path, goapp_bin: Path) -> oci.BuiltImage:
    """Like gcr.io/distroless/static:nonroot: no shell, USER 65532:65532 in the image config only
    (pod specs rarely repeat it)."""
    passwd = f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
    layer: dict[str, oci.Source] = {
        "/goapp": oci.File(goapp_bin, 0o755),
        "/tmp": oci.Dir(0o1777),
        "/home/nonroot": oci.Dir(0o755),
        "/etc/passwd": oci.Bytes(passwd.encode()),
        "/etc/group": oci.Bytes(f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode()),
    }
    return oci.build_image(out, GOAPP_NONROOT_REF, [layer], entrypoint=["/goapp"], workdir="/",
                           user=f"{NONROOT}:{NONROOT}", exposed_ports=["6060/tcp"])


def goapp_scratch_image(out: Path, goapp_bin: Path) -> oci.BuiltImage:
    """``FROM scratch`` + the binary: not even /etc or /tmp."""
    return oci.build_image(out, GOAPP_SCRATCH_REF, [{"/goapp": oci.File(goapp_bin, 0o755)}],
                           entrypoint=["/goapp"], exposed_ports=["6060/tcp"])


def jobs(goapp_bin: Path, busybox: Path) -> list[tuple[str, list[Path], Callable[[Path], oci.BuiltImage]]]:
    """(name, inputs, build) for each image here; ``images.build_all`` caches them by their inputs."""
    return [
        ("toolbox", [busybox], lambda p: toolbox_image(p, busybox)),
        ("goapp-nonroot", [goapp_bin], lambda p: goapp_nonroot_image(p, goapp_bin)),
        ("goapp-scratch", [goapp_bin], lambda p: goapp_scratch_image(p, goapp_bin)),
    ]
