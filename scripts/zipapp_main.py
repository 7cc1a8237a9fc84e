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


MARKER = ".debugcap-zipapp-complete"  # written into a directory once it is completely unpacked


def builds_dir():
    """Where builds are unpacked: ``debugcap-zipapp/`` in DEBUGCAP_ZIPAPP_CACHE, else in the
    user's cache directory. Always a directory of its own: only what is in it is ever removed."""
    base = (os.environ.get("DEBUGCAP_ZIPAPP_CACHE") or os.environ.get("XDG_CACHE_HOME")
            or os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(base, "debugcap-zipapp")


def private_tmp_dir():
    """Fallback when the cache cannot be used: a per-user directory under the temp dir."""
    return os.path.join(tempfile.gettempdir(), f"debugcap-zipapp-{os.getuid()}")


def private_dir(path):
    """``path``, made (mode 0700) if missing; refused (PermissionError) unless it is a directory,
    not a link, of this user, that no one else can write to: another user must not be able to put
    code where this one imports from."""
    try:
        os.makedirs(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path} is not a directory private to you (yours, not a link, "
                              "writable by you only)")
    _check_ancestors(path)
    return path


def _check_ancestors(path):
    """Each directory above ``path`` is this user's or root's, and writable by no one else unless
    sticky (/tmp): whoever may rename entries in one could swap a checked directory for theirs."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        info = os.stat(parent)
        shared = info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX
        if info.st_uid not in (os.getuid(), 0) or shared:
            raise PermissionError(f"{parent} (above {path}) can be changed by another user")
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


def _is_build(name):
    """A name as BUILD_ID writes it: ``<version>-<16 hex digits>``."""
    version, _, digest = name.rpartition("-")
    return bool(version) and len(digest) == 16 and all(c in "0123456789abcdef" for c in digest)


def _discard(path, beside):
    """Move ``path`` out of the way (into a temporary directory in ``beside``) and remove it."""
    trash = tempfile.mkdtemp(prefix=".stale.", dir=beside)
    try:
        os.rename(path, os.path.join(trash, "x"))
    except OSError:
        pass  # another process moved it first
    shutil.rmtree(trash, ignore_errors=True)


def extract(archive, key, builds):
    """``<builds>/<BUILD_ID>/<key>``, unpacked from ``<key>/`` of the payload if not there complete.

    Unpacked into a temporary directory beside it, marked complete and renamed into place: two
    processes starting at once (shell completion) do not collide, and a directory without its
    marker (an unpack cut short, files removed by a temp-file cleaner) is unpacked again.
    """
    build_dir = private_dir(os.path.join(builds, build.BUILD_ID))
    final = os.path.join(build_dir, key)
    if os.path.isfile(os.path.join(final, MARKER)):
        return final
    tmp = tempfile.mkdtemp(prefix="." + key + ".", dir=build_dir)
    try:
        _unpack(archive, key + "/", tmp)
        with open(os.path.join(tmp, MARKER), "w") as marker:
            marker.write(build.BUILD_ID + "\n")
        if os.path.isfile(os.path.join(final, MARKER)):
            return final  # another process finished first, and may be importing from it already
        if os.path.lexists(final):
            _discard(final, build_dir)  # incomplete: cut short, or thinned by a temp-file cleaner
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isfile(os.path.join(final, MARKER)):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _unpack(archive, prefix, target_dir):
    with zipfile.ZipFile(archive) as outer, outer.open(PAYLOAD) as inner_file:
        with zipfile.ZipFile(inner_file) as inner:
            for info in inner.infolist():
                if not info.filename.startswith(prefix) or info.filename.endswith("/"):
                    continue
                parts = info.filename[len(prefix):].split("/")
                if ".." in parts or "" in parts:
                    _fail(f"the archive is damaged (member {info.filename!r}); download it again")
                target = os.path.join(target_dir, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with inner.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)


def tidy(builds, keep_days=14):
    """Mark this build used today, and remove other builds no run has used for ``keep_days`` (each
    upgrade unpacks a new one; several versions in use at once each keep theirs). Only directories
    named as builds are, holding a complete unpack (its marker), are removed."""
    now = time.time()
    mine = os.path.join(builds, build.BUILD_ID)
    try:
        if now - os.stat(mine).st_mtime > 3600:
            os.utime(mine)
        for name in os.listdir(builds):
            other = os.path.join(builds, name)
            if name == build.BUILD_ID or not _is_build(name):
                continue
            info = os.lstat(other)
            if (stat.S_ISDIR(info.st_mode) and now - info.st_mtime > keep_days * 86400
                    and os.path.isfile(os.path.join(other, "site", MARKER))):
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


def unsupported():
    """Why this interpreter cannot load the payload (what it is), or None: another implementation
    or version than those carried, a free-threaded build (extension modules are built for the GIL
    ABI) or, on Linux, a libc other than glibc (musl: the wheels are manylinux)."""
    major, minor = sys.version_info[:2]
    what = f"{sys.implementation.name} {major}.{minor}"
    if sys.implementation.name != "cpython" or f"cp{major}{minor}" not in build.PYTHONS:
        return what
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return f"the free-threaded {what} ({major}.{minor}t)"
    if sys.platform.startswith("linux"):
        import platform

        libc = platform.libc_ver()[0]
        if libc != "glibc":
            return f"{what} with {libc or 'a C library other than glibc'} (musl?)"
    return None


def setup(archive):
    """The payload for this interpreter on sys.path; exits with one clear line when there is none."""
    what = unsupported()
    if what:
        carried = ", ".join(f"{t[2]}.{t[3:]}" for t in build.PYTHONS)
        _fail(f"this single-file build runs on CPython {carried} (with the GIL; on Linux with glibc); this is "
              f"{what}. Install the plugin with `pipx install debugcap` (or pip) instead")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    paths = error = None
    for where in (builds_dir, private_tmp_dir):
        builds = where()
        try:
            private_dir(builds)
            paths = [extract(archive, key, builds) for key in ("site", tag)]
            break
        except OSError as exc:
            error = exc
    if paths is None:
        _fail(f"cannot unpack the archive ({error}); set DEBUGCAP_ZIPAPP_CACHE to a directory of yours "
              "that only you can write to")
    tidy(builds)
    sys.path[1:1] = paths
    return paths


def main():
    archive = _archive()
    isolate(archive)
    paths = setup(archive)
    try:
        from debugcap.kubectl_plugin.cli import main as cli_main
    except ImportError as exc:  # files of the unpacked copy removed since: unpack it again next time
        for path in paths:
            try:
                os.unlink(os.path.join(path, MARKER))
            except OSError:
                pass
        _fail(f"cannot import the plugin from {os.path.dirname(paths[0])} ({exc}); it is unpacked again "
              "at the next run")
    cli_main()


if __name__ == "__main__":
    main()
