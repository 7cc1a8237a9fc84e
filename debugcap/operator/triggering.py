"""When a DebugTrigger fires: its spec checked, each pod's reading judged, limits applied. Pure.

:mod:`debugcap.operator.triggers` reads the pods (:mod:`debugcap.capture.signals`, the pod status)
and the trigger's past firings (its captures and status), then calls :func:`crossings` and
:func:`judge` with plain values and a time, so every rule here is unit-tested without a cluster or
a clock: thresholds, goroutine growth over the last minute, restarts counted once, the cooldown per
pod and signal, ``maxCapturesPerHour`` per trigger, and the operator's cap on triggered captures.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from debugcap import errors, resources
from debugcap.errors import ConfigError
from debugcap.operator.config import parse_duration
from debugcap.operator.requests import CaptureRequest, parse_spec

DEFAULT_TEMPLATE: Final = "go-heap"
# Growth is the slope over the checks of the last GROWTH_WINDOW, once they span GROWTH_MIN_SPAN:
# a minute, as the field's unit says, and no less than half of one, so a burst of goroutines
# started together (a request fan-out) between two checks is not a rate.
GROWTH_WINDOW: Final = timedelta(seconds=90)
GROWTH_MIN_SPAN: Final = timedelta(seconds=30)
# A restart fires only while it is recent: an operator down for an hour does not capture, on its
# return, a process that has been running healthily since. Five minutes, or three checks.
RESTART_FRESH: Final = timedelta(minutes=5)
HOUR: Final = timedelta(hours=1)
# A memory firing's capture takes the urgent places; the others queue like any capture. Each kind
# is held to the operator's cap on its own, so slow captures cannot keep a pre-kill one out.
URGENT_REASONS: Final = frozenset({"memoryPercentOfLimit"})
_LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                         r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def restart_fresh(interval: timedelta) -> timedelta:
    """How recent a restart must be to fire: RESTART_FRESH, or three checks when they are longer."""
    return max(RESTART_FRESH, 3 * interval)


@dataclass(frozen=True)
class When:
    memory_percent: int | None = None
    goroutines: int | None = None
    growth_per_minute: int | None = None
    restarted: bool = False
    alert: str | None = None

    def reads_go(self) -> bool:
        return self.memory_percent is not None or self.goroutines is not None or self.growth_per_minute is not None


@dataclass(frozen=True)
class TriggerSpec:
    request: CaptureRequest  # the target, as a DebugCapture would read it
    when: When
    interval: timedelta
    cooldown: timedelta
    max_per_hour: int
    suspend: bool
    template: str
    capture_labels: Mapping[str, str] = field(default_factory=dict)
    capture_spec: Mapping[str, Any] = field(default_factory=dict)


def parse_trigger(spec: Mapping[str, Any]) -> TriggerSpec:
    """Check a DebugTrigger spec; raise :class:`ConfigError` naming the field and the fix."""
    raw_when = spec.get("when")
    if not isinstance(raw_when, Mapping) or not raw_when:
        raise ConfigError("spec.when needs at least one condition: memoryPercentOfLimit, goroutines, "
                          "goroutineGrowthPerMinute, restarted: true or alert")
    unknown = sorted(set(raw_when) - set(resources.FIRING_REASONS))
    if unknown:
        raise ConfigError(f"spec.when.{unknown[0]} is not a condition; conditions: "
                          f"{', '.join(resources.FIRING_REASONS)}")
    alert = raw_when.get("alert")
    if alert is not None and not (isinstance(alert, Mapping) and isinstance(alert.get("name"), str)
                                  and alert["name"].strip()):
        raise ConfigError("spec.when.alert needs a name: the alertname label of the Alertmanager alert")
    restarted = raw_when.get("restarted", False)
    if not isinstance(restarted, bool):
        raise ConfigError(f"spec.when.restarted must be true or false, got {restarted!r}")
    when = When(memory_percent=_whole(raw_when, "memoryPercentOfLimit", 1, 99),
                goroutines=_whole(raw_when, "goroutines", 1, None),
                growth_per_minute=_whole(raw_when, "goroutineGrowthPerMinute", 1, None),
                restarted=restarted, alert=str(alert["name"]).strip() if alert else None)
    if not (when.reads_go() or when.restarted or when.alert):
        raise ConfigError("spec.when needs at least one condition: memoryPercentOfLimit, goroutines, "
                          "goroutineGrowthPerMinute, restarted: true or alert (restarted: false alone watches nothing)")
    template = str(spec.get("template") or DEFAULT_TEMPLATE)
    capture_template = spec.get("captureTemplate") or {}
    capture_spec = dict(capture_template.get("spec") or {})
    for own in ("target", "template", "firing"):
        if own in capture_spec:
            raise ConfigError(f"spec.captureTemplate.spec.{own} is the trigger's own (spec.target, spec.template, "
                              "and what fired); remove it")
    labels = dict((capture_template.get("metadata") or {}).get("labels") or {})
    for key, value in labels.items():
        if not _LABEL_NAME.match(str(key)) or len(str(key).rsplit("/", 1)[-1]) > 63:
            raise ConfigError(f'spec.captureTemplate.metadata.labels: "{errors.shorten(str(key), 80)}" is not a label '
                              "name (letters, digits, -_. and an optional DNS prefix/, at most 63 characters)")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ConfigError(f'spec.captureTemplate.metadata.labels.{key}: "{errors.shorten(str(value), 80)}" is not '
                              "a label value (at most 63 letters, digits and -_., starting and ending alphanumeric)")
    target = spec.get("target") or {}
    try:
        request = parse_spec({"target": {**target, "maxPods": target.get("maxPods", 100)}, "template": template,
                              **{k: v for k, v in capture_spec.items() if k in ("parameters", "ttl")}})
    except ConfigError as exc:
        # parameters and ttl are the captureTemplate's: say so, not spec.parameters.
        text = str(exc)
        for own in ("spec.parameters", "spec.ttl"):
            if text.startswith(own):
                raise ConfigError("spec.captureTemplate." + text) from exc
        raise
    interval = _whole(spec, "checkIntervalSeconds", 1, 3600) or 10
    cooldown = parse_duration(str(spec.get("cooldown") or "15m"), field="spec.cooldown")
    return TriggerSpec(
        request=request, when=when, interval=timedelta(seconds=interval), cooldown=cooldown,
        max_per_hour=_whole(spec, "maxCapturesPerHour", 1, 100) or 6, suspend=bool(spec.get("suspend", False)),
        template=template, capture_labels=labels,
        capture_spec=capture_spec)


def _whole(doc: Mapping[str, Any], key: str, low: int, high: int | None) -> int | None:
    value = doc.get(key)
    where = f"spec.when.{key}" if key in resources.FIRING_REASONS else f"spec.{key}"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{where} must be a whole number {bounds}, got {value!r}")
    return value


@dataclass(frozen=True)
class Termination:
    reason: str  # OOMKilled, Error...
    exit_code: int
    finished: datetime


@dataclass(frozen=True)
class Reading:
    """One pod's signals at one check (None: not asked, or not read; ``error`` says why)."""

    pod: str
    at: datetime
    uid: str = ""  # the pod's: a pod recreated under the same name is another process
    memory_bytes: int | None = None
    memory_limit: int | None = None
    goroutines: int | None = None
    restarts: int = 0
    termination: Termination | None = None
    error: str = ""

    @property
    def memory_percent(self) -> float | None:
        if self.memory_bytes is None or not self.memory_limit:
            return None
        return 100.0 * self.memory_bytes / self.memory_limit


