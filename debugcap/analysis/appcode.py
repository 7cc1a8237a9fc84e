"""Which frames of a Go stack are the target's own code, and which are the profiler's.

Callers: the finding rules (:mod:`debugcap.analysis.findings`) name the first frame of a stack
that is the application's own rather than the standard library's leaf it happened to be in, and
the goroutine grouping can use the same choice. Build a :class:`Code` once per profile or dump,
then ask it about frames::

    code = Code.from_profile(profile)          # or Code.from_functions(names, files)
    code.is_own("main.burnCPU", "debugcap.test/goapp/main.go")        # True
    code.first_own([("crypto/sha256.Sum256", "crypto/sha256/sha256.go"),
                    ("main.burnCPU", "debugcap.test/goapp/main.go")])  # 1
    is_profiler("runtime/trace.(*traceMultiplexer).startLocked")       # True

Frames are ``(function, file)`` pairs, leaf first, as pprof stacks and goroutine dumps list them;
``file`` may be ``""`` when unknown. Why the decision is made from names and files: the build IDs
of a profile's mappings identify the binary, not its packages, and Go profiles do carry each
function's file. The rules, in order:

- a file under ``/vendor/`` or in a versioned module directory (``/pkg/mod/`` or ``mod@vX.Y.Z/``,
  the latter being how ``-trimpath`` writes dependencies) is a dependency's, never own;
- package ``main`` is own, and so is any package under the main module path;
- with absolute paths (no ``-trimpath``), a file under the Go root (learned from the runtime's own
  frames) is the standard library's, and any other file is own;
- a package whose first path element has no dot is the standard library's (``runtime``,
  ``sync``, ``internal/...``, ``crypto/...``, ``net/http``; a dotless main module, ``module
  myservice``, is recognised through the module path);
- any other package is own when its file is known (neither vendored nor versioned: the main
  module, or a module replaced by a local directory), and not own when it is not.

The main module path is given (from build info, when a bundle has it) or inferred: with
``-trimpath``, a ``main.*`` frame's file is ``<import path of package main>/<file>.go``, and the
module is that path's longest prefix shared with the other own packages.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from debugcap.formats import pprof as pprof_format

Frame = tuple[str, str]  # (function, file); file "" when unknown

# Versioned module directories: GOPATH's module cache, or -trimpath's "module@version/".
_VERSIONED = re.compile(r"(^|/)pkg/mod/|@v\d")

# Frames of the capture itself: the execution tracer, the CPU profiler, the pprof handlers. A
# stack through any of them measures the capture (trace buffers, profile encoding), not the target.
_PROFILER_PREFIXES = (
    "runtime/trace.", "runtime/pprof.", "net/http/pprof.", "internal/trace.", "internal/trace/",
    "runtime.trace", "runtime.(*trace", "runtime.StartTrace", "runtime.StopTrace", "runtime.ReadTrace",
    "runtime.makeTraceFrames", "runtime.(*cpuProfile)", "runtime.(*profBuf)", "runtime.readProfile",
    "runtime.setcpuprofilerate", "runtime.SetCPUProfileRate",
)
# The runtime's tracer files (trace.go, tracestack.go, tracebuf.go...), whatever the function name.
_HOSTS = ("github.com/", "gitlab.com/", "bitbucket.org/")
_PROFILER_FILES = re.compile(r"(^|/)runtime/(trace[a-z]*|cpuprof|profbuf)\.go$")


def package(function: str) -> str:
    """The import path of a Go function's package: ``net/http`` of ``net/http.(*conn).serve``."""
    # Type arguments ("main.F[go.shape.int]") may hold dots and slashes of other packages.
    name = function.split("[", 1)[0]
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot > 0 else name


def is_stdlib_path(pkg: str) -> bool:
    """A package path of the standard library's form: no dot in its first element, not ``main``."""
    first = pkg.split("/", 1)[0]
    return bool(first) and "." not in first and pkg != "main"


