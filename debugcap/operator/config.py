"""The operator's own settings, read once from ``DEBUGCAP_OPERATOR_*`` environment variables.

:func:`debugcap.operator.startup.configure` builds :class:`DebugcapConfig` at start-up and
:mod:`debugcap.operator.main` reads the namespaces and ports from it. S3 settings are not here:
they come from ``DEBUGCAP_S3_*`` through :func:`debugcap.delivering.store_from_env`, so the
operator and ``kubectl debugcap create --upload`` name objects the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from debugcap.bundle import redact_custom
from debugcap.errors import ConfigError
from debugcap.settings import COMMAND_MODES, DEFAULT_DEBUG_IMAGE, HTTP_TRANSPORTS

_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Past this a duration is a typo (and past timedelta's 999,999,999 days, an OverflowError).
MAX_DURATION_SECONDS: Final = 10 * 366 * 86400
# The largest execution trace the operator's analysis of a bundle reads, in MiB: about 50 MB of
# memory (the reader holds some 12 MB per MiB) and 3 s of a core. The report command reads up to
# 16 MiB; a larger trace gets a hint naming the trace command instead of a summary.
ANALYSIS_TRACE_LIMIT_MIB: Final = 4
# The longest a presigned download URL may live. The URL is a credential for its whole life and
# is readable in its DebugDownload meanwhile; an hour downloads gigabytes on a slow link.
MAX_PRESIGNED_TTL: Final = timedelta(hours=1)
# The shortest: the plugin must still be able to read the status and start its GETs.
MIN_PRESIGNED_TTL: Final = timedelta(seconds=10)

REDACTION_PATTERNS: Final = "DEBUGCAP_OPERATOR_REDACTION_PATTERNS"
MAX_PORT: Final = 65535
# The operator's own servers, each on a port of its own (0: off).
PORT_VARIABLES: Final = ("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT", "DEBUGCAP_OPERATOR_METRICS_PORT",
                         "DEBUGCAP_OPERATOR_LIVENESS_PORT")


def parse_duration(text: str, *, field: str) -> timedelta:
    """``"24h"``, ``"90m"``, ``"1h30m"``, ``"10s"``, ``"7d"`` as a timedelta; ``field`` names the source in errors.

    >>> parse_duration("1h30m", field="spec.ttl")
    datetime.timedelta(seconds=5400)
    """
    cleaned = text.strip()
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ConfigError(f'{field}: "{text}" is not a duration; write it like 10s, 90m, 24h or 7d')
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f'{field}: "{text}" must be longer than zero; write it like 10s, 90m, 24h or 7d')
    if seconds > MAX_DURATION_SECONDS:
        raise ConfigError(f'{field}: "{text}" is longer than ten years; write it like 10s, 90m, 24h or 7d')
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DebugcapConfig:
    """How the operator runs; every field maps to one ``DEBUGCAP_OPERATOR_*`` variable.

    Not kopf's ``kopf.OperatorSettings``, which the start-up handler tunes for kopf itself."""

    concurrency: int = 4
    """Pods captured at once across all DebugCaptures (``DEBUGCAP_OPERATOR_CONCURRENCY``). A capture
    holds a few port-forwards and compresses a bundle on one core; four keeps a 2-core operator pod
    busy without starving kopf's event loop (judgement call)."""

    lingering_captures: int | None = None
    """Collection threads still running after their pod's deadline gave its slot back (writing a
    partial bundle, or abandoned and stuck) before new captures wait for one to end
    (``DEBUGCAP_OPERATOR_LINGERING_CAPTURES``, at least 1); None: :attr:`concurrency`. Each still
    holds a bundle writer's memory, which the slots no longer count."""

    default_ttl: timedelta = timedelta(days=7)
    """Lifetime of a hand-made DebugCapture and its bundles after it ends, when ``spec.ttl`` is unset
    (``DEBUGCAP_OPERATOR_DEFAULT_TTL``). A week covers an incident and its post-mortem."""

    scheduled_ttl: timedelta = timedelta(days=1)
    """Same for captures a DebugSchedule made (``DEBUGCAP_OPERATOR_SCHEDULED_TTL``). Scheduled
    captures pile up; a day keeps yesterday's baseline, and history limits prune before that."""

    namespaces: tuple[str, ...] = ()
    """Namespaces served (``DEBUGCAP_OPERATOR_NAMESPACES``, comma-separated); empty means all."""

    metrics_port: int = 0
    """Port of the Prometheus ``/metrics`` endpoint (``DEBUGCAP_OPERATOR_METRICS_PORT``); 0 turns it
    off. Off by default so tests and a local ``debugcap-operator`` never fight over a port."""

    liveness_port: int = 0
    """Port of kopf's ``/healthz`` liveness endpoint (``DEBUGCAP_OPERATOR_LIVENESS_PORT``); 0 is off."""

    work_dir: Path = Path("/tmp/debugcap/operator")
    """Where bundles are written before upload (``DEBUGCAP_OPERATOR_WORK_DIR``). Under /tmp because
    that is writable in a read-only-root pod; each bundle is removed once stored."""

    pprof_probe_seconds: float = 10.0
    """How long the pre-flight check of the pprof port may take, in seconds. A port-forward to a
    healthy pod answers in well under a second; 10 s tolerates a busy kubelet."""

    command_mode: str = "auto"
    """Where exec collectors run when a capture does not say (``DEBUGCAP_OPERATOR_COMMAND_MODE``):
    exec, ephemeral or auto (ephemeral only for a target without a shell)."""

    ephemeral_containers: bool = True
    """The operator-wide switch (``DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS``, the chart's
    ``debugContainer.enabled``, which also grants ``pods/ephemeralcontainers``). Off: captures
    only exec, and one that asks for ``commandMode: ephemeral`` fails with this name."""

    debug_image: str = DEFAULT_DEBUG_IMAGE
    """The ephemeral debug container's toolbox image (``DEBUGCAP_OPERATOR_DEBUG_IMAGE``)."""

    command_namespaces: tuple[str, ...] = ()
    """Namespaces where templates' ``command`` steps run without the namespace's own opt-in label
    ``debugcap.io/commands=allowed`` (``DEBUGCAP_OPERATOR_COMMAND_NAMESPACES``, comma-separated).
    Elsewhere those steps are skipped (:func:`debugcap.operator.templating.expand_for_namespace`)."""

    allowed_debug_images: tuple[str, ...] = ()
    """Other images a capture may name in ``spec.parameters.debugImage``
    (``DEBUGCAP_OPERATOR_ALLOWED_DEBUG_IMAGES``, comma-separated). Only these and
    :attr:`debug_image`: whoever may create a DebugCapture must not pick code to run in a pod."""

    analysis_trace_limit_mib: int = ANALYSIS_TRACE_LIMIT_MIB
    """The largest execution trace the analysis of a bundle reads, in MiB
    (``DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB``); 0 reads none. Raise it with the operator's
    memory limit: reading costs about 12 MB per MiB of trace, one analysis at a time."""

    http_transport: str = "auto"
    """How Go endpoints are reached when a capture does not say (``DEBUGCAP_OPERATOR_TRANSPORT``):
    direct, proxy, port-forward or auto."""

    triggered_captures: int = 4
    """Captures fired by DebugTriggers that may run at once, across all triggers
    (``DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES``). A firing over it is suppressed and counted. Each
    pre-kill capture is a heap and a goroutine profile of a second or so, so four keep up with a
    node's worth of pods dying at once without a burst of captures on a struggling cluster."""

    alert_webhook_port: int = 0
    """Port of the Alertmanager webhook receiver (``DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT``); 0, the
    default, serves none. It needs :attr:`alert_webhook_token_file`."""

    alert_webhook_token_file: Path | None = None
    """File holding the bearer token Alertmanager must send
    (``DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE``, a mounted Secret key); read at start-up."""

    alert_webhook_tls_cert_file: Path | None = None
    """Certificate (PEM) of the receiver (``DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_CERT_FILE``); with
    the key file the receiver speaks HTTPS, without both plain HTTP."""

    alert_webhook_tls_key_file: Path | None = None
    """The certificate's private key (``DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_KEY_FILE``)."""

    alert_namespace_label: str = "namespace"
    """The alert label naming the pod's namespace (``DEBUGCAP_OPERATOR_ALERT_NAMESPACE_LABEL``)."""

    alert_pod_label: str = "pod"
    """The alert label naming the pod (``DEBUGCAP_OPERATOR_ALERT_POD_LABEL``)."""

    presigned_downloads: bool = True
    """Whether DebugDownloads are answered with presigned URLs (``DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS``,
    the chart's ``operator.presignedDownloads``). Off: they are left unanswered, and users download
    with their own S3 credentials only."""

    presigned_ttl: timedelta = timedelta(minutes=5)
    """How long a presigned URL works (``DEBUGCAP_OPERATOR_PRESIGNED_TTL``, 10s to 1h); its
    DebugDownload is deleted then. Five minutes start any download; the transfer itself may take
    longer, since S3 checks the expiry when a request starts."""

    presigned_endpoint: str = ""
    """The S3 endpoint as users reach it, when not the operator's own ``DEBUGCAP_S3_ENDPOINT``
    (``DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT``: ``https://s3.example.com``); URLs are signed for it."""

    download_policy: str = "debugcap-downloads"
    """The ValidatingAdmissionPolicy (and binding) that checks who may create a DebugDownload
    (``DEBUGCAP_OPERATOR_DOWNLOAD_POLICY``; the chart names it after the release). No URL is
    handed out while it is missing."""

    redaction_patterns: tuple[tuple[str, str], ...] = ()
    """Company-specific secret formats every capture masks, after the built-in detectors and beside
    a template's own ``spec.redaction.patterns`` (``DEBUGCAP_OPERATOR_REDACTION_PATTERNS``: the
    path of a YAML or JSON file of ``{name, regex}`` mappings, the chart's ConfigMap of
    ``redaction.patterns``, or that document inline). RE2 syntax; checked at start-up, so a bad
    pattern stops the operator instead of leaking what it should have masked."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DebugcapConfig:
        """Settings from the environment; ``environ`` is for tests, None reads ``os.environ``."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def integer(name: str, default: int, minimum: int) -> int:
            return _integer(env, name, default, minimum)

        def duration(name: str, default: timedelta) -> timedelta:
            raw = env.get(name, "").strip()
            return parse_duration(raw, field=name) if raw else default

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            raw = env.get(name, "").strip() or default
            if raw not in allowed:
                raise ConfigError(f"{name}={raw!r} is not one of {', '.join(allowed)}")
            return raw

        def listed(name: str) -> tuple[str, ...]:
            return tuple(n.strip() for n in env.get(name, "").split(",") if n.strip())

        def path(name: str) -> Path | None:
            raw = env.get(name, "").strip()
            return Path(raw) if raw else None

        ephemeral = _switch(env, "DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS", defaults.ephemeral_containers)
        namespaces = listed("DEBUGCAP_OPERATOR_NAMESPACES")
        mode = choice("DEBUGCAP_OPERATOR_COMMAND_MODE", defaults.command_mode, COMMAND_MODES)
        if mode == "ephemeral" and not ephemeral:
            raise ConfigError("DEBUGCAP_OPERATOR_COMMAND_MODE=ephemeral needs debug containers, which "
                              "DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS=false turns off; set one or the other")
        ports = _ports(env)
        webhook_port = ports["DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT"]
        token_file = path("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE")
        if webhook_port and token_file is None:
            raise ConfigError("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT is set but "
                              "DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE is not: the receiver accepts only "
                              "requests bearing the token in that file (mount it from a Secret)")
        cert, key = (path("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_CERT_FILE"),
                     path("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_KEY_FILE"))
        if (cert is None) != (key is None):
            raise ConfigError("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_CERT_FILE and _TLS_KEY_FILE go together; "
                              "set both for HTTPS, or neither")
        return cls(
            triggered_captures=integer("DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES", defaults.triggered_captures, 1),
            alert_webhook_port=webhook_port, alert_webhook_token_file=token_file,
            alert_webhook_tls_cert_file=cert, alert_webhook_tls_key_file=key,
            alert_namespace_label=env.get("DEBUGCAP_OPERATOR_ALERT_NAMESPACE_LABEL", "").strip()
            or defaults.alert_namespace_label,
            alert_pod_label=env.get("DEBUGCAP_OPERATOR_ALERT_POD_LABEL", "").strip() or defaults.alert_pod_label,
            command_mode=mode,
            ephemeral_containers=ephemeral,
            debug_image=env.get("DEBUGCAP_OPERATOR_DEBUG_IMAGE", "").strip() or defaults.debug_image,
            allowed_debug_images=listed("DEBUGCAP_OPERATOR_ALLOWED_DEBUG_IMAGES"),
            command_namespaces=listed("DEBUGCAP_OPERATOR_COMMAND_NAMESPACES"),
            http_transport=choice("DEBUGCAP_OPERATOR_TRANSPORT", defaults.http_transport, HTTP_TRANSPORTS),
            concurrency=integer("DEBUGCAP_OPERATOR_CONCURRENCY", defaults.concurrency, 1),
            lingering_captures=integer("DEBUGCAP_OPERATOR_LINGERING_CAPTURES", 0, 1) or None,
            default_ttl=duration("DEBUGCAP_OPERATOR_DEFAULT_TTL", defaults.default_ttl),
            scheduled_ttl=duration("DEBUGCAP_OPERATOR_SCHEDULED_TTL", defaults.scheduled_ttl),
            namespaces=namespaces,
            metrics_port=ports["DEBUGCAP_OPERATOR_METRICS_PORT"],
            liveness_port=ports["DEBUGCAP_OPERATOR_LIVENESS_PORT"],
            work_dir=Path(env.get("DEBUGCAP_OPERATOR_WORK_DIR", "").strip() or defaults.work_dir),
            analysis_trace_limit_mib=integer("DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB",
                                             defaults.analysis_trace_limit_mib, 0),
            redaction_patterns=redact_custom.from_setting(env.get(REDACTION_PATTERNS, ""), source=REDACTION_PATTERNS),
            **_download_fields(env, defaults),
        )

    @property
    def analysis_trace_limit(self) -> int:
        """:attr:`analysis_trace_limit_mib` in bytes."""
        return self.analysis_trace_limit_mib << 20


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}={raw!r} is not true or false")
    return default if not raw else raw in ("true", "1", "yes")


