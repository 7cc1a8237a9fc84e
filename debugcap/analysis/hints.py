"""Explain captures that are empty, short or broken for a known reason.

Callers: :class:`debugcap.analysis.bundle_reading.Reading` and the ``top`` command. Each hint is
one sentence that says what is wrong and what to do about it.
"""

from __future__ import annotations

from debugcap import errors
from debugcap.analysis import goroutines
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
    """A hint when the dump was cut at Go's size limit, so its counts are low."""
    if dump["truncated"]:
        return [f"{path} was cut at Go's 64 MB goroutine dump limit: the last goroutine is "
                f"incomplete and the {dump['total']} goroutines counted are fewer than there are; "
                "use the debug=0 goroutine profile (goroutine.pb.gz) for exact counts"]
    return []
