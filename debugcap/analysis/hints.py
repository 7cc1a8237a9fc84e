"""Explain captures that are empty, short or broken for a known reason, and inputs that are no bundle.

Callers: :class:`debugcap.analysis.bundle_reading.Reading` and ``BundleReader``, and the
``top``/``goroutines`` commands. Each hint is one sentence that says what is wrong and what to do
about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from debugcap import errors
from debugcap.analysis import goroutines
from debugcap.bundle import verify
from debugcap.formats import pprof as pprof_format

# A CPU profile this much shorter than asked for was cut short; small shortfalls
# are scheduling noise. Judgement call.
CPU_SHORTFALL = 0.9

# Known net/http/pprof error bodies (served as text with X-Go-Pprof: 1) and what they mean.
_ERROR_BODIES = [
    ("cpu profiling already in use",
     "another CPU profile was running in the process at the same time (a second capture or a "
     "continuous profiler); only one can run at once, so retry when it has finished"),
    ("could not enable cpu profiling",
     "the runtime refused to start CPU profiling; retry, and check nothing else profiles the process"),
    ("could not enable tracing",
     "an execution trace was already running in the process; retry when it has finished"),
    ("exceeds server's writetimeout",
     "the requested duration is longer than the server's http.Server.WriteTimeout; ask for fewer "
     "seconds or raise WriteTimeout"),
    ("unknown profile",
     "the endpoint does not know this profile name (older Go, or a custom pprof handler)"),
    ("404 page not found",
     "net/http/pprof is not registered on this port; import _ \"net/http/pprof\" or use the right port"),
]


def error_body(data: bytes, path: str) -> str | None:
    """A hint when ``data`` is a pprof endpoint's text error instead of a profile."""
    if not data or data.startswith(pprof_format.GZIP_MAGIC) or not pprof_format.looks_like_text(data):
        return None
    text = data.decode("utf-8", "replace").strip()
    lower = text.lower()
    for needle, why in _ERROR_BODIES:
        if needle in lower:
            return (f"{path} holds the endpoint's error text {errors.shorten(text, 120)!r}, "
                    f"not a profile: {why}")
    return f"{path} holds text, not a profile: {errors.shorten(text, 120)!r}"


def profile_hints(profile: pprof_format.Profile, kind: str, path: str,
                  requested_seconds: float | None = None) -> list[str]:
    """Hints for one parsed profile; ``kind`` is the endpoint name (cpu, block, mutex...)."""
    out: list[str] = []
    if kind == "block" and profile.is_empty():
        out.append(f"{path} is empty: the program never called runtime.SetBlockProfileRate, so Go "
                   "records no blocking events; call runtime.SetBlockProfileRate(1) (or a larger "
                   "rate in ns) at start-up and capture again")
    elif kind == "mutex" and profile.is_empty():
        out.append(f"{path} is empty: the program never called runtime.SetMutexProfileFraction, so "
                   "Go records no lock contention; call runtime.SetMutexProfileFraction(5) at "
                   "start-up and capture again")
    if kind == "cpu":
        if requested_seconds and profile.duration_ns < requested_seconds * 1e9 * CPU_SHORTFALL:
            out.append(f"{path} covers {profile.duration_ns / 1e9:.1f}s of the {requested_seconds:g}s "
                       "requested: the profile was cut short (process restarted, request timed "
                       "out, or the server's WriteTimeout is shorter)")
        if profile.is_empty():
            out.append(f"{path} has no CPU samples: the process was idle during the capture")
    return out


def dump_hints(dump: goroutines.DumpDict, path: str) -> list[str]:
    """A hint when the dump is not whole: cut at Go's size limit, or cut short after it was written."""
    if dump["truncated"]:
        return [f"{path} is exactly 64 MiB, the most Go writes for a debug=2 dump (runtime/pprof "
                f"writeGoroutineStacks stops there): the goroutines past the cut are missing, so the "
                f"{dump['total']} counted are fewer than there are; the debug=1 or debug=0 goroutine profile "
                "(goroutine-debug1.txt, goroutine.pb.gz) counts every goroutine"]
    if dump["cut"]:
        return [f"{path} was cut short: {dump['cut']}. Go wrote it whole (its 64 MiB limit is not the cause), "
                "so a download or copy stopped early: the counts of the last groups are low; capture again "
                "or fetch the file again"]
    return []


# ---- inputs that are no bundle, bundles that fail their checks ----

_WHAT_A_BUNDLE_IS = (
    "a bundle is the <namespace>_<pod>_<time>.tar.gz that `kubectl debugcap create` or the operator "
    "writes, or that archive unpacked: its top directory holds manifest.json (every file with its "
    "SHA-256), SHA256SUMS and the evidence under pprof/, proc/, net/...")


def not_a_bundle(path: str, why: str) -> str:
    return (f"{path} is not a debugcap bundle: {why}. {_WHAT_A_BUNDLE_IS}. For one profile use "
            f"`kubectl debugcap top FILE`; to read these files anyway, unverified, pass --force")


def profile_not_bundle(path: str) -> str:
    return (f"{path} is a single profile, not a bundle: show it with `kubectl debugcap top {path}`, or "
            f"compare two with `kubectl debugcap diff BASE NEW`")


def dump_not_bundle(path: str) -> str:
    return f"{path} is a goroutine dump, not a bundle: group it with `kubectl debugcap goroutines {path}`"


def _check_command(where: str, packed: bool) -> str:
    # `kubectl debugcap verify` reads archives only; an unpacked bundle checks itself with coreutils.
    return f"`kubectl debugcap verify {where}`" if packed else f"`sha256sum -c SHA256SUMS` in {where}"


def _first_failure(where: str, problems: Sequence[verify.Problem]) -> str:
    first = problems[0]
    if first.kind is verify.ProblemKind.DAMAGED:
        what = f"{where} is cut short or damaged at {first.path}: {first.detail}"
    else:
        what = f"{where} fails its checks, first at {first.path}: {first.kind.value}: {first.detail}"
    more = len(problems) - 1
    return what + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def bundle_check_failed(where: str, problems: Sequence[verify.Problem], *, packed: bool) -> str:
    """The error for a bundle that fails its checks, naming the first bad member."""
    return (f"{_first_failure(where, problems)}. Its evidence cannot be trusted as it is: list every problem "
            f"with {_check_command(where, packed)} and fetch an intact copy, or read what is readable, "
            "marked unverified, with --force")


def unverified(where: str, problems: Sequence[verify.Problem], readable: int, *, packed: bool) -> str:
    """The first problem line of a report read with --force from a bundle that fails its checks."""
    damaged = problems[0].kind is verify.ProblemKind.DAMAGED
    rest = (f"only the {readable} files before the damage were read" if damaged
            else "what follows may be wrong")
    return (f"unverified (read with --force): {_first_failure(where, problems)}; {rest}. "
            f"Check it with {_check_command(where, packed)}")


def unverified_without_manifest(where: str) -> str:
    return (f"unverified (read with --force): {where} has no manifest.json, so nothing in it could be checked "
            "against the checksums of its capture")
