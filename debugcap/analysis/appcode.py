"""Which frames of a Go stack are the target's own code, and which are the profiler's.

Callers: the finding rules (:mod:`debugcap.analysis.findings`) name the first frame of a stack
that is the application's own rather than the standard library's leaf it happened to be in, and
the goroutine grouping can use the same choice. Build a :class:`Code` once per profile or dump,
then ask it about frames::

    code = Code.from_profile(profile)          # or Code.from_functions(names, files)
    code.is_own("main.burnCPU", "debugcap.test/goapp/main.go")        # True
    code.first_own([("crypto/sha256.Sum256", "crypto/sha256/sha256.go"),
                    ("main.burnCPU", "debugcap.test/goapp/main.go")])  # 1
    code.charge([("runtime/pprof.(*profileBuilder).build", "runtime/pprof/proto.go"),
                 ("net/http/pprof.Profile", "net/http/pprof/pprof.go"),
                 ("main.handler", "debugcap.test/goapp/main.go")])  # (2, "net/http/pprof.Profile")
    is_profiler("runtime/trace.(*traceMultiplexer).startLocked")       # True
    is_profiler("runtime/pprof.Do")                                     # False: labels are the app's

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

import functools
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from debugcap.formats import pprof as pprof_format

Frame = tuple[str, str]  # (function, file); file "" when unknown

# Versioned module directories: GOPATH's module cache, or -trimpath's "module@version/".
_VERSIONED = re.compile(r"(^|/)pkg/mod/|@v\d")

# The capture's own machinery, named by the functions it runs in: a profile being written
# (runtime/pprof's writers and protobuf builder, the CPU profile's reader goroutine), the pprof HTTP
# handlers, the execution tracer (runtime/trace.Start, the flight recorder and the multiplexer that
# feeds both; the runtime's tracer: its reader, its advancer, the cost per event it adds while it
# runs) and the CPU profiler's buffers. Not the APIs a program calls for its own ends, which share
# these packages: labels (runtime/pprof.Do, SetGoroutineLabels, WithLabels), trace annotations
# (runtime/trace.WithRegion, StartRegion, NewTask, Log) and the runtime's unwinder (runtime.Callers,
# traceback*, (*unwinder)), which stack growth and the GC's stack scans use too. Listing the entry
# points, not whole packages, is what keeps a program's labelled or traced work its own.
_PROFILER_PREFIXES = (
    "net/http/pprof.", "internal/trace.", "internal/trace/",
    "runtime/pprof.(*profileBuilder).", "runtime/pprof.(*protobuf).", "runtime/pprof.(*pcDeck).",
    "runtime/pprof.write", "runtime/pprof.print",
    "runtime/trace.(*FlightRecorder).", "runtime/trace.(*traceMultiplexer).", "runtime/trace.(*recorder).",
    "runtime.(*cpuProfile).", "runtime.(*profBuf).",
)
# Whole names (their closures too): as prefixes, runtime/trace.Start would take StartRegion.
_PROFILER_FUNCTIONS = frozenset({
    "runtime/pprof.StartCPUProfile", "runtime/pprof.StopCPUProfile", "runtime/pprof.profileWriter",
    "runtime/pprof.readProfile", "runtime/pprof.(*Profile).WriteTo", "runtime/pprof.WriteHeapProfile",
    "runtime/pprof.newProfileBuilder", "runtime/pprof.allFrames", "runtime/pprof.parseProcSelfMaps",
    "runtime/trace.Start", "runtime/trace.Stop", "runtime/trace.NewFlightRecorder", "runtime/trace.readBatch",
    "runtime/trace.runtime_readTrace",
    "runtime.StartTrace", "runtime.StopTrace", "runtime.ReadTrace", "runtime.readTrace0",
    "runtime.SetCPUProfileRate", "runtime.setcpuprofilerate",
    "runtime.makeTraceFrames", "runtime.dumpStacksRec", "runtime.dumpTypesRec",
})
# The runtime's tracer (runtime.traceAdvance, traceReader, traceLocker.GoPark, (*traceBuf).flush),
# not its unwinder (runtime.traceback, tracebackPCs, tracebackothers), which only shares the prefix.
_TRACER = re.compile(r"^runtime\.(?:\(\*)?trace(?!back)")
# The runtime's tracer and CPU-profiler files, whatever the function (wakeableSleep, fpunwindExpand):
# trace.go, tracebuf.go, tracestack.go..., not traceback.go, the unwinder's.
_PROFILER_FILES = re.compile(r"(^|/)runtime/(trace(?!back\.go)[a-z]*|cpuprof|profbuf)\.go$")
# The runtime's half of the annotation API (runtime/traceruntime.go, a tracer file): a region or a
# task is the program's own instrumentation; what the tracer adds under it is named runtime.trace*.
_ANNOTATIONS = frozenset({"runtime/trace.userTaskCreate", "runtime/trace.userTaskEnd", "runtime/trace.userRegion",
                          "runtime/trace.userLog"})
# Closures carry their function's name: F.func1, F.func1.2, F.gowrap1.
_CLOSURE = re.compile(r"(?:\.(?:func|gowrap)\d+(?:\.\d+)*)+$")
_HOSTS = ("github.com/", "gitlab.com/", "bitbucket.org/")


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


@functools.lru_cache(maxsize=1 << 14)
def is_profiler(function: str, file: str = "") -> bool:
    """A frame of the capture's own machinery (tracer, CPU profiler, profile writers, pprof handlers).

    Whether a stack is the profiler's depends on where such a frame sits: see :meth:`Code.charge`.
    """
    name = _CLOSURE.sub("", function)
    if name in _ANNOTATIONS:
        return False
    return (name in _PROFILER_FUNCTIONS or function.startswith(_PROFILER_PREFIXES) or bool(_TRACER.match(function))
            or bool(file and _PROFILER_FILES.search(file)))


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

    def charge(self, frames: Sequence[Frame]) -> tuple[int | None, str | None]:
        """Who a leaf-first stack's cost belongs to: (index of its first own frame, profiler frame).

        The profiler frame is the outermost frame of the capture's machinery (:func:`is_profiler`)
        between the leaf and the first own frame (the whole stack when it has none), None when
        there is none; when there is one, the stack is the capture's. Only those frames count: the
        frames above the first own frame are what called the application's code, and code run
        under ``pprof.Do`` or ``trace.WithRegion`` is still the application's work. The outermost
        of them says who started the capture's work (a pprof handler, the flight recorder).
        """
        own = self.first_own(frames)
        below = frames if own is None else frames[:own]
        return own, next((fn for fn, file in reversed(below) if is_profiler(fn, file)), None)


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