class GrowthTracker:
    """Goroutine counts per pod over the last GROWTH_WINDOW, and the slope they show."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[datetime, int]]] = {}

    def add(self, pod: str, at: datetime, goroutines: int) -> float | None:
        """Record a count; the growth per minute since the oldest count within the window, once the
        counts span GROWTH_MIN_SPAN (None before). A process that restarted starts over."""
        samples = self._samples.setdefault(pod, deque())
        while samples and (at - samples[0][0] > GROWTH_WINDOW or samples[0][0] > at):
            samples.popleft()
        samples.append((at, goroutines))
        first_at, first = samples[0]
        span = at - first_at
        if span < GROWTH_MIN_SPAN:
            return None
        return (goroutines - first) * 60.0 / span.total_seconds()

    def restart(self, pod: str) -> None:
        self._samples.pop(pod, None)

    def keep_only(self, pods: Iterable[str]) -> None:
        keep = set(pods)
        for pod in [p for p in self._samples if p not in keep]:
            del self._samples[pod]


@dataclass(frozen=True)
class Crossing:
    """A signal over its threshold: what a firing records (``value`` is for people)."""

    pod: str
    reason: str  # one of resources.FIRING_REASONS
    observed: float
    threshold: float | None
    value: str
    at: datetime
    since: datetime | None = None  # a restart's: when the previous container ended


def crossings(when: When, reading: Reading, growth: float | None, *, created: datetime,
              fresh: timedelta = RESTART_FRESH) -> list[Crossing]:
    """The signals of ``reading`` over their thresholds. ``created``: the trigger's creation, before
    which no restart counts; ``fresh``: how recent a restart must be (:func:`restart_fresh`)."""
    out: list[Crossing] = []
    pod, at = reading.pod, reading.at
    pct = reading.memory_percent
    if when.memory_percent is not None and pct is not None and pct >= when.memory_percent:
        out.append(Crossing(pod, "memoryPercentOfLimit", round(pct, 1), when.memory_percent,
                            f"{_mib(reading.memory_bytes)} of the {_mib(reading.memory_limit)} limit ({pct:.0f}%) "
                            f"held by the Go runtime, threshold {when.memory_percent}%", at))
    if when.goroutines is not None and reading.goroutines is not None and reading.goroutines >= when.goroutines:
        out.append(Crossing(pod, "goroutines", reading.goroutines, when.goroutines,
                            f"{reading.goroutines} goroutines, threshold {when.goroutines}", at))
    if when.growth_per_minute is not None and growth is not None and growth >= when.growth_per_minute:
        out.append(Crossing(pod, "goroutineGrowthPerMinute", round(growth, 1), when.growth_per_minute,
                            f"goroutines growing by {growth:.0f}/min (now {reading.goroutines}), "
                            f"threshold {when.growth_per_minute}/min", at))
    end = reading.termination
    if when.restarted and end is not None and reading.restarts > 0 and end.finished >= created \
            and at - end.finished <= fresh:
        out.append(Crossing(pod, "restarted", reading.restarts, None,
                            f"restart {reading.restarts}: the previous container ended {end.reason} "
                            f"(exit code {end.exit_code}) at {end.finished.strftime('%Y-%m-%dT%H:%M:%SZ')}", at,
                            since=end.finished))
    return out


def _mib(n: int | None) -> str:
    return f"{(n or 0) / (1 << 20):.1f} MiB"


@dataclass(frozen=True)
class Past:
    """A firing already made (a capture of the trigger, or an entry of its status)."""

    pod: str
    reason: str
    at: datetime
    observed: float | None = None


@dataclass(frozen=True)
class Verdict:
    crossing: Crossing
    fire: bool
    limit: str = ""  # the limit that suppressed it: cooldown, maxCapturesPerHour, triggeredCaptures, restart seen
    message: str = ""


def kind(reason: str) -> str:
    """``urgent`` (a memory firing, which has places of its own) or ``regular``."""
    return "urgent" if reason in URGENT_REASONS else "regular"


def judge(found: Sequence[Crossing], past: Sequence[Past], *, now: datetime, cooldown: timedelta,
          max_per_hour: int, running: Mapping[str, int], cap: int) -> list[Verdict]:
    """Which crossings fire, in order; each one fired counts against the limits of the next.
    ``running``: triggered captures not yet finished, operator-wide, by :func:`kind`; ``cap``: how
    many of each kind may be."""
    history = list(past)
    busy = dict(running)
    out: list[Verdict] = []
    for c in found:
        mine = [p for p in history if p.pod == c.pod and p.reason == c.reason]
        last = max((p.at for p in mine), default=None)
        in_hour = sum(1 for p in history if now - p.at < HOUR)
        # A restart was handled when a firing of it came after the container it reports ended: a
        # pod recreated under the same name counts its restarts from 1 again, and they are new.
        if c.since is not None and any(p.at >= c.since for p in mine):
            out.append(Verdict(c, False, "restart seen", f"restart {c.observed:.0f} of {c.pod} was already handled"))
            continue
        if last is not None and now - last < cooldown:
            out.append(Verdict(c, False, "cooldown", f"{c.pod}: {c.reason} fired {_ago(now - last)} ago, "
                                                     f"within spec.cooldown {_ago(cooldown)}"))
        elif in_hour >= max_per_hour:
            out.append(Verdict(c, False, "maxCapturesPerHour",
                               f"{c.pod}: {in_hour} captures in the last hour, spec.maxCapturesPerHour is "
                               f"{max_per_hour}"))
        elif busy.get(kind(c.reason), 0) >= cap:
            out.append(Verdict(c, False, "triggeredCaptures",
                               f"{c.pod}: {busy.get(kind(c.reason), 0)} {kind(c.reason)} triggered captures running, "
                               f"the operator allows {cap} at once (DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES)"))
        else:
            out.append(Verdict(c, True))
            history.append(Past(c.pod, c.reason, now, c.observed))
            busy[kind(c.reason)] = busy.get(kind(c.reason), 0) + 1
    return out


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
