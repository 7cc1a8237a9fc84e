"""Every path inside a bundle, every bundle name and every object key, built in one place.

Collectors never choose paths: they ask this module (STYLE §2). :mod:`debugcap.bundle.writer`
and :mod:`debugcap.bundle.verify` use it to place and check members, and
:mod:`debugcap.storage` uses :func:`object_key` to place finished bundles.
``docs/bundle-format.md`` documents the same layout for humans; keep the two in step.

Paths given to and returned by these functions are *relative to the stem directory*
(``proc/ps.txt``); :func:`member_name` turns them into tar member names (``<stem>/proc/ps.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from debugcap.errors import BundleError

FORMAT_VERSION: Final = 1

BUNDLE_SUFFIX: Final = ".tar.gz"
CHECKSUM_SUFFIX: Final = ".sha256"

# Written first, so a reader streaming the archive learns the format before anything else
# (velero's BackupFormatVersion).
VERSION: Final = "version"
# Written second to last and last: they describe everything before them.
SHA256SUMS: Final = "SHA256SUMS"
MANIFEST: Final = "manifest.json"
RESERVED: Final = frozenset({VERSION, SHA256SUMS, MANIFEST})

PROC_PS: Final = "proc/ps.txt"
PROC_LSOF_I: Final = "proc/lsof-i.txt"
PROC_LSOF_P1: Final = "proc/lsof-p1.txt"
PROC_FD: Final = "proc/fd.txt"
PROC_FD_COUNT: Final = "proc/fd-count.txt"
PROC_STATUS: Final = "proc/status.txt"
PROC_LIMITS: Final = "proc/limits.txt"

NET_SOCKETS: Final = "net/sockets.txt"
NET_PROC_TCP: Final = "net/proc-net-tcp.txt"
NET_PROC_TCP6: Final = "net/proc-net-tcp6.txt"
NET_SOCKSTAT: Final = "net/sockstat.txt"
NET_RESOLV_CONF: Final = "net/resolv.conf"
NET_SOCKET_STATES: Final = "net/socket-states.json"

FS_DF: Final = "fs/df.txt"
FS_DF_INODES: Final = "fs/df-inodes.txt"
FS_DU_TOP: Final = "fs/du-top20.txt"
FS_DELETED_OPEN: Final = "fs/deleted-open.txt"

ENV_ENVIRONMENT: Final = "env/environment.txt"

PPROF_CPU: Final = "pprof/cpu.pb.gz"
PPROF_HEAP: Final = "pprof/heap.pb.gz"
PPROF_ALLOCS: Final = "pprof/allocs.pb.gz"
PPROF_GOROUTINE: Final = "pprof/goroutine.pb.gz"
PPROF_GOROUTINE_DEBUG1: Final = "pprof/goroutine-debug1.txt"
PPROF_GOROUTINE_DEBUG2: Final = "pprof/goroutine-debug2.txt"
PPROF_BLOCK: Final = "pprof/block.pb.gz"
PPROF_MUTEX: Final = "pprof/mutex.pb.gz"
PPROF_THREADCREATE: Final = "pprof/threadcreate.pb.gz"
# Go 1.26 GOEXPERIMENT=goroutineleakprofile (standard from 1.27): goroutines the GC proved blocked
# forever. debug=0 and debug=1 hold only those; debug=2 is every goroutine, the leaked ones "(leaked)".
PPROF_GOROUTINELEAK: Final = "pprof/goroutineleak.pb.gz"
PPROF_GOROUTINELEAK_DEBUG1: Final = "pprof/goroutineleak-debug1.txt"
PPROF_GOROUTINELEAK_DEBUG2: Final = "pprof/goroutineleak-debug2.txt"

# Every pprof profile by its endpoint name, in the order reports list them.
PPROF_PROFILES: Final = {
    "cpu": PPROF_CPU, "heap": PPROF_HEAP, "allocs": PPROF_ALLOCS, "goroutine": PPROF_GOROUTINE,
    "block": PPROF_BLOCK, "mutex": PPROF_MUTEX, "threadcreate": PPROF_THREADCREATE,
    "goroutineleak": PPROF_GOROUTINELEAK,
}

# File names inside a go-leak snapshot directory (see snapshot_path).
SNAPSHOT_HEAP: Final = "heap.pb.gz"
SNAPSHOT_GOROUTINE_DEBUG2: Final = "goroutine-debug2.txt"
SNAPSHOT_ALLOCS: Final = "allocs.pb.gz"

TRACE: Final = "trace/trace.out"
# A snapshot of the target's runtime/trace.FlightRecorder: the seconds before the capture.
TRACE_FLIGHT_RECORDER: Final = "trace/flightrecorder.out"
# What the flight-recorder collector takes instead when the target serves none: a trace of the
# seconds after (only where its template has no trace step; see collectors/flight_recorder.py).
TRACE_FLIGHT_RECORDER_FALLBACK: Final = "trace/flightrecorder-fallback.out"
TRACES: Final = frozenset({TRACE, TRACE_FLIGHT_RECORDER, TRACE_FLIGHT_RECORDER_FALLBACK})

METRICS_EXPVAR: Final = "metrics/expvar.json"
METRICS_PROMETHEUS: Final = "metrics/prometheus.txt"

K8S_POD: Final = "k8s/pod.yaml"
K8S_EVENTS: Final = "k8s/events.yaml"
K8S_NODE_CONDITIONS: Final = "k8s/node-conditions.yaml"

# Snapshot directories are numbered 00..99: two digits keep `ls` order equal to time order,
# and a leak hunt with more than 100 snapshots is not a use case (judgement call).
MAX_SNAPSHOTS: Final = 100

# DNS-1123 names (namespaces, pods, containers) never contain "_", which is what makes
# "<ns>_<pod>_<ts>" parseable; anything else would produce an ambiguous bundle name.
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SNAPSHOT_MEMBER = re.compile(r"^pprof/snapshots/(\d+)/")
_COLLECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TIMESTAMP_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_BUNDLE_NAME = re.compile(r"^(?P<ns>[a-z0-9.-]+)_(?P<pod>[a-z0-9.-]+)_(?P<ts>\d{8}T\d{6}Z)\.tar\.gz$")
# A key segment: what S3, MinIO and local file systems all accept without escaping.
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


def _check_k8s_name(kind: str, value: str) -> str:
    if not _K8S_NAME.match(value):
        raise BundleError(
            f"{kind} name {value!r} is not a valid Kubernetes (DNS-1123) name; "
            f"use the name exactly as `kubectl get` shows it"
        )
    return value


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise BundleError(
            f"timestamp {when.isoformat()} has no time zone; pass an aware datetime, "
            f"e.g. datetime.now(UTC), so bundle names are unambiguous UTC"
        )
    return when.astimezone(UTC)


def timestamp(when: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` in UTC, e.g. ``20261123T160000Z``."""
    return _utc(when).strftime(_TIMESTAMP_FORMAT)


