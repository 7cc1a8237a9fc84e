"""Build the single-file ``kubectl-debugcap`` per platform, its krew archives and the krew manifest.

``make dist`` runs this. For each platform (default: this machine's) it writes
``dist/kubectl-debugcap-<version>-<os>-<arch>.tar.gz`` holding the executable ``kubectl-debugcap``
(a zipapp: ``#!/usr/bin/env python3`` and a zip; see docs/install.md for why not a frozen binary)
and LICENSE when the project has one, then ``deploy/krew/debugcap.yaml`` from
``deploy/krew/debugcap.template.yaml`` with each archive's ``uri`` and ``sha256``.

How the zipapp is made:

1. the project's wheel, and the plugin's runtime dependencies from pyproject.toml, are installed
   with ``pip install --target`` once per CPython version (3.11-3.14) for the platform's wheel
   tags (``--platform``, ``--only-binary=:all:``): this works for any platform from any machine;
2. only what the plugin imports is kept: the import closure of ``debugcap.kubectl_plugin``, read
   from the sources with ``ast`` (imports inside functions too), plus the few modules libraries load
   with importlib (DYNAMIC); the operator's dependencies (kopf, aiohttp, prometheus-client) and
   the asyncio Kubernetes client are left out;
3. what is the same for every Python goes under ``site/`` of the payload, the rest (packages with
   extension modules built per CPython version: pydantic-core, PyYAML, cffi, charset-normalizer)
   under ``cp3XY/``; scripts/zipapp_main.py unpacks ``site/`` and its interpreter's ``cp3XY/`` once
   per build into a cache and runs from there (docs/install.md);
4. every timestamp, permission and order is fixed, so the same sources and wheels give the same
   bytes and the same sha256 (``SOURCE_DATE_EPOCH`` or the last commit's time).

Run with the project's virtualenv Python (``pip`` is used through ``python -m pip``).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "zipapp_main.py"
TEMPLATE = REPO / "deploy" / "krew" / "debugcap.template.yaml"
CONFIG_MODULE = "_debugcap_zipapp"

# What `kubectl debugcap` imports (a unit test compares this with the import graph of
# debugcap.kubectl_plugin); their version ranges come from pyproject.toml.
PLUGIN_DEPENDENCIES = ("click", "croniter", "google-re2", "isal", "kubernetes", "minio", "protobuf", "pyyaml")
ROOTS = ("debugcap.kubectl_plugin",)
# Modules libraries import by name at run time, which no import statement shows.
DYNAMIC = {
    "google._upb._message": "protobuf picks its C implementation with importlib (else pure Python, slower)",
    "tzdata": "python-dateutil and zoneinfo read time zone data from it when the system has none",
}
# Subpackages of kept packages left out although installed: checked to be outside the closure.
PRUNE = {"kubernetes.aio": "the asyncio client (41 MB); debugcap uses the synchronous one"}
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# krew's os/arch -> pip's platform tags (manylinux2014 = glibc 2.17, what the wheels we need ship).
# google-re2 (redaction patterns) ships manylinux_2_28 and, for CPython 3.13+, only macOS 13.0+
# wheels: without the 13.0 tags pip finds none for 3.13/3.14 on a Mac. isal (bundle compression)
# ships macosx_10_15_x86_64 wheels for its recent versions.
PLATFORMS = {
    "linux/amd64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
    "linux/arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
    "darwin/amd64": ("macosx_10_12_x86_64", "macosx_10_13_x86_64", "macosx_10_9_x86_64",
                     "macosx_10_9_universal2", "macosx_10_15_x86_64", "macosx_11_0_x86_64", "macosx_13_0_x86_64",
                     "macosx_14_0_x86_64"),
    "darwin/arm64": ("macosx_11_0_arm64", "macosx_10_9_universal2", "macosx_12_0_arm64", "macosx_13_0_arm64",
                     "macosx_14_0_arm64"),
}
EXTENSION = re.compile(r"\.(so|pyd|dylib)$|\.cpython-\d+[^/]*\.so$|\.abi3\.so$")
RELEASE_URI = "https://github.com/debugcap/debugcap/releases/download/v{version}/{archive}"


def say(msg: str) -> None:
    print(f"dist: {msg}", file=sys.stderr, flush=True)


def host_platform() -> str:
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system(), platform.system().lower())
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), platform.machine())
    return f"{system}/{arch}"


def project() -> tuple[str, dict[str, str]]:
    """(version, {dependency name: its requirement as pyproject.toml writes it})."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = {}
    for req in meta["dependencies"]:
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()
        requirements[name] = req
    return meta["version"], requirements


def source_date_epoch() -> int:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    res = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True)
    return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip() else 315532800  # 1980


