"""``make image`` and ``make deploy``: the repository's ``Dockerfile`` built by buildah into the
testbed's registry, and the chart installed from it.

* The base image (the Dockerfile's ``BASE_IMAGE``, in place of ``python:3.11-slim``) is made here:
  ``mmdebstrap`` of Debian bookworm with python3 (3.11) and a venv at ``/usr/local`` (so ``pip``
  installs without PEP 668's refusal and ``debugcap-operator`` lands in ``/usr/local/bin``, as in
  the official image), pushed as ``<registry>/debugcap/python-base:<key>``.
* buildah (vfs storage, chroot isolation: no daemon, no overlay mounts) builds the Dockerfile. The
  build's ``pip`` uses the host's package index settings: a pip.conf made from ``pip config list``
  and the host's CA bundle are bind-mounted into each RUN step, never written into a layer.
* Everything is keyed by content and cached in ``layout.CACHE / "image-build"`` (the rootfs tar,
  buildah's storage and its layer cache), so a warm ``make image`` only checks the registry.

Nothing here falls back to the hand-assembled image of ``testbed/images.py``: without buildah or
mmdebstrap it stops with ``BuildError`` naming the package to install.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed import builds, layout, registry

BUILD_CACHE = layout.CACHE / "image-build"
STORAGE = BUILD_CACHE / "buildah"


def runroot_for(cache: Path) -> Path:
    """buildah's lock files and mount state (and the build's secrets), on tmpfs, never in the
    cache; one per cache directory, so the cache's lock (``exclusive``) covers it too: two
    checkouts with their own caches never share it."""
    digest = hashlib.sha256(str(cache.resolve()).encode()).hexdigest()[:12]
    return Path("/run") / f"debugcap-image-build-{digest}"


RUNROOT = runroot_for(BUILD_CACHE)

BASE_REPOSITORY = "debugcap/python-base"
OPERATOR_REPOSITORY = "debugcap/operator"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What the image never needs at run time; left out at unpack time (dpkg), not deleted after.
BASE_PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
                      "/usr/share/lintian/*")
# The host's Acquire:: options (proxies, a snapshot mirror's validity) apply only while
# bootstrapping: a setup hook copies them in under this name and a customize hook removes them.
# mmdebstrap's --aptopt would have written them into 99mmdebstrap for good.
HOST_APT_CONF = "00debugcap-host"
# What the image's own apt uses, as in python:3.11-slim: mmdebstrap pastes the mirrors it was given
# (the host's sources) into the chroot, and they name the host's mirror, not the image's.
IMAGE_SOURCES = f"""\
Types: deb
URIs: http://deb.debian.org/debian
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
IMAGE_SOURCES_PATH = "etc/apt/sources.list.d/debian.sources"
BASE_HOOKS = (
    'chroot "$1" python3 -m venv /usr/local',
    # A build bind-mounts the host's index settings over this file; were it missing, the mount
    # point would be left behind in the image as an empty file.
    'printf "# pip settings: none here; builds mount their own over this file.\\n" > "$1"/etc/pip.conf',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*',
    f'rm -f "$1"/etc/apt/apt.conf.d/99mmdebstrap "$1"/etc/apt/apt.conf.d/{HOST_APT_CONF} '
    '"$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*',
    f'printf %s {shlex.quote(IMAGE_SOURCES)} > "$1"/{IMAGE_SOURCES_PATH}',
)
BASE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# Bumped when what this module does to an image changes in a way the inputs below do not show.
RECIPE_VERSION = "2"

# pip settings that say where packages come from and how to reach it; find-links and the like name
# host directories a build container does not have.
PIP_KEYS = frozenset({"index-url", "extra-index-url", "trusted-host", "cert", "timeout", "default-timeout",
                      "retries", "proxy"})
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONTEXT_FILES = ("Dockerfile", "pyproject.toml", "README.md")


class BuildError(RuntimeError):
    """The image could not be built, pushed or deployed; the message names the cause and the fix."""


def say(msg: str) -> None:
    builds.say(msg)


# ---------------------------------------------------------------- pure pieces (unit-tested)

