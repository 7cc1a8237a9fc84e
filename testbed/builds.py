"""Build the testbed's binaries from Go modules, once per version.

Kubernetes, etcd, MinIO, helm, Alertmanager and krew are compiled from their Go modules inside
small wrapper modules under ``testbed/gobuild/`` (their own go.mod files have
replace directives or v0.0.0 staging requirements that forbid a plain
``go install pkg@version``). Outputs land in ``CACHE/bin/<component>-<version>``
and are reused by every clone on the machine; a build goes to a temporary
directory first so an interrupted build never leaves half a binary behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed import layout

GOBUILD = Path(__file__).resolve().parent / "gobuild"

APT_PACKAGES = {
    # binary or file that proves the package is there -> Debian package
    "/usr/bin/containerd": "containerd",
    "/usr/sbin/runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/sbin/iptables": "iptables",
    "/bin/busybox": "busybox-static",
    "/usr/bin/openssl": "openssl",
    "/usr/sbin/ip": "iproute2",
    "/usr/sbin/conntrack": "conntrack",
}


def _version_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=2025-01-01T00:00:00Z",
        ]
    return " ".join(flags)


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    module_dir: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: str = "-s -w"
    minutes_cold: int = 5
    env: dict[str, str] = field(default_factory=dict)
    # Files a dependency's //go:embed needs that its module zip lacks (assets built by npm in the
    # project's own release): {module path: (path inside the module, ...)}. Such a module is
    # built from a writable copy with placeholders, through a replace directive (see _stubbed).
    embed_stubs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def bin_dir(self) -> Path:
        return layout.bin_dir(self.name, self.version)

    def path(self, binary: str) -> Path:
        return self.bin_dir / binary

    def built(self) -> bool:
        return all(self.path(b).is_file() for b in self.binaries)


COMPONENTS = (
    Component(
        "kubernetes",
        layout.K8S_VERSION,
        "kubernetes",
        tuple(f"k8s.io/kubernetes/cmd/{b}" for b in
              ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")),
        ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"),
        ldflags=_version_ldflags(layout.K8S_VERSION),
        minutes_cold=30,
    ),
    Component("etcd", layout.ETCD_VERSION, "etcd", (".",), ("etcd",), minutes_cold=3),
    Component("minio", layout.MINIO_VERSION, "minio", ("github.com/minio/minio",), ("minio",), minutes_cold=12),
    Component("helm", layout.HELM_VERSION, "helm", ("helm.sh/helm/v3/cmd/helm",), ("helm",), minutes_cold=4),
    Component("alertmanager", layout.ALERTMANAGER_VERSION, "alertmanager",
              ("github.com/prometheus/alertmanager/cmd/alertmanager",), ("alertmanager",),
              ldflags=f"-s -w -X github.com/prometheus/common/version.Version={layout.ALERTMANAGER_VERSION[1:]}",
              minutes_cold=4,
              # The web UI is built with npm for releases and is not in the module zip; the API
              # (/api/v2, /-/ready, /-/reload) is all the testbed uses.
              embed_stubs={"github.com/prometheus/alertmanager": ("ui/app/dist/elm/index.html",
                                                                  "ui/app/dist/mantine/index.html")}),
    # krew runs nothing in the testbed: tests install the plugin with it, offline, from the
    # manifest `make dist` generates. Its module has no replace directives, but a wrapper module
    # keeps its go.sum pinned here like the others'.
    Component("krew", layout.KREW_VERSION, "krew", ("sigs.k8s.io/krew/cmd/krew",), ("krew",),
              ldflags=f"-s -w -X sigs.k8s.io/krew/internal/version.gitTag={layout.KREW_VERSION}",
              minutes_cold=2),
)


def component(name: str) -> Component:
    for c in COMPONENTS:
        if c.name == name:
            return c
    raise KeyError(name)


def binary(component_name: str, binary_name: str | None = None) -> Path:
    c = component(component_name)
    return c.path(binary_name or c.binaries[0])


def say(msg: str) -> None:
    print(f"testbed: {msg}", file=sys.stderr, flush=True)


def ensure_packages() -> None:
    """Install the Debian packages the node needs, when any is missing."""
    missing = sorted({pkg for path, pkg in APT_PACKAGES.items() if not Path(path).exists()})
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def build(c: Component) -> None:
    if c.built():
        return
    go = shutil.which("go")
    if go is None:
        raise SystemExit("testbed: the Go toolchain is needed to build the cluster (install Go 1.24 or newer)")
    tmp = c.bin_dir.with_name(c.bin_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    say(f"building {c.name} {c.version} (cold: about {c.minutes_cold} min on 2 cores; cached afterwards "
        f"in {c.bin_dir})")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", **c.env)
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", c.ldflags, "-o", str(tmp) + "/", *c.packages]
    started = time.monotonic()
    workdir = _stubbed(c, go, env, tmp.with_name(tmp.name + "-src")) if c.embed_stubs else GOBUILD / c.module_dir
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    compiled = 0
    tail: list[str] = []
    stop = threading.Event()

    def progress() -> None:
        while not stop.wait(30):
            say(f"  {c.name}: {compiled} packages compiled, {time.monotonic() - started:.0f}s")

    ticker = threading.Thread(target=progress, daemon=True)
    ticker.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        compiled += 1
        tail = (tail + [line.rstrip()])[-20:]
    rc = proc.wait()
    stop.set()
    if rc != 0:
        raise SystemExit(f"testbed: building {c.name} failed (exit {rc}):\n" + "\n".join(tail))
    if len(c.packages) == 1 and c.packages[0] == ".":
        # `go build -o dir/ .` names the binary after the module's last element.
        produced = tmp / Path(c.module_dir).name
        if produced.exists() and produced.name != c.binaries[0]:
            produced.rename(tmp / c.binaries[0])
    shutil.rmtree(c.bin_dir, ignore_errors=True)
    tmp.rename(c.bin_dir)
    _remove(tmp.with_name(tmp.name + "-src"))
    say(f"built {c.name} in {time.monotonic() - started:.0f}s")


def _stubbed(c: Component, go: str, env: dict[str, str], scratch: Path) -> Path:
    """A copy of c's wrapper module whose embed-stubbed dependencies are writable copies.

    The module cache is read-only and ``go build -overlay`` refuses files under it, so each such
    module is copied (checked against the wrapper's go.sum when downloaded), given its
    placeholders, and swapped in with ``replace``; the wrapper's go.sum still pins everything else.
    """
    _remove(scratch)
    wrapper = scratch / "wrapper"
    shutil.copytree(GOBUILD / c.module_dir, wrapper)
    for i, (module, files) in enumerate(sorted(c.embed_stubs.items())):
        res = subprocess.run([go, "mod", "download", "-json", module], cwd=wrapper, env=env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"testbed: downloading {module} for {c.name} failed:\n{res.stdout}{res.stderr}")
        copy = scratch / f"src{i}"
        shutil.copytree(json.loads(res.stdout)["Dir"], copy)
        for d in (copy, *(p for p in copy.rglob("*") if p.is_dir())):
            d.chmod(0o755)
        for name in files:
            stub = copy / name
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(f"<!doctype html><title>{c.name}</title><p>Built by the debugcap testbed without "
                            "its web UI; the HTTP API works.\n")
        subprocess.run([go, "mod", "edit", f"-replace={module}=../{copy.name}"], cwd=wrapper, env=env, check=True)
    return wrapper


def _remove(tree: Path) -> None:
    """rmtree, also of a copy interrupted while its directories were still read-only (0555)."""
    if tree.exists():
        for d in (tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())):
            d.chmod(0o755)
    shutil.rmtree(tree, ignore_errors=True)


def ensure_all() -> None:
    ensure_packages()
    for c in COMPONENTS:
        build(c)