def _download_fields(env: Mapping[str, str], defaults: DebugcapConfig) -> dict[str, Any]:
    """The presigned-download settings of :class:`DebugcapConfig` (docs/captures.md)."""
    raw = env.get("DEBUGCAP_OPERATOR_PRESIGNED_TTL", "").strip()
    ttl = parse_duration(raw, field="DEBUGCAP_OPERATOR_PRESIGNED_TTL") if raw else defaults.presigned_ttl
    if not MIN_PRESIGNED_TTL <= ttl <= MAX_PRESIGNED_TTL:
        raise ConfigError(f"DEBUGCAP_OPERATOR_PRESIGNED_TTL={raw!r} must be between 10s and 1h: a presigned URL "
                          "is a credential for as long as it lives")
    return {"presigned_downloads": _switch(env, "DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS",
                                           defaults.presigned_downloads),
            "presigned_ttl": ttl,
            "presigned_endpoint": _presigned_endpoint(env.get("DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT", "").strip()),
            "download_policy": env.get("DEBUGCAP_OPERATOR_DOWNLOAD_POLICY", "").strip() or defaults.download_policy}

def _presigned_endpoint(raw: str) -> str:
    """Checked when the operator starts: a bad one would otherwise fail each signing, unanswered."""
    if not raw:
        return raw
    from urllib.parse import urlsplit

    from debugcap.storage.s3_errors import parse_endpoint

    try:
        host, _ = parse_endpoint(raw, True)
        urlsplit(f"//{host}").port  # noqa: B018 - raises on a port out of range or a broken IPv6 host
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT={raw!r} is not an S3 endpoint users can reach "
                          f"({exc}); set it like https://s3.example.com or s3.example.com:9000") from exc
    return raw


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _ports(env: Mapping[str, str]) -> dict[str, int]:
    """The ports of the operator's servers (PORT_VARIABLES; 0, the default, is off), checked here,
    naming the variable: past 65535 binding raises an OverflowError that names nothing, and two
    servers on one port fail the second's bind, both only once the operator is starting them."""
    ports: dict[str, int] = {}
    taken: dict[int, str] = {}
    for name in PORT_VARIABLES:
        number = ports[name] = _integer(env, name, 0, 0)
        if number > MAX_PORT:
            raise ConfigError(f"{name}={number} is not a port: use 1 to {MAX_PORT}, or 0 to turn it off")
        if number and number in taken:
            raise ConfigError(f"{name} and {taken[number]} are both {number}: each of the operator's servers needs a "
                              "port of its own; change one")
        taken[number] = name
    return ports