def pip(*args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"dist: pip {' '.join(args[:2])} failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")


def source_files() -> list[str]:
    """The files git tracks or would (not ignored ones); without git (a tarball of the sources),
    what setuptools reads: pyproject.toml, README.md and the packages."""
    res = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True)
    if res.returncode == 0:
        return [rel for rel in res.stdout.decode().split("\0") if rel]
    say("not a git checkout: building from pyproject.toml, README.md, debugcap/ and testbed/")
    return ["pyproject.toml", "README.md", *(p.relative_to(REPO).as_posix() for top in ("debugcap", "testbed")
                                             for p in (REPO / top).rglob("*") if "__pycache__" not in p.parts)]


def dirty_files() -> list[str]:
    """What ``git status`` shows as changed or untracked (nothing outside a git checkout)."""
    res = subprocess.run(["git", "status", "--porcelain", "-z"], cwd=REPO, capture_output=True)
    entries = iter(res.stdout.decode().split("\0") if res.returncode == 0 else [])
    changed = []
    for entry in entries:
        if len(entry) > 3:
            changed.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy: its source path follows
                next(entries, None)
    return changed


def _copy_resolved(path: Path, target: Path, rel: str, seen: frozenset[Path] = frozenset()) -> None:
    """``path`` copied to ``target`` as what it is or links to: a file as a file, a directory (or a
    link to one, such as ``debugcap/crds -> ../crds``) as its files. A link leading outside the
    repository, or back into a directory being copied, is left out with a warning."""
    real = path.resolve()
    if not real.is_relative_to(REPO) or real in seen:
        say(f"warning: {rel} leads to {real}, outside the repository or into itself: left out")
    elif real.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, target)
    elif real.is_dir():
        for entry in sorted(real.iterdir()):
            if entry.name != "__pycache__":
                _copy_resolved(entry, target / entry.name, f"{rel}/{entry.name}", seen | {real})


def copy_sources(source: Path) -> None:
    """The project's source files copied into ``source``, links replaced by what they point to:
    git and a source tarball keep ``debugcap/crds`` as a link, which setuptools would not follow."""
    for rel in source_files():
        path = REPO / rel
        if path.is_symlink() or path.is_file():
            _copy_resolved(path, source / rel, rel)


def build_wheel(work: Path) -> Path:
    """The project's wheel, built from a copy of its source files: setuptools builds in ``build/``
    of the tree it is given, where files deleted since would linger and end up in the wheel."""
    source = work / "src"
    copy_sources(source)
    pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "wheel"), str(source))
    (wheel,) = (work / "wheel").glob("debugcap-*.whl")
    return wheel


def install(target: Path, wheel: Path, requirements: list[str], tags: Iterable[str], python: str) -> None:
    shutil.rmtree(target, ignore_errors=True)
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    pip("install", "--quiet", "--no-compile", "--target", str(target), "--only-binary=:all:",
        "--implementation", "cp", "--python-version", python, *platforms, str(wheel), *requirements)
    reproducible(target)


def reproducible(target: Path) -> None:
    """What pip writes that depends on the machine, out of a ``--target`` directory: where a local
    wheel came from (a temporary path, direct_url.json) and the console scripts (bin/, left out of
    the payload, whose shebangs name the builder's Python), with their lines in each RECORD."""
    for origin in target.glob("*.dist-info/direct_url.json"):
        origin.unlink()
    for record in target.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        gone = f"{record.parent.name}/direct_url.json,"
        kept = [line for line in lines if not line.startswith((gone, "../"))]
        if kept != lines:
            record.write_text("".join(kept))


# --- what the plugin imports -------------------------------------------------------------------


def modules(site: Path) -> dict[str, Path]:
    """Every importable module under ``site`` by dotted name (packages by their ``__init__``)."""
    found: dict[str, Path] = {}
    for path in site.rglob("*"):
        rel = path.relative_to(site)
        if any(part.endswith((".dist-info", ".data")) or part == "__pycache__" for part in rel.parts):
            continue
        if path.suffix == ".py":
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
        elif EXTENSION.search(path.name):
            parts = [*rel.parent.parts, path.name.split(".", 1)[0]]
        else:
            continue
        if parts and all(p.isidentifier() for p in parts):
            found[".".join(parts)] = path
    return found


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def closure(site: Path, roots: Iterable[str], extra: Iterable[str] = ()) -> set[str]:
    """The modules reached from ``roots`` (every module under them) by import statements, with
    their parent packages; names not under ``site`` (the standard library) are left out."""
    known = modules(site)
    todo = [m for m in known if any(m == r or m.startswith(r + ".") for r in roots)] + list(extra)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            parent = ".".join(parts[:i])
            if parent in known and parent not in seen:
                seen.add(parent)
                path = known[parent]
                if path.suffix != ".py":
                    continue
                try:
                    tree = ast.parse(path.read_bytes(), str(path))
                except SyntaxError:
                    continue
                todo.extend(_imported(tree, parent, path.name == "__init__.py"))
    return seen