def pip_settings(config_list: str) -> dict[str, str]:
    """The index settings of ``pip config list`` output (``scope.key='value'`` lines), the
    environment's (``:env:``, e.g. PIP_CERT) winning over files as pip does."""
    chosen: dict[str, tuple[int, str]] = {}
    for line in config_list.splitlines():
        name, sep, raw = line.partition("=")
        if not sep or "." not in name:
            continue
        scope, _, key = name.rpartition(".")
        key = "timeout" if key == "default-timeout" else key
        if key not in PIP_KEYS:
            continue
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        rank = 1 if scope == ":env:" else 0
        if key not in chosen or rank >= chosen[key][0]:
            chosen[key] = (rank, value)
    return {key: value for key, (_, value) in chosen.items()}


def pip_conf(settings: Mapping[str, str], *, ca_path: str = CA_BUNDLE) -> str:
    """A ``[global]`` pip.conf of ``pip_settings``, its CA file pointed at ``ca_path`` (where the
    build mounts the host's, see ``pip_ca_file``)."""
    chosen = dict(settings)
    if "cert" in chosen:
        chosen["cert"] = ca_path
    lines = ["[global]"] + [f"{key} = {value}" for key, value in sorted(chosen.items())]
    return "\n".join(lines) + "\n"


def pip_ca_file(settings: Mapping[str, str]) -> str:
    """The host file the build mounts at ``CA_BUNDLE``: pip's own ``cert`` (a company CA, which
    the system bundle may not hold) or else the system bundle."""
    return settings.get("cert") or CA_BUNDLE


def content_key(parts: Iterable[tuple[str, bytes]]) -> str:
    """16 hex digits over (name, content) pairs, independent of their order."""
    h = hashlib.sha256()
    for name, data in sorted(parts):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def apt_sources(etc_apt: Path) -> list[Path]:
    """The host's enabled apt sources (``sources.list`` and ``sources.list.d/*.list`` or
    ``*.sources``; disabled files have other suffixes): the base image is bootstrapped from them."""
    return [p for p in [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*"))]
            if p.is_file() and p.suffix in (".list", ".sources") and p.read_text().strip()]


def acquire_options(dump: str) -> str:
    """The ``Acquire::`` options of ``apt-config dump`` output (how the host reaches its mirror:
    proxies, a snapshot's validity), one ``key "value";`` line each. The dump has already flattened
    block syntax (``Acquire { http::Proxy ...; }``) and merged every file. Index targets are left
    out: they say which files to fetch (appstream's DEP-11 and the like), not how."""
    kept = []
    for line in dump.splitlines():
        key = line.split(" ", 1)[0].lower()
        if key.startswith("acquire::") and not key.startswith("acquire::indextargets"):
            kept.append(line.strip())
    return "".join(f"{line}\n" for line in kept)


def mmdebstrap_argv(out: Path, sources: Sequence[Path], host_apt_conf: Path | None) -> list[str]:
    """``host_apt_conf``, a file named ``HOST_APT_CONF``, is in the chroot only while it is made."""
    setup = [f"--setup-hook=copy-in {host_apt_conf} /etc/apt/apt.conf.d"] if host_apt_conf else []
    return ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar", "--quiet",
            f"--include={','.join(BASE_PACKAGES)}",
            *(f"--dpkgopt=path-exclude={x}" for x in BASE_PATH_EXCLUDES),
            *setup,
            *(f"--customize-hook={hook}" for hook in BASE_HOOKS),
            SUITE, str(out), *(str(p) for p in sources)]