def is_profiler(function: str, file: str = "") -> bool:
    """A frame of the capture's own machinery (tracer, CPU profiler, pprof handlers)."""
    return function.startswith(_PROFILER_PREFIXES) or bool(file and _PROFILER_FILES.search(file))


def through_profiler(frames: Iterable[Frame]) -> bool:
    """True when a stack passes through the profiler: its cost is the capture's, not the target's."""
    return any(is_profiler(fn, file) for fn, file in frames)


def _under(pkg: str, module: str) -> bool:
    return pkg == module or pkg.startswith(module + "/")


@dataclass(frozen=True)
class Code:
    """What counts as the target's own code in one program.

    ``module``: the main module path ("" when neither given nor inferable); ``goroot``: the Go
    root's ``src/`` directory with a trailing slash when the files are absolute ("" otherwise).
    """

    module: str = ""
    goroot: str = ""

    @classmethod
    def from_functions(cls, names: Iterable[str], files: Iterable[str], module: str = "") -> Code:
        """Learn the Go root and the main module from every (function, file) of one program."""
        pairs = list(zip(names, files, strict=True))
        goroot = ""
        for fn, file in pairs:
            # runtime/proc.go under /usr/local/go/src/ gives "/usr/local/go/src/".
            if package(fn) == "runtime" and file.startswith("/") and "/runtime/" in file:
                goroot = file[:file.rindex("/runtime/") + 1]
                break
        code = cls(module, goroot)
        if not module:
            code = cls(code._infer_module(pairs), goroot)
        return code

    @classmethod
    def from_profile(cls, profile: pprof_format.Profile, module: str = "") -> Code:
        return cls.from_functions(profile.node_names, profile.node_files, module)

    def _infer_module(self, pairs: list[Frame]) -> str:
        main_dirs = {posixpath.dirname(file) for fn, file in pairs
                     if package(fn) == "main" and file and not file.startswith("/")}
        if len(main_dirs) != 1:
            return ""  # absolute paths say nothing of the import path; several mains, nothing sure
        module = main_dirs.pop()
        for fn, file in pairs:
            pkg = package(fn)
            if pkg == "main" or not file or _is_dependency_file(file):
                continue
            # A dotless package is the standard library's unless it shares main's first element
            # (module myservice: package main in myservice/cmd/server, myservice/db beside it).
            if not is_stdlib_path(pkg) or pkg.split("/", 1)[0] == module.split("/", 1)[0]:
                common = _common_path(module, pkg)
                # github.com/org/a and github.com/org/b share a host and an owner, not a module.
                if common.count("/") >= _min_depth(common):
                    module = common
        return module

    def is_own(self, function: str, file: str = "") -> bool:
        """True for the target's own code: not the standard library's, a dependency's or vendored."""
        if file and _is_dependency_file(file):
            return False
        pkg = package(function)
        if pkg == "main":
            return True
        if self.module and _under(pkg, self.module):
            return True
        if self.goroot and file.startswith("/"):
            # Absolute paths: the Go root tells the standard library, even from a dotless module.
            return not file.startswith(self.goroot)
        if is_stdlib_path(pkg) or not pkg:
            return False
        return bool(file)

    def first_own(self, frames: Sequence[Frame]) -> int | None:
        """Index of the first own frame of a leaf-first stack, None when it has none."""
        for i, (fn, file) in enumerate(frames):
            if self.is_own(fn, file):
                return i
        return None


def _min_depth(path: str) -> int:
    """Slashes a module path needs: github.com/org/repo, example.com/repo, or a dotless name."""
    if path.startswith(_HOSTS):
        return 2
    return 1 if "." in path.split("/", 1)[0] else 0


def _is_dependency_file(file: str) -> bool:
    return "/vendor/" in file or file.startswith("vendor/") or bool(_VERSIONED.search(file))


def _common_path(a: str, b: str) -> str:
    out = []
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        out.append(x)
    return "/".join(out)