# --- what goes where in the archive ------------------------------------------------------------


def units(site: Path) -> list[str]:
    """Relative paths that move as one: top-level modules, packages, dist-info directories; a
    namespace package (a directory without ``__init__.py``) is split into its own entries."""
    found: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            rel = entry.relative_to(site).as_posix()
            if entry.name == "__pycache__" or (directory == site and entry.name == "bin"):
                continue
            if entry.is_dir() and not (entry / "__init__.py").exists() and not entry.name.endswith(".dist-info"):
                walk(entry)
            else:
                found.append(rel)

    walk(site)
    return found


def _unit_modules(unit: str) -> str:
    return re.sub(r"(\.py|\.[^/]*\.so|\.so|\.pyd)$", "", unit).replace("/", ".")


def kept_units(site: Path, reached: set[str]) -> list[str]:
    """Units holding a reached module, and the dist-info of each distribution that owns one."""
    keep = [u for u in units(site) if not u.endswith(".dist-info") and any(
        m == _unit_modules(u) or m.startswith(_unit_modules(u) + ".") for m in reached)]
    for info in (u for u in units(site) if u.endswith(".dist-info")):
        record = site / info / "RECORD"
        owned = {line.split(",", 1)[0] for line in record.read_text().splitlines()} if record.exists() else set()
        if any(path == u or path.startswith(u + "/") for path in owned for u in keep):
            keep.append(info)
    return sorted(keep)


def files_of(site: Path, unit: str, pruned: Iterable[str] = ()) -> list[str]:
    """Relative paths of the files of ``unit``, without __pycache__ and the pruned subpackages."""
    root = site / unit
    if root.is_file():
        return [unit]
    skip = [p.replace(".", "/") + "/" for p in pruned]
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(site).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not any(rel.startswith(s) for s in skip):
            out.append(rel)
    return out


def digest(site: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode() + b"\0" + hashlib.sha256((site / rel).read_bytes()).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class Placement:
    """Where each file of the staged sites goes in the archive: {archive path: source file}."""

    files: dict[str, Path]
    pythons: tuple[str, ...]  # cp311, ...


def place(sites: dict[str, Path], reached: set[str]) -> Placement:
    """Units the same for every Python under site/, the others under cp3XY/, one copy per Python."""
    tags = list(sites)
    first = sites[tags[0]]
    keep = sorted(set().union(*(set(kept_units(site, reached)) for site in sites.values())))
    pruned = [p for p in PRUNE if not any(m == p or m.startswith(p + ".") for m in reached)]
    files: dict[str, Path] = {}
    for unit in keep:
        per_tag = {t: files_of(s, unit, pruned) if (s / unit).exists() else [] for t, s in sites.items()}
        digests = {t: digest(sites[t], f) for t, f in per_tag.items()}
        if len(set(digests.values())) == 1:
            files.update({f"site/{rel}": first / rel for rel in per_tag[tags[0]]})
        else:
            for tag, rels in per_tag.items():
                files.update({f"{tag}/{rel}": sites[tag] / rel for rel in rels})
    return Placement(files, tuple(tags))


# --- writing -----------------------------------------------------------------------------------


def _zip(entries: dict[str, Path | bytes], when: int, method: int) -> bytes:
    """A zip of ``entries`` with their directories, fixed times and permissions, in name order."""
    directories = {"/".join(n.split("/")[:i]) + "/" for n in entries for i in range(1, n.count("/") + 1)}
    stamp = _zip_time(when)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=9 if method == zipfile.ZIP_DEFLATED else None) as zf:
        for name in sorted([*directories, *entries]):
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = method
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
                continue
            source = entries[name]
            info.external_attr = 0o644 << 16
            zf.writestr(info, source if isinstance(source, bytes) else source.read_bytes())
    return buf.getvalue()


def write_zipapp(target: Path, placement: Placement, version: str, when: int) -> str:
    """The executable: a shebang line and a zip of three members, the bootstrap (``__main__.py``),
    its configuration and ``payload.zip`` (what the bootstrap unpacks once per build: zipimport
    would read a central directory of thousands of entries and compile every module at every
    start, doubling the start-up time). Returns the build id."""
    ids = hashlib.sha256()
    for name in sorted(placement.files):
        ids.update(name.encode() + b"\0" + hashlib.sha256(placement.files[name].read_bytes()).digest())
    build_id = f"{version}-{ids.hexdigest()[:16]}"
    config = (f'"""Written by scripts/build_dist.py."""\nVERSION = {version!r}\nBUILD_ID = {build_id!r}\n'
              f"PYTHONS = {placement.pythons!r}\n")
    payload = _zip(dict(placement.files), when, zipfile.ZIP_DEFLATED)
    outer = _zip({"__main__.py": BOOTSTRAP.read_bytes(), f"{CONFIG_MODULE}.py": config.encode(),
                  "payload.zip": payload}, when, zipfile.ZIP_STORED)
    target.write_bytes(b"#!/usr/bin/env python3\n" + outer)
    target.chmod(0o755)
    return build_id