def no_proxy_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the testbed's registry in NO_PROXY and no_proxy: it is on the node's own bridge,
    which a host's HTTP(S)_PROXY cannot reach (buildah's pushes would go to the proxy)."""
    out = dict(env)
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e for e in out.get(name, "").split(",") if e.strip()]
        for host in (registry.HOST, layout.NODE_IP):
            if host not in entries:
                entries.append(host)
        out[name] = ",".join(entries)
    return out


def compressed_size(manifest: Mapping[str, object]) -> int:
    """Bytes a pull transfers: the config and every layer, as the manifest lists them."""
    blobs = [manifest.get("config"), *_as_list(manifest.get("layers"))]
    return sum(int(blob["size"]) for blob in blobs if isinstance(blob, dict))


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def project_version(pyproject: Path) -> str:
    return str(tomllib.loads(pyproject.read_text())["project"]["version"])


def context_files(repo: Path) -> list[Path]:
    """What the Dockerfile copies (plus itself), relative to ``repo``: byte-code caches left out."""
    files = [Path(name) for name in CONTEXT_FILES]
    files += sorted(p.relative_to(repo) for p in (repo / "debugcap").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)
    return files


# ---------------------------------------------------------------- buildah

def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BuildError(f"`make image` needs {tool}, which is not installed: apt-get install {package} "
                         "(.ci/run installs it); the hand-assembled image of testbed/images.py is no substitute")
    return path


def buildah(*args: str, capture: bool = True, timeout: float = 3600) -> str:
    argv = [_require("buildah", "buildah"), "--root", str(STORAGE), "--runroot", str(RUNROOT),
            "--storage-driver", "vfs", *args]
    res = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, env=no_proxy_env(os.environ))
    if res.returncode != 0:
        detail = (res.stderr or "").strip()[-3000:] if capture else "(its output is above)"
        raise BuildError(f"buildah {args[0]} failed ({res.returncode}): {detail}")
    return res.stdout if capture else ""


def _local_image(ref: str) -> str | None:
    out = buildah("images", "--format", "{{.ID}} {{.Name}}:{{.Tag}}", "--filter", f"reference={ref}")
    for line in out.splitlines():
        image_id, _, name = line.partition(" ")
        if name.strip() == ref:
            return image_id
    return None


def _push(ref: str) -> str:
    digest_file = BUILD_CACHE / "push.digest"
    buildah("push", "--tls-verify=false", "--digestfile", str(digest_file), ref, f"docker://{ref}")
    return digest_file.read_text().strip()


def _ensure_registry() -> None:
    if not registry.ready():
        raise BuildError(f"the testbed's registry at {registry.URL} is not answering: start the testbed "
                         "(python -m testbed up); its log is .testbed/logs/registry.log")


# ---------------------------------------------------------------- the base image

def base_ref() -> str:
    return f"{registry.HOST}/{BASE_REPOSITORY}:{_base_key(apt_sources(Path('/etc/apt')), _host_acquire_options())}"


def _host_acquire_options() -> str:
    res = subprocess.run(["apt-config", "dump"], capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"`apt-config dump` failed ({res.returncode}): {res.stderr.strip()[-1000:]}")
    return acquire_options(res.stdout)


def _base_key(sources: Sequence[Path], options: str) -> str:
    recipe = json.dumps([RECIPE_VERSION, SUITE, BASE_PACKAGES, BASE_PATH_EXCLUDES, BASE_HOOKS, BASE_ENV])
    return content_key([("recipe", recipe.encode()), ("acquire-options", options.encode()),
                        *((f"source:{p}", p.read_bytes()) for p in sources)])


def ensure_base() -> str:
    """The base image's reference, built (mmdebstrap), stored in buildah and pushed if missing."""
    sources = apt_sources(Path("/etc/apt"))
    if not sources:
        raise BuildError("no apt sources in /etc/apt (sources.list or sources.list.d/*.sources): the base "
                         "image is bootstrapped from the same Debian mirror as this machine")
    options = _host_acquire_options()
    key = _base_key(sources, options)
    ref = f"{registry.HOST}/{BASE_REPOSITORY}:{key}"
    started = time.monotonic()
    if _local_image(ref) is None:
        rootfs = BUILD_CACHE / f"python-base-{key}.tar"
        if not rootfs.exists():
            _bootstrap(rootfs, sources, options)
            say(f"mmdebstrap: {time.monotonic() - started:.1f}s")
        container = buildah("from", "--pull=never", "scratch").strip()
        try:
            buildah("add", container, str(rootfs), "/")
            buildah("config", *(f"--env={k}={v}" for k, v in BASE_ENV.items()), "--cmd=python3",
                    f"--label=org.debugcap.base-key={key}", container)
            buildah("commit", "--quiet", container, ref)
        finally:
            buildah("rm", container)
    if registry.manifest_digest(BASE_REPOSITORY, key) is None:
        _push(ref)
        say(f"pushed {ref}")
    say(f"base image ready: {time.monotonic() - started:.1f}s")
    return ref


