"""The testbed's images: what is in each (goapp and its variants, pause), how their
binaries are built, and ``build_all``, which rebuilds an archive only when its inputs changed.
Archives are written by :mod:`testbed.oci`; ``images.py`` imports them into the node.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from testbed import oci
from testbed.oci import _FORMAT_VERSION, BuiltImage, Bytes, Dir, File, Source, Symlink, build_image

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
    # Hashing these files too means a change to an image definition, or to how archives are
    # written, rebuilds it.
    recipe, writer = Path(__file__).resolve(), Path(oci.__file__).resolve()
    for name, inputs, extra, build in jobs:
        out = cache / f"{name}.oci.tar"
        key = _file_key(recipe, writer, *inputs) + ":" + extra
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
