"""A DebugCapture's spec, checked and turned into a :class:`CaptureRequest`.

Pure functions, called by :mod:`debugcap.operator.captures` before any API call, and unit-tested.
The CRD schema already rejects most malformed specs; these checks repeat the ones that matter so a
cluster whose CRD lacks CEL rules (or an old stored object) still ends with a clear message. Every
message starts with the field it is about.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NewType

from debugcap import resources
from debugcap.errors import ConfigError
from debugcap.operator.config import parse_duration

CaptureName = NewType("CaptureName", str)

DEFAULT_TEMPLATE: Final = "go-profile"
DEFAULT_MAX_PODS: Final = 10
WORKLOAD_KINDS = resources.WORKLOAD_KINDS
TEMPLATE_PARAMETERS = resources.TEMPLATE_PARAMETERS
ENGINE_PARAMETERS = resources.ENGINE_PARAMETERS
ACCESS_PARAMETERS = resources.ACCESS_PARAMETERS
FIRING_REASONS = resources.FIRING_REASONS
# The firing whose capture races the OOM kill (see CaptureRequest.urgent), and the post-mortem one.
MEMORY_REASON: Final = "memoryPercentOfLimit"
RESTART_REASON: Final = "restarted"
# The CRD's maxLength of spec.firing's strings, repeated for objects stored before it had them.
TRIGGER_NAME_CHARS: Final = 253
VALUE_CHARS: Final = 1024


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str


@dataclass(frozen=True)
class Firing:
    """``spec.firing``: the DebugTrigger signal that created this capture, and what crossed.

    ``observed`` is the number that crossed (percent of the limit, goroutines, goroutines per
    minute, the restart count), ``threshold`` the trigger's; an alert may have neither."""

    trigger: str
    reason: str  # one of resources.FIRING_REASONS
    value: str  # what crossed, in words: "212.4 MiB of 256 MiB (83%) in use by the Go runtime"
    time: datetime  # when the signal was read
    observed: float | None = None
    threshold: float | None = None

    def as_status(self) -> dict[str, Any]:
        """``status.firing``: the same object, so `kubectl get dcap -o yaml` shows what fired."""
        out: dict[str, Any] = {"trigger": self.trigger, "reason": self.reason, "value": self.value,
                               "time": self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if self.observed is not None:
            out["observed"] = self.observed
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


@dataclass(frozen=True)
class CaptureRequest:
    """What one DebugCapture asks for; exactly one of ``pod``, ``selector``, ``workload`` is set."""

    pod: str | None = None
    selector: str | None = None  # in the ``label_selector`` query syntax
    workload: Workload | None = None
    container: str | None = None
    max_pods: int = DEFAULT_MAX_PODS
    template: str = DEFAULT_TEMPLATE
    template_parameters: Mapping[str, int] = field(default_factory=dict)
    pprof_port: int | None = None
    timeout_seconds: int | None = None
    deadline_seconds: int | None = None
    command_mode: str | None = None  # spec.parameters.commandMode: exec, ephemeral or auto
    transport: str | None = None  # spec.parameters.transport: direct, proxy, port-forward or auto
    debug_image: str | None = None  # spec.parameters.debugImage: one the operator allows
    ttl: timedelta | None = None
    firing: Firing | None = None  # spec.firing: set by the DebugTrigger that created the capture

    @property
    def urgent(self) -> bool:
        """Whether this capture races an OOM kill: a memory firing. Its steps are cut to the quick
        ones (:mod:`~debugcap.operator.firing_steps`) and its pod skips the queues
        (:meth:`debugcap.operator.pod_scheduling.PodScheduler.capture`, ``urgent``)."""
        return self.firing is not None and self.firing.reason == MEMORY_REASON

    def describe_target(self) -> str:
        if self.pod is not None:
            return f"pod/{self.pod}"
        if self.workload is not None:
            return f"{self.workload.kind.lower()}/{self.workload.name}"
        return f"pods matching {self.selector}"


def selector_to_string(selector: Mapping[str, Any], *, where: str) -> str:
    """A ``metav1.LabelSelector`` as ``label_selector`` text: ``app=x,tier in (a,b),!debug``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or [])
        if not key:
            raise ConfigError(f"{where}.matchExpressions: every expression needs a key")
        if op in ("In", "NotIn"):
            if not values:
                raise ConfigError(f'{where}.matchExpressions: "{key} {op}" needs at least one value')
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ConfigError(f'{where}.matchExpressions: operator "{op}" of "{key}" is not one of '
                              "In, NotIn, Exists, DoesNotExist")
    if not parts:
        raise ConfigError(f"{where} is empty and would match every pod in the namespace; "
                          "give matchLabels or matchExpressions")
    return ",".join(parts)


def parse_spec(spec: Mapping[str, Any]) -> CaptureRequest:
    """Check a DebugCapture spec; raise :class:`ConfigError` naming the field and the fix."""
    target = spec.get("target") or {}
    given = [k for k in ("pod", "selector", "workload") if target.get(k) is not None]
    if len(given) != 1:
        found = f"it sets {' and '.join(given)}" if given else "it sets none"
        raise ConfigError(f"spec.target must set exactly one of pod, selector, workload ({found}); "
                          "use one DebugCapture per target")
    pod = selector = None
    workload = None
    if given[0] == "pod":
        pod = str(target["pod"])
    elif given[0] == "selector":
        selector = selector_to_string(target["selector"], where="spec.target.selector")
    else:
        raw = target["workload"]
        if raw.get("kind") not in WORKLOAD_KINDS or not raw.get("name"):
            raise ConfigError(f"spec.target.workload needs kind (one of {', '.join(WORKLOAD_KINDS)}) and name; "
                              f"got kind={raw.get('kind')!r} name={raw.get('name')!r}")
        workload = Workload(kind=str(raw["kind"]), name=str(raw["name"]))
    max_pods = int(target.get("maxPods", DEFAULT_MAX_PODS))
    if max_pods < 1:
        raise ConfigError(f"spec.target.maxPods is {max_pods}; it must be at least 1")

    params = dict(spec.get("parameters") or {})
    unknown = sorted(set(params) - set(TEMPLATE_PARAMETERS) - set(ENGINE_PARAMETERS) - set(ACCESS_PARAMETERS))
    if unknown:
        raise ConfigError(f"spec.parameters.{unknown[0]} is not a parameter; valid parameters: "
                          f"{', '.join([*TEMPLATE_PARAMETERS, *ENGINE_PARAMETERS, *ACCESS_PARAMETERS])}")
    access = {key: params.pop(key) for key in ACCESS_PARAMETERS if key in params}
    for key, value in access.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"spec.parameters.{key} must be a non-empty string, got {value!r}")
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"spec.parameters.{key} must be a whole number of at least 1, got {value!r}")
    ttl = spec.get("ttl")
    firing = parse_firing(spec["firing"]) if spec.get("firing") is not None else None
    if firing is not None and pod is None:
        raise ConfigError(f"spec.target: a capture fired by a DebugTrigger (spec.firing) targets exactly one pod "
                          f"(spec.target.pod), not {given[0]}")
    return CaptureRequest(
        pod=pod, selector=selector, workload=workload,
        container=str(target["container"]) if target.get("container") else None,
        max_pods=max_pods,
        template=str(spec.get("template") or DEFAULT_TEMPLATE),
        template_parameters={TEMPLATE_PARAMETERS[k]: v for k, v in params.items() if k in TEMPLATE_PARAMETERS},
        pprof_port=params.get("pprofPort"),
        timeout_seconds=params.get("timeoutSeconds"),
        deadline_seconds=params.get("deadlineSeconds"),
        command_mode=access.get("commandMode"), transport=access.get("transport"),
        debug_image=access.get("debugImage"),
        ttl=parse_duration(str(ttl), field="spec.ttl") if ttl else None,
        firing=firing,
    )


def parse_firing(raw: Any) -> Firing:
    """Check ``spec.firing``; raise :class:`ConfigError` naming ``spec.firing.<field>``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"spec.firing must be an object with trigger, reason, value and time, got {raw!r:.60}")
    unknown = sorted(set(raw) - {"trigger", "reason", "value", "observed", "threshold", "time"})
    if unknown:
        raise ConfigError(f"spec.firing.{unknown[0]} is not a field of spec.firing; its fields: trigger, reason, "
                          "value, observed, threshold, time")

    def text(name: str, limit: int) -> str:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"spec.firing.{name} must be a non-empty string, got {value!r:.60}")
        if len(value) > limit:
            raise ConfigError(f"spec.firing.{name} is {len(value)} characters long; at most {limit}")
        return value

    def number(name: str) -> float | None:
        value = raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"spec.firing.{name} must be a number, got {value!r:.60}")
        return float(value)

    trigger, value = text("trigger", TRIGGER_NAME_CHARS), text("value", VALUE_CHARS)
    reason = raw.get("reason")
    if reason not in FIRING_REASONS:
        raise ConfigError(f"spec.firing.reason {reason!r:.60} is not one of {', '.join(FIRING_REASONS)}")
    stamp = text("time", 64)
    try:
        when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError(f"spec.firing.time {stamp!r:.60} is not an RFC 3339 time with a zone, like "
                          "2026-12-04T21:00:00Z")
    return Firing(trigger=trigger, reason=str(reason), value=value, time=when,
                  observed=number("observed"), threshold=number("threshold"))


def camel_parameter(snake: str) -> str:
    """``cpu_seconds`` -> ``cpuSeconds``, to name the spec field in a template's error message."""
    for camel, name in TEMPLATE_PARAMETERS.items():
        if name == snake:
            return camel
    return snake