def _bootstrap(rootfs: Path, sources: Sequence[Path], options: str) -> None:
    _require("mmdebstrap", "mmdebstrap")
    say(f"bootstrapping Debian {SUITE} with {', '.join(BASE_PACKAGES)} (mmdebstrap)")
    partial = rootfs.with_suffix(".partial")
    # The options may carry a proxy's credentials: private to root, gone after the bootstrap.
    with tempfile.TemporaryDirectory(prefix="debugcap-apt-") as tmp:
        conf = Path(tmp) / HOST_APT_CONF
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(options)
        res = subprocess.run(mmdebstrap_argv(partial, sources, conf if options else None),
                             capture_output=True, text=True)
    if res.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuildError(f"mmdebstrap of the base image failed ({res.returncode}): {res.stderr.strip()[-3000:]}")
    leftovers = host_apt_leftovers(partial)
    if leftovers:
        partial.unlink()
        raise BuildError(f"the bootstrapped base image still holds the host's apt settings ({', '.join(leftovers)}): "
                         "the customize hooks of BASE_HOOKS no longer remove them; fix them before pushing")
    partial.rename(rootfs)


def host_apt_leftovers(rootfs: Path) -> list[str]:
    """What in a base rootfs (a tar, or a directory such as a mounted image) still carries the
    host's apt settings: mmdebstrap's 99mmdebstrap, the host option file, any source file but the
    image's own ``IMAGE_SOURCES`` (mmdebstrap pastes the host's in as ``0000<name>``; the host's
    may even be called debian.sources, so its content is compared)."""
    if rootfs.is_dir():
        etc_apt = rootfs / "etc" / "apt"
        return _apt_leftovers((p.relative_to(rootfs).as_posix(), p.read_bytes() if p.is_file() else None)
                              for p in sorted(etc_apt.rglob("*")))
    with tarfile.open(rootfs) as tar:
        def read(member: tarfile.TarInfo) -> bytes | None:
            data = tar.extractfile(member) if member.isfile() else None
            return data.read() if data is not None else None
        return _apt_leftovers((m.name.removeprefix("./").rstrip("/"), read(m)) for m in tar
                              if m.name.removeprefix("./").startswith("etc/apt/"))


def _apt_leftovers(entries: Iterable[tuple[str, bytes | None]]) -> list[str]:
    found = []
    for path, data in entries:
        if path in (f"etc/apt/apt.conf.d/{HOST_APT_CONF}", "etc/apt/apt.conf.d/99mmdebstrap"):
            found.append(path)
        elif path == "etc/apt/sources.list" or (path.startswith("etc/apt/sources.list.d/") and data is not None):
            if path != IMAGE_SOURCES_PATH or data != IMAGE_SOURCES.encode():
                found.append(path)
    return found


@contextlib.contextmanager
def mounted(ref: str) -> Iterator[Path]:
    """The root filesystem of the local image ``ref``, read through a working container (under
    ``exclusive``: a build prunes what it does not tag)."""
    container = buildah("from", "--pull=never", ref).strip()
    try:
        yield Path(buildah("mount", container).strip())
    finally:
        buildah("rm", container)


# ---------------------------------------------------------------- the operator image

@dataclass(frozen=True)
class Built:
    ref: str
    digest: str
    key: str
    seconds: float
    size: str                # uncompressed, as `buildah images` shows it ("421 MB")
    pushed_bytes: int        # compressed: what a pull transfers
    rebuilt: bool


def operator_ref(repo: Path = layout.REPO) -> str:
    return f"{registry.HOST}/{OPERATOR_REPOSITORY}:{project_version(repo / 'pyproject.toml')}"


def _host_pip_settings() -> dict[str, str]:
    res = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"`pip config list` failed: {res.stderr.strip()}")
    return pip_settings(res.stdout)