def bundle_name(namespace: str, pod: str, when: datetime) -> str:
    """``<namespace>_<pod>_<YYYYMMDDTHHMMSSZ>.tar.gz``, e.g. ``prod_api-1_20261123T160000Z.tar.gz``."""
    _check_k8s_name("namespace", namespace)
    _check_k8s_name("pod", pod)
    return f"{namespace}_{pod}_{timestamp(when)}{BUNDLE_SUFFIX}"


def parse_bundle_name(name: str) -> tuple[str, str, datetime]:
    """Inverse of :func:`bundle_name`: ``(namespace, pod, when)``."""
    match = _BUNDLE_NAME.match(name)
    if not match:
        raise BundleError(
            f"{name!r} is not a debugcap bundle name; expected <namespace>_<pod>_<YYYYMMDDTHHMMSSZ>.tar.gz"
        )
    try:
        when = datetime.strptime(match["ts"], _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:  # month 13, hour 25: digits in the right places, no time
        raise BundleError(f"{name!r} names no real time ({match['ts']})") from exc
    return match["ns"], match["pod"], when


def stem(name: str) -> str:
    """The top directory inside the bundle: its file name without ``.tar.gz``."""
    if not name.endswith(BUNDLE_SUFFIX) or len(name) == len(BUNDLE_SUFFIX) or "/" in name:
        raise BundleError(f"{name!r} is not a bundle file name; it must be a plain name ending in .tar.gz")
    return name[: -len(BUNDLE_SUFFIX)]


def checksum_name(name: str) -> str:
    """The file beside a bundle holding its SHA-256 in ``sha256sum`` format."""
    return name + CHECKSUM_SUFFIX


def check_path(path: str) -> str:
    """Return ``path`` if it is a safe relative member path, else raise :class:`BundleError`.

    Rejects what would escape the stem directory or confuse ``sha256sum -c``: absolute paths,
    ``..``/``.``/empty segments, backslashes, whitespace and control characters.
    """
    problem = None
    if not path or path.startswith("/"):
        problem = "it must be relative and non-empty"
    elif any(segment in ("", ".", "..") for segment in path.split("/")):
        problem = "it has an empty, '.' or '..' segment"
    elif any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in path):
        problem = "it contains a backslash, whitespace or a control character"
    if problem:
        raise BundleError(
            f"bundle path {path!r} is not allowed: {problem}; build paths with debugcap.bundle.layout"
        )
    return path