def _zip_time(when: int) -> tuple[int, int, int, int, int, int]:
    import time

    t = time.gmtime(max(when, 315532800))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2)


def write_archive(target: Path, executable: Path, when: int) -> str:
    """The krew archive (tar.gz, fixed metadata); returns its sha256."""
    members = [("kubectl-debugcap", executable, 0o755)]
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        if (REPO / name).is_file():
            members.append((name, REPO / name, 0o644))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = path.stat().st_size, mode, when
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = gzip.compress(raw.getvalue(), compresslevel=9, mtime=when)
    target.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def render_manifest(version: str, archives: dict[str, tuple[str, str]]) -> str:
    """deploy/krew/debugcap.template.yaml with ``version`` and one platform per archive."""
    blocks = []
    for plat in sorted(archives):
        uri, sha = archives[plat]
        os_name, arch = plat.split("/")
        blocks.append(f"  - selector:\n      matchLabels:\n        os: {os_name}\n        arch: {arch}\n"
                      f"    uri: {uri}\n    sha256: {sha}\n    bin: kubectl-debugcap\n")
    text = TEMPLATE.read_text()
    header = "# Generated by `make dist` (scripts/build_dist.py) from debugcap.template.yaml: do not edit.\n"
    return header + text.replace("{{VERSION}}", f"v{version}").replace("  {{PLATFORMS}}\n", "".join(blocks))


def build_platform(plat: str, pythons: tuple[str, ...], wheel: Path, requirements: list[str],
                   work: Path) -> Placement:
    sites = {}
    for python in pythons:
        tag = "cp" + python.replace(".", "")
        say(f"{plat}: dependencies for CPython {python}")
        install(work / plat.replace("/", "-") / tag, wheel, requirements, PLATFORMS[plat], python)
        sites[tag] = work / plat.replace("/", "-") / tag
    reached = closure(next(iter(sites.values())), ROOTS, DYNAMIC)
    for sub in PRUNE:
        if any(m == sub or m.startswith(sub + ".") for m in reached):
            raise SystemExit(f"dist: {sub} is imported by the plugin now; take it out of PRUNE")
    return place(sites, reached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="os/arch to build (repeatable); default: this machine's")
    parser.add_argument("--python", action="append", choices=PYTHONS,
                        help="CPython versions whose native parts to carry (repeatable); default: all")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--manifest", type=Path, default=REPO / "deploy" / "krew" / "debugcap.yaml")
    parser.add_argument("--uri", default=RELEASE_URI,
                        help="archive URI pattern with {version} and {archive} (default: the GitHub release)")
    args = parser.parse_args(argv)
    plats = args.platform or [host_platform()]
    unknown = [p for p in plats if p not in PLATFORMS]
    if unknown:
        raise SystemExit(f"dist: no wheel tags known for {', '.join(unknown)}; known: {', '.join(PLATFORMS)}")
    pythons = tuple(sorted(set(args.python or PYTHONS)))
    version, deps = project()
    requirements = [deps[name] for name in PLUGIN_DEPENDENCIES]
    when = source_date_epoch()
    args.out.mkdir(parents=True, exist_ok=True)
    dirty = dirty_files()
    if dirty:
        say(f"warning: the working tree has changes not committed ({len(dirty)}: {', '.join(dirty[:5])}"
            f"{', ...' if len(dirty) > 5 else ''}); these archives are not what the last commit builds")
    archives = {}
    with tempfile.TemporaryDirectory(prefix="debugcap-dist-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(work)
        for plat in plats:
            placement = build_platform(plat, pythons, wheel, requirements, work)
            stem = f"kubectl-debugcap-{version}-{plat.replace('/', '-')}"
            executable = args.out / stem
            build_id = write_zipapp(executable, placement, version, when)
            archive = args.out / f"{stem}.tar.gz"
            sha = write_archive(archive, executable, when)
            archives[plat] = (args.uri.format(version=version, archive=archive.name), sha)
            say(f"{archive}: {archive.stat().st_size >> 10} KiB, sha256 {sha} (build {build_id})")
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    args.manifest.write_text(render_manifest(version, archives))
    say(f"krew manifest: {args.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