def _stage_context(repo: Path, files: Sequence[Path]) -> Path:
    # A context of only what the Dockerfile copies: the checkout holds .testbed (containerd's root,
    # sockets) and .venv, which buildah would otherwise walk.
    context = BUILD_CACHE / "context"
    shutil.rmtree(context, ignore_errors=True)
    for rel in files:
        dest = context / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dest)
    return context


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    # Two builds at once (two test sessions, a test and `make image`) would share the staged
    # context and the stamp: the second waits for the first, then finds its result cached.
    BUILD_CACHE.mkdir(parents=True, exist_ok=True)
    with open(BUILD_CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_operator(repo: Path = layout.REPO) -> Built:
    """Build (if its inputs changed) and push ``<registry>/debugcap/operator:<version>``."""
    _require("buildah", "buildah")
    _ensure_registry()
    with exclusive():
        return _build_operator(repo)


def _build_operator(repo: Path) -> Built:
    started = time.monotonic()
    RUNROOT.mkdir(parents=True, exist_ok=True)
    # Under the lock nothing else uses them: secrets a killed build left behind.
    for stale in RUNROOT.glob("build-secrets*"):
        shutil.rmtree(stale, ignore_errors=True)
    base = ensure_base()
    ref = operator_ref(repo)
    settings = _host_pip_settings()
    conf = pip_conf(settings)
    ca_file = pip_ca_file(settings)
    try:
        ca = Path(ca_file).read_bytes()
    except OSError as err:
        raise BuildError(f"pip's CA file {ca_file} (pip config's cert, or PIP_CERT) cannot be read: {err}; "
                         "point it at an existing file or unset it") from err
    files = context_files(repo)
    key = content_key([("base", base.encode()), ("pip.conf", conf.encode()), ("recipe", RECIPE_VERSION.encode()),
                       ("pip-ca", ca),
                       *((rel.as_posix(), (repo / rel).read_bytes()) for rel in files)])
    stamp = BUILD_CACHE / "operator.json"
    try:
        last = json.loads(stamp.read_text())
    except (OSError, ValueError):
        last = {}
    rebuilt = not (last.get("key") == key and last.get("ref") == ref and _local_image(ref) == last.get("id"))
    if rebuilt:
        say(f"building {ref} from the Dockerfile (buildah, base {base})")
        build_started = time.monotonic()
        _build(repo, files, base, ref, conf, ca_file)
        say(f"buildah bud: {time.monotonic() - build_started:.1f}s")
        # vfs stores every layer as a full copy of the rootfs (~200-400 MB each): the previous
        # builds' untagged images would fill the disk. The layer cache of unchanged steps goes too;
        # what dominates a rebuild (pip wheel, the final stage) re-runs on any source change anyway.
        buildah("rmi", "--prune")
    repository, _, tag = ref.partition("/")[2].rpartition(":")
    digest = registry.manifest_digest(repository, tag)
    if rebuilt or digest is None or digest != last.get("digest"):
        push_started = time.monotonic()
        digest = _push(ref)
        say(f"pushed {ref}@{digest} in {time.monotonic() - push_started:.1f}s")
    image_id = _local_image(ref)
    stamp.write_text(json.dumps({"key": key, "ref": ref, "id": image_id, "digest": digest}))
    return Built(ref=ref, digest=digest, key=key, seconds=time.monotonic() - started, size=_storage_size(ref),
                 pushed_bytes=compressed_size(registry.manifest(repository, tag)), rebuilt=rebuilt)


def _storage_size(ref: str) -> str:
    return buildah("images", "--format", "{{.Size}}", ref).strip()


def _build(repo: Path, files: Sequence[Path], base: str, ref: str, conf: str, ca_file: str) -> None:
    context = _stage_context(repo, files)
    # mkdtemp: private (0700) and this build's own.
    secrets_dir = Path(tempfile.mkdtemp(prefix="build-secrets-", dir=RUNROOT))
    try:
        conf_file = secrets_dir / "pip.conf"
        fd = os.open(conf_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(conf)
        # Bind mounts exist only while a RUN step runs: the index settings (which may carry a
        # token in index-url) and the host's CA file never reach a layer. The CA file goes over
        # the image's bundle, a file the base has, so no mount point is left behind.
        buildah("bud", "--layers", "--isolation", "chroot", "--pull=never", "--format", "oci",
                "--build-arg", f"BASE_IMAGE={base}",
                "--volume", f"{conf_file}:/etc/pip.conf:ro", "--volume", f"{ca_file}:{CA_BUNDLE}:ro",
                "-f", str(context / "Dockerfile"), "-t", ref, str(context), capture=False)
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)


# ---------------------------------------------------------------- make deploy

DEPLOY_NAMESPACE = "debugcap-system"
DEPLOY_RELEASE = "debugcap"
DEPLOY_SECRET = "debugcap-s3"


DIGEST_ANNOTATION = "debugcap.io/image-digest"


def chart_values(ref: str, *, api_host: str, api_port: int, pull_policy: str = "Always",
                 digest: str | None = None) -> list[str]:
    """helm flags for the testbed: the image from its registry, its MinIO (keys from the Secret
    ``DEPLOY_SECRET``), and the API server's own address (the testbed has no kube-proxy, so the
    ``kubernetes`` Service's address leads nowhere).

    ``digest`` (what the tag points at) goes into a pod annotation: the tag stays the version
    across rebuilds, so without it a deploy after ``make image`` renders the same pod template and
    the running pods (pullPolicy only acts when a pod starts) keep the old code."""
    repository, _, tag = ref.rpartition(":")
    annotation = (["--set-string", f"podAnnotations.{DIGEST_ANNOTATION.replace('.', chr(92) + '.')}={digest}"]
                  if digest else [])
    return [*annotation, "--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
            "--set", f"image.pullPolicy={pull_policy}",
            "--set", f"s3.endpoint={layout.NODE_IP}:{layout.S3_PORT}", "--set", "s3.secure=false",
            "--set", f"s3.bucket={layout.S3_BUCKET}", "--set", f"s3.existingSecret={DEPLOY_SECRET}",
            "--set", "operator.extraEnv[0].name=KUBERNETES_SERVICE_HOST",
            "--set", f"operator.extraEnv[0].value={api_host}",
            "--set", "operator.extraEnv[1].name=KUBERNETES_SERVICE_PORT",
            "--set-string", f"operator.extraEnv[1].value={api_port}"]


def s3_secret_manifest(namespace: str, name: str = DEPLOY_SECRET) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": name, "namespace": namespace},
                       "stringData": {"accessKey": layout.S3_ACCESS_KEY, "secretKey": layout.S3_SECRET_KEY}})