def member_name(stem_name: str, path: str) -> str:
    """Tar member name of a bundle path: ``<stem>/<path>``."""
    return f"{stem_name}/{check_path(path)}"


def log_path(container: str, *, previous: bool = False) -> str:
    """``logs/<container>.log``, or ``logs/<container>.previous.log`` for the last terminated instance."""
    _check_k8s_name("container", container)
    return f"logs/{container}.previous.log" if previous else f"logs/{container}.log"


def snapshot_path(index: int, filename: str) -> str:
    """``pprof/snapshots/<NN>/<filename>`` for the ``index``-th go-leak snapshot (0-based)."""
    directory = snapshot_dir(index)
    if "/" in filename:
        raise BundleError(f"snapshot file name {filename!r} must be a plain name, e.g. 'heap.pb.gz'")
    return check_path(f"{directory}/{filename}")


def snapshot_dir(index: int) -> str:
    """``pprof/snapshots/<NN>``: the directory of the ``index``-th go-leak snapshot (0-based)."""
    if not 0 <= index < MAX_SNAPSHOTS:
        raise BundleError(f"snapshot index {index} is out of range 0..{MAX_SNAPSHOTS - 1}")
    return f"pprof/snapshots/{index:02d}"


def snapshot_indices(paths: Iterable[str]) -> list[int]:
    """Indices of the snapshot directories that ``paths`` (a bundle's members) have files in, in order."""
    found = {int(m.group(1)) for p in paths if (m := _SNAPSHOT_MEMBER.match(p))}
    return sorted(i for i in found if i < MAX_SNAPSHOTS)


ERRORS_DIR: Final = "errors/"


def error_path(collector: str, nth: int = 1) -> str:
    """``errors/<collector>.txt``: error bodies and stderr of a collector, kept verbatim; a
    collector's second and later ones (one per failed endpoint or snapshot) are
    ``errors/<collector>-<nth>.txt``."""
    if not _COLLECTOR_NAME.match(collector):
        raise BundleError(f"collector name {collector!r} must be kebab-case, e.g. 'pprof-cpu'")
    if nth < 1:
        raise BundleError(f"error file number {nth} must be 1 or more")
    return f"{ERRORS_DIR}{collector}.txt" if nth == 1 else f"{ERRORS_DIR}{collector}-{nth}.txt"


def custom_path(name: str) -> str:
    """``custom/<name>.txt``: the output of a command an admin's template defines."""
    if not _COLLECTOR_NAME.match(name):
        raise BundleError(f"command output name {name!r} must be kebab-case, e.g. 'open-connections'")
    return f"custom/{name}.txt"


def is_binary(path: str) -> bool:
    """True for members that are not text: they get byte-level masking, not line redaction."""
    return path.endswith(".pb.gz") or path in TRACES


def is_gzip_profile(path: str) -> bool:
    """True for gzip-compressed pprof protobufs."""
    return path.endswith(".pb.gz")


def check_key_segment(kind: str, value: str) -> str:
    """Return ``value`` if usable as one segment of an object key, else raise :class:`BundleError`."""
    if not _KEY_SEGMENT.match(value) or value in (".", ".."):
        raise BundleError(
            f"{kind} {value!r} cannot be used in an object key; use letters, digits, '.', '_' and '-' only"
        )
    return value


def object_key(prefix: str, cluster: str, namespace: str, pod: str, when: datetime, name: str,
               directory: str | None = None) -> str:
    """``<prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/[<directory>/]<bundle>``.

    Grouping by pod then day lets ``list(prefix=".../<ns>/<pod>/")`` find a pod's history and lets
    per-namespace retention rules match on a key prefix. ``prefix`` may hold several segments
    (``debug/team-a``); an empty prefix is allowed. ``directory`` is the writer's own (a capture's
    ``<name>_<uid>``, a CLI upload's ``cli-<32 hex>``): without it two writers of one pod in one
    second (the CLI and the operator, two clusters under one cluster name) name the same key;
    keys without one are the older layout, still read.
    """
    for segment in prefix.split("/") if prefix else []:
        check_key_segment("prefix segment", segment)
    check_key_segment("cluster", cluster)
    _check_k8s_name("namespace", namespace)
    _check_k8s_name("pod", pod)
    stem(name)
    day = _utc(when).strftime("%Y/%m/%d")
    head = f"{prefix}/" if prefix else ""
    own = f"{check_key_segment('key directory', directory)}/" if directory is not None else ""
    return f"{head}{cluster}/{namespace}/{pod}/{day}/{own}{name}"
