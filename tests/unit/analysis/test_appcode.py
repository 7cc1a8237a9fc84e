"""appcode: which frames are the target's own code, on the (function, file) pairs Go writes.

The pairs are as real profiles carry them: the goapp fixture built with ``-trimpath`` (module
``debugcap.test/goapp``), and the same program's shapes without it (absolute paths, a module cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap.analysis import appcode
from debugcap.analysis.appcode import Code

# From a real CPU and heap profile of goapp (go build -trimpath).
TRIMPATH = [
    ("crypto/internal/fips140/sha256.blockSHANI", "crypto/internal/fips140/sha256/sha256block_amd64.s"),
    ("crypto/sha256.Sum256", "crypto/sha256/sha256.go"),
    ("main.burnCPU", "debugcap.test/goapp/main.go"),
    ("main.main.func2", "debugcap.test/goapp/main.go"),
    ("runtime.goexit", "runtime/asm_amd64.s"),
]


def test_trimpath_program_infers_its_module_and_skips_the_standard_library() -> None:
    code = Code.from_functions(*zip(*TRIMPATH, strict=True))
    assert code.module == "debugcap.test/goapp"
    assert [code.is_own(f, p) for f, p in TRIMPATH] == [False, False, True, True, False]
    assert code.first_own(TRIMPATH) == 2


def test_dependencies_and_vendored_frames_are_not_own_but_sibling_packages_are() -> None:
    frames = [
        ("github.com/lib/pq.(*conn).query", "github.com/lib/pq@v1.10.9/conn.go"),
        ("github.com/acme/shop/internal/store.(*DB).Get", "github.com/acme/shop/internal/store/db.go"),
        ("main.handler", "github.com/acme/shop/cmd/api/main.go"),
        ("github.com/acme/other.F", "github.com/acme/other/f.go"),  # a local replace: not the module
        ("golang.org/x/net/http2.(*Framer).ReadFrame", "vendor/golang.org/x/net/http2/frame.go"),
    ]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert code.module == "github.com/acme/shop"
    assert [code.is_own(f, p) for f, p in frames] == [False, True, True, True, False]
    assert code.first_own(frames) == 1
    # Without a file, only the module path can tell: a package under it is own, another is not.
    assert code.is_own("github.com/acme/shop/internal/store.Open")
    assert not code.is_own("github.com/lib/pq.Open")


def test_a_dotless_module_is_told_from_the_standard_library() -> None:
    frames = [("net/http.(*conn).serve", "net/http/server.go"), ("myservice/db.Query", "myservice/db/q.go"),
              ("main.main", "myservice/cmd/server/main.go")]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert code.module == "myservice"
    assert [code.is_own(f, p) for f, p in frames] == [False, True, True]


def test_absolute_paths_use_the_go_root_and_the_module_cache() -> None:
    frames = [
        ("runtime.mallocgc", "/usr/local/go/src/runtime/malloc.go"),
        ("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go"),
        ("github.com/lib/pq.(*conn).query", "/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go"),
        ("myservice/db.Query", "/src/db/q.go"),
        ("main.main", "/src/main.go"),
    ]
    code = Code.from_functions(*zip(*frames, strict=True))
    assert (code.module, code.goroot) == ("", "/usr/local/go/src/")
    assert [code.is_own(f, p) for f, p in frames] == [False, False, False, True, True]


def test_a_given_module_overrides_inference() -> None:
    code = Code.from_functions(["main.main"], ["/src/main.go"], module="example.com/svc")
    assert code.is_own("example.com/svc/pkg.F") and not code.is_own("example.com/other.F")


def test_a_stack_without_own_code_has_no_first_own_frame() -> None:
    code = Code()
    assert code.first_own([("runtime.gcBgMarkWorker", "runtime/mgc.go")]) is None
    assert code.first_own([]) is None


@pytest.mark.parametrize(("function", "package"), [
    ("net/http.(*conn).serve", "net/http"),
    ("main.(*growingCache).add", "main"),
    ("gopkg.in/yaml%2ev3.(*parser).parse", "gopkg.in/yaml%2ev3"),
    ("main.Map[go.shape.struct { github.com/x/y.T }].Get", "main"),
    ("github.com/a/b/c.F.func1", "github.com/a/b/c"),
])
def test_package_of_a_function(function: str, package: str) -> None:
    assert appcode.package(function) == package


@pytest.mark.parametrize(("function", "file", "profiler"), [
    ("runtime/trace.(*traceMultiplexer).startLocked", "runtime/trace/subscribe.go", True),
    ("runtime.(*traceStackTable).dump", "runtime/tracestack.go", True),
    ("runtime.traceAdvance", "runtime/trace.go", True),
    ("runtime/pprof.(*profileBuilder).build", "runtime/pprof/proto.go", True),
    ("net/http/pprof.Profile", "net/http/pprof/pprof.go", True),
    ("runtime.dumpStacksRec", "/usr/local/go/src/runtime/tracestack.go", True),
    ("runtime.mallocgc", "runtime/malloc.go", False),
    ("main.startFlightRecorder", "debugcap.test/goapp/flightrecorder.go", False),
])
def test_profiler_frames(function: str, file: str, profiler: bool) -> None:
    assert appcode.is_profiler(function, file) is profiler
    assert appcode.through_profiler([("runtime.mallocgc", ""), (function, file)]) is profiler


def test_code_from_a_real_goapp_profile() -> None:
    from debugcap.formats import pprof as pprof_format

    profile = pprof_format.load(Path(__file__).resolve().parents[2] / "fixtures" / "goapp-profiles" / "heap.pb.gz")
    code = Code.from_profile(profile)
    assert code.module == "debugcap.test/goapp"
    own = {n for n, f in zip(profile.node_names, profile.node_files, strict=True) if code.is_own(n, f)}
    assert "main.(*growingCache).add" in own
    assert all(n.startswith("main.") for n in own), own
