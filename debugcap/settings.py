"""debugcap's own settings, as grouped frozen dataclasses.

Every field says its unit and why its default was chosen (kopf ``configuration.py``). The CLI
and the operator build these once at start-up and pass them down; nothing reads the
environment anywhere else than :meth:`S3Settings.from_env`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from debugcap.errors import ConfigError

MIB: Final = 1024 * 1024
# The smallest part S3 takes in a multipart upload (but the last); anything this size or less goes in one PUT.
MIN_PART_SIZE: Final = 5 * MIB

# One object-key segment: what S3, MinIO and local file systems all accept without escaping.
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; set it to true or false")


@dataclass(frozen=True)
class S3Settings:
    """Where finished bundles go when an S3-compatible store (MinIO, AWS S3) is configured."""

    endpoint: str
    """``host:port`` of the S3 API (``minio.debugcap:9000``). A ``http://``/``https://`` scheme is
    accepted and overrides :attr:`secure`. No default: without an endpoint bundles stay local."""

    bucket: str = "debugcap"
    """Bucket name; created on first upload if missing. One bucket per installation is enough
    because keys already separate clusters, namespaces and pods."""

    access_key: str | None = None
    """Access key id. None means anonymous access, which only suits a throw-away test MinIO."""

    secret_key: str | None = field(default=None, repr=False)
    """Secret access key. Never shown: ``repr=False`` keeps it out of reprs, logs and tracebacks."""

    region: str | None = None
    """Region for signing. None lets the client discover it, which MinIO answers with us-east-1."""

    secure: bool = True
    """Use HTTPS. On by default because the keys and the evidence travel on this connection;
    turn it off only for an in-cluster MinIO without TLS."""

    prefix: str = "debugcap"
    """First segments of every object key (``<prefix>/<cluster>/<ns>/<pod>/<YYYY>/<MM>/<DD>/...``),
    so a shared bucket can hold debugcap objects beside others and lifecycle rules can match them."""

    cluster: str = "default"
    """Cluster name in object keys, so several clusters can share one bucket without collisions."""

    part_size_bytes: int = 16 * MIB
    """Multipart part size in bytes. 16 MiB keeps the upload's memory (part size times
    :attr:`parallel_uploads` plus one) well under the 150 MB budget and needs only 64 parts
    per GiB; S3's minimum is 5 MiB."""

    parallel_uploads: int = 2
    """Parts uploaded at once. Two matches the small nodes debugcap runs on; more buys little
    when the bundle was compressed on one core anyway."""

    upload_attempts: int = 4
    """Tries per upload on transient errors (connection refused/reset, 5xx, SlowDown). With the
    backoff below, four tries wait 1+2+4 s: long enough to ride out a MinIO restart, short
    enough that a capture does not hang; the bundle is spooled locally after the last one."""

    backoff_base_seconds: float = 1.0
    """First wait between tries, in seconds; doubled after each try."""

    backoff_max_seconds: float = 30.0
    """Cap on one wait, in seconds, so a large attempt count cannot sleep for minutes."""

    def __post_init__(self) -> None:
        if not self.endpoint.strip():
            raise ConfigError("S3 endpoint is empty; set DEBUGCAP_S3_ENDPOINT to host:port, e.g. minio:9000")
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", self.bucket):
            raise ConfigError(
                f"S3 bucket name {self.bucket!r} is invalid; use 3-63 lower-case letters, digits, '.' and '-'"
            )
        for segment in self.prefix.split("/") if self.prefix else []:
            if not _KEY_SEGMENT.match(segment) or segment in (".", ".."):
                raise ConfigError(
                    f"S3 prefix {self.prefix!r} is invalid; use '/'-separated segments of letters, "
                    f"digits, '.', '_' and '-' (no leading or trailing '/')"
                )
        if not _KEY_SEGMENT.match(self.cluster) or self.cluster in (".", ".."):
            raise ConfigError(
                f"cluster name {self.cluster!r} is invalid; "
                f"set DEBUGCAP_CLUSTER to letters, digits, '.', '_' and '-' only"
            )
        if (self.access_key is None) != (self.secret_key is None):
            raise ConfigError(
                "S3 credentials are incomplete; set both DEBUGCAP_S3_ACCESS_KEY and DEBUGCAP_S3_SECRET_KEY, "
                "or neither for anonymous access"
            )
        if self.part_size_bytes < MIN_PART_SIZE:
            raise ConfigError(f"S3 part size {self.part_size_bytes} bytes is below S3's 5 MiB minimum")
        if self.parallel_uploads < 1 or self.upload_attempts < 1:
            raise ConfigError("S3 parallel_uploads and upload_attempts must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings | None:
        """Settings from ``DEBUGCAP_S3_*`` and ``DEBUGCAP_CLUSTER``; None when no endpoint is set.

        ``environ`` is for tests; None reads ``os.environ``.
        """
        env = os.environ if environ is None else environ
        endpoint = env.get("DEBUGCAP_S3_ENDPOINT", "").strip()
        if not endpoint:
            return None
        defaults = cls.__dataclass_fields__
        return cls(
            endpoint=endpoint,
            bucket=env.get("DEBUGCAP_S3_BUCKET", "").strip() or str(defaults["bucket"].default),
            access_key=env.get("DEBUGCAP_S3_ACCESS_KEY") or None,
            secret_key=env.get("DEBUGCAP_S3_SECRET_KEY") or None,
            region=env.get("DEBUGCAP_S3_REGION", "").strip() or None,
            secure=_env_bool(env, "DEBUGCAP_S3_SECURE", True),
            prefix=env.get("DEBUGCAP_S3_PREFIX", str(defaults["prefix"].default)).strip().strip("/"),
            cluster=env.get("DEBUGCAP_CLUSTER", "").strip() or str(defaults["cluster"].default),
        )


COMMAND_MODES = ("auto", "exec", "ephemeral")
HTTP_TRANSPORTS = ("auto", "direct", "proxy", "port-forward")
DEFAULT_DEBUG_IMAGE = "busybox:1.37"


@dataclass(frozen=True)
class CaptureSettings:
    """Limits that keep a hung or huge pod from hanging or flooding a capture."""

    exec_timeout_seconds: float = 30.0
    """Timeout of one command run in the pod (ps, ss, df...), in seconds. 30 s is what the field
    notes use; these commands answer in well under a second on a healthy pod."""

    exec_sessions: int = 1
    """Shells kept open in the target container to run the exec collectors' commands, each
    running one command at a time. One exec per session instead of one per command is what keeps
    a many-pod capture from spending the node's CPU on exec set-up. One is enough: the ~20
    commands of ``debug-full`` take about 0.2 s together, well inside any profile window; raise it
    when a slow command (``du`` over a huge volume) should not hold up the others."""

    http_timeout_seconds: float = 30.0
    """Timeout of one non-profiling HTTP request through the port-forward (heap, goroutine,
    expvar, /metrics), in seconds; same reasoning as :attr:`exec_timeout_seconds`."""

    profile_grace_seconds: float = 15.0
    """Extra seconds allowed on top of a requested duration (``cpu_seconds``, ``trace_seconds``)
    before a profile request is abandoned: Go writes the profile after the window closes, and
    a busy process can take several seconds to do it."""

    capture_timeout_seconds: float | None = None
    """Whole-capture deadline, in seconds from the start of the collectors (``--deadline``; the
    operator's ``spec.parameters.deadlineSeconds``). None: the template's own length (its longest
    profile window, or its snapshots times their interval) plus :attr:`capture_slack_seconds`.
    When it passes, the collectors still running are abandoned (recorded failed, or partial when
    they had added files) and the bundle is written with everything collected until then."""

    capture_slack_seconds: float | None = 900.0
    """What the automatic deadline allows beyond the template's own length, in seconds; None: no
    automatic deadline at all. 15 min covers the slowest quick steps (exec timeouts, a 64 MiB
    goroutine dump through a busy API server) many times over, and still ends a capture whose pod
    stopped answering within the hour an incident lasts."""

    output_cap_bytes: int = 64 * MIB
    """Most bytes kept from one collector output, in bytes. 64 MiB holds a full goroutine dump of
    a process with ~100k goroutines; anything larger is cut and the collector marked partial."""

    log_lines: int = 1000
    """Container log lines kept (``tailLines``). The field notes keep 100; 1000 covers the minutes
    before a failure at typical log rates and stays far below the output cap."""

    pprof_port: int = 6060
    """Container port serving ``/debug/pprof``: the Go convention (``net/http/pprof`` examples)."""

    durable_bundles: bool = True
    """fsync each bundle before it counts as written. The operator turns it off: it uploads each
    bundle and deletes it at once, and one that fails to upload is synced into the spool."""

    command_mode: str = "auto"
    """Where the exec collectors' commands run: ``exec`` (a shell in the target container),
    ``ephemeral`` (an ephemeral debug container from :attr:`debug_image` that shares the target's
    process namespace and reads it through ``/proc/<pid>``), or ``auto``: exec when the target has a
    shell, else ephemeral. Ephemeral containers cannot be removed from a pod, so ``auto`` adds one
    only where exec cannot work, and one per pod is reused by later captures."""

    debug_image: str = DEFAULT_DEBUG_IMAGE
    """The toolbox image of the ephemeral debug container: it needs ``sh``, ``sleep``, ``ps``, ``ls``, ``cat``,
    ``tr``, ``readlink``, ``stat``, ``awk``, ``du``, ``sort``, ``sed``, ``wc`` and ``netstat``
    (busybox has them all; docs/shell-less-pods.md). The default is what
    ``kubectl debug`` users reach for; clusters without Docker Hub set a mirror."""

    http_transport: str = "auto"
    """How the Go endpoints are reached: ``direct`` (the pod IP, when the caller can route to it),
    ``proxy`` (the API server's ``pods/proxy``: only ``get pods/proxy`` rights), ``port-forward``
    (works for a server bound to 127.0.0.1), or ``auto``: the cheapest of these that answers."""

    flight_recorder_path: str = "/debug/flightrecorder"
    """Where the target serves a snapshot of its Go 1.25+ ``runtime/trace.FlightRecorder`` (no
    standard handler exists; docs/go-diagnostics.md has the ten lines a service adds)."""

    redact: bool = True
    """Redact secrets from text evidence and mask them in profiles. On by default; ``--no-redact``
    exists for debugging the redactors themselves."""

    redaction_patterns: tuple[tuple[str, str], ...] = ()
    """Admin-supplied (name, regex) patterns masked after the built-in detectors, besides the
    template's own (``DEBUGCAP_OPERATOR_REDACTION_PATTERNS``; :mod:`debugcap.bundle.redact_custom`
    compiles them with RE2). None by default: the built-in detectors know the public formats."""

    def __post_init__(self) -> None:
        if self.command_mode not in COMMAND_MODES:
            raise ConfigError(f"command mode {self.command_mode!r} is not one of {', '.join(COMMAND_MODES)}")
        if self.http_transport not in HTTP_TRANSPORTS:
            raise ConfigError(f"HTTP transport {self.http_transport!r} is not one of {', '.join(HTTP_TRANSPORTS)}")
        if not self.debug_image.strip():
            raise ConfigError("the debug image must name an image (for example busybox:1.37)")
        if not self.flight_recorder_path.startswith("/"):
            raise ConfigError(f"flight recorder path {self.flight_recorder_path!r} must start with /")
        if self.capture_timeout_seconds is not None and not self.capture_timeout_seconds > 0:
            raise ConfigError(f"capture_timeout_seconds={self.capture_timeout_seconds!r}: the capture deadline "
                              "must be a positive number of seconds, or None for the automatic one")
        if self.capture_slack_seconds is not None and not self.capture_slack_seconds > 0:
            raise ConfigError(f"capture_slack_seconds={self.capture_slack_seconds!r} must be a positive number "
                              "of seconds, or None for no automatic deadline")
