"""The ``__main__.py`` of the single-file ``kubectl-debugcap`` (a zipapp built by scripts/build_dist.py).

The archive holds this file, ``_debugcap_zipapp.py`` (VERSION, BUILD_ID, PYTHONS) and
``payload.zip``: debugcap and its dependencies, ``site/`` the same for every Python, ``cp3XY/`` the
packages built per CPython version (pydantic-core, which the Kubernetes client needs, PyYAML, cffi,
...). On the first run of a build, ``site/`` and this interpreter's ``cp3XY/`` are unpacked into a
cache directory; every run then imports from there, as from an installed package (extension
modules cannot be imported from a zip, and importing thousands of modules from one is slow).

This file must run on old Pythons far enough to say which Python it needs (no syntax newer than
3.6), and it runs with an empty environment (``python3 -I``, no HOME): the cache directory then
comes from the password database.
"""

import os
import shutil
import stat
import sys
import sysconfig
import tempfile
import time
import zipfile

import _debugcap_zipapp as build  # generated beside this file: VERSION, BUILD_ID, PYTHONS

PAYLOAD = "payload.zip"


def _fail(message):
    sys.stderr.write("kubectl-debugcap: " + message + "\n")
    sys.exit(1)


def _archive():
    """The zipapp file this runs from (``__file__`` is ``<archive>/__main__.py``)."""
    return os.path.dirname(os.path.abspath(__file__))


def cache_root():
    """Where builds are unpacked: DEBUGCAP_ZIPAPP_CACHE, else the user's cache directory."""
    base = os.environ.get("DEBUGCAP_ZIPAPP_CACHE")
    if base:
        return base
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "debugcap", "zipapp")


def private_tmp_root():
    """Fallback when the cache cannot be written: a per-user directory under the temp dir, used only
    when it is ours and no one else can write to it."""
    path = os.path.join(tempfile.gettempdir(), f"debugcap-zipapp-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        _fail(f"{path} is not a directory private to you; remove it, or set DEBUGCAP_ZIPAPP_CACHE")
    return path


def extract(archive, key, root):
    """``<root>/<BUILD_ID>/<key>``, unpacked from ``<key>/`` of the payload if not there yet.

    Unpacked into a temporary directory beside it and renamed into place: a directory that
    exists is complete, and two processes starting at once (shell completion) do not collide.
    """
    final = os.path.join(root, build.BUILD_ID, key)
    if os.path.isdir(final):
        return final
    os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + key + ".", dir=os.path.dirname(final))
    try:
        prefix = key + "/"
        with zipfile.ZipFile(archive) as outer, outer.open(PAYLOAD) as inner_file:
            with zipfile.ZipFile(inner_file) as inner:
                for info in inner.infolist():
                    if not info.filename.startswith(prefix) or info.filename.endswith("/"):
                        continue
                    parts = info.filename[len(prefix):].split("/")
                    if ".." in parts or "" in parts:
                        _fail(f"the archive is damaged (member {info.filename!r}); download it again")
                    target = os.path.join(tmp, *parts)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with inner.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):  # not a lost race with another process: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def tidy(root, keep_days=14):
    """Mark this build used today, and remove other builds no run has used for ``keep_days`` (each
    upgrade unpacks a new one; several versions in use at once each keep theirs)."""
    now = time.time()
    mine = os.path.join(root, build.BUILD_ID)
    try:
        if now - os.stat(mine).st_mtime > 3600:
            os.utime(mine)
        for name in os.listdir(root):
            other = os.path.join(root, name)
            stale = now - os.stat(other).st_mtime > keep_days * 86400
            if name != build.BUILD_ID and not name.startswith(".") and stale:
                shutil.rmtree(other, ignore_errors=True)
    except OSError:
        pass  # housekeeping only


def isolate(archive):
    """Only the archive and the standard library on sys.path, and nothing imported from elsewhere.

    The plugin runs on its own copies of its dependencies: a python3 with other versions installed
    (Debian's python3-protobuf, a PYTHONPATH, a .pth that imported certifi at start-up) must not
    lend it theirs, not even a namespace package such as google/.
    """
    stdlib = {os.path.realpath(sysconfig.get_path(name)) for name in ("stdlib", "platstdlib")}

    def standard(path):
        real = os.path.realpath(path)
        return (any(real == s or real.startswith(s + os.sep) for s in stdlib)
                and "site-packages" not in real and "dist-packages" not in real)

    sys.path[:] = [archive] + [p for p in sys.path[1:] if p and p != archive and standard(p)]
    for name, module in list(sys.modules.items()):
        places = [getattr(module, "__file__", None) or ""] + list(getattr(module, "__path__", None) or [])
        places = [p for p in places if p]
        if places and not any(standard(p) or p.startswith(archive) for p in places):
            del sys.modules[name]


def setup(archive):
    """The payload for this interpreter on sys.path; exits with one clear line when there is none."""
    major, minor = sys.version_info[:2]
    tag = f"cp{major}{minor}"
    if sys.implementation.name != "cpython" or tag not in build.PYTHONS:
        carried = ", ".join(f"{t[2]}.{t[3:]}" for t in build.PYTHONS)
        _fail(f"this single-file build runs on CPython {carried}; this is {sys.implementation.name} "
              f"{major}.{minor}. Install the plugin with `pipx install debugcap` (or pip) instead")
    for root in (cache_root(), None):
        root = root or private_tmp_root()
        try:
            paths = [extract(archive, key, root) for key in ("site", tag)]
            break
        except OSError as exc:
            if root != cache_root():
                _fail(f"cannot unpack the archive ({exc}); set DEBUGCAP_ZIPAPP_CACHE to a writable directory")
    tidy(root)
    sys.path[1:1] = paths


def main():
    archive = _archive()
    isolate(archive)
    setup(archive)
    from debugcap.kubectl_plugin.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