def _run(argv: list[str], *, stdin: str | None = None, timeout: float = 600) -> str:
    env = {**os.environ, "KUBECONFIG": str(layout.Paths().kubeconfig)}
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode != 0:
        raise BuildError(f"{Path(argv[0]).name} {' '.join(argv[1:3])} failed ({res.returncode}): "
                         f"{res.stderr.strip()[-3000:]}")
    return res.stdout


def deploy(ref: str | None = None, *, timeout: float = 300) -> float:
    """``helm upgrade --install`` of charts/debugcap into ``debugcap-system`` from the registry's
    image; returns the seconds until the operator's Deployment was Ready."""
    ref = ref or operator_ref()
    repository, _, tag = ref.partition("/")[2].rpartition(":")
    digest = registry.manifest_digest(repository, tag)
    if digest is None:
        raise BuildError(f"{ref} is not in the testbed's registry: run `make image` first")
    kubectl = str(builds.binary("kubernetes", "kubectl"))
    helm = str(builds.binary("helm"))
    started = time.monotonic()
    namespace = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEPLOY_NAMESPACE}})
    _run([kubectl, "apply", "-f", "-"], stdin=namespace)
    # The keys go in through stdin, never on a command line another user could read in /proc.
    _run([kubectl, "apply", "-f", "-"], stdin=s3_secret_manifest(DEPLOY_NAMESPACE))
    _run([helm, "upgrade", "--install", DEPLOY_RELEASE, str(layout.REPO / "charts" / "debugcap"),
          "--namespace", DEPLOY_NAMESPACE,
          *chart_values(ref, api_host=layout.NODE_IP, api_port=layout.APISERVER_PORT, digest=digest),
          "--wait", f"--timeout={int(timeout)}s"], timeout=timeout + 30)
    # The chart names the Deployment after a release whose name contains "debugcap".
    _run([kubectl, "-n", DEPLOY_NAMESPACE, "rollout", "status", f"deployment/{DEPLOY_RELEASE}",
          f"--timeout={int(timeout)}s"], timeout=timeout + 30)
    return time.monotonic() - started


def undeploy() -> None:
    helm = str(builds.binary("helm"))
    _run([helm, "uninstall", DEPLOY_RELEASE, "--namespace", DEPLOY_NAMESPACE, "--ignore-not-found", "--wait"])
