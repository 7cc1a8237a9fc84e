"""Time in a capture: the clock every wait goes through, and the whole-capture deadline.

Used by :mod:`debugcap.capture.run` (the deadline), :mod:`debugcap.capture.window` (the head
start of the steps outside the window) and :mod:`debugcap.capture.steps` (the mid-window delay,
step durations). Every wait in the engine is ``clock.wait(event, timeout)``, so a unit test
drives the whole engine with a fake clock and events, and never depends on how fast the
machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Protocol

from debugcap import templates
from debugcap.collectors import base
from debugcap.settings import CaptureSettings


class Clock(Protocol):
    """Monotonic seconds, and waiting on an event for at most some of them."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds passed (None: no limit); True if it is set."""


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``Event.wait``."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)


MONOTONIC = MonotonicClock()
# How the message of a step the deadline abandoned begins (the operator names such steps in the
# pod's message even when they kept files and ended Partial).
ABANDONED = "abandoned: "


class Deadline:
    """The whole capture's deadline (``CaptureSettings.capture_timeout_seconds``), fixed when the
    capture starts. ``seconds`` None: no deadline. ``setting``: how the user raises it, for the
    message of the steps it abandons (the operator's ``spec.parameters.deadlineSeconds``...)."""

    def __init__(self, seconds: float | None, *, clock: Clock, setting: str) -> None:
        self.seconds, self.setting, self._clock = seconds, setting, clock
        self._at = None if seconds is None else clock.now() + seconds

    def wait(self, event: threading.Event) -> bool:
        """Wait for ``event`` until the deadline; False when the deadline passed first."""
        if self._at is None:
            return self._clock.wait(event, None)
        return self._clock.wait(event, max(self._at - self._clock.now(), 0.0))

    def abandoned(self, *, started: bool, kept: bool) -> str:
        """The message of a step the deadline abandoned: running (``started``) or not yet begun;
        ``kept``: files it added before are in the bundle."""
        what = "still running at" if started else "not started before"
        files = "; the files it wrote before are in the bundle" if kept else ""
        return (f"{ABANDONED}{what} the capture deadline of {self.seconds:.10g} s ({self.setting}){files}; "
                f"raise {self.setting} or shorten the template")


def deadline_seconds(settings: CaptureSettings, template: templates.ExpandedTemplate,
                     collectors: Mapping[str, type[base.Collector]]) -> float | None:
    """The capture's deadline in seconds: the one set, or the template's own length (its longest
    step: steps run side by side) plus the slack; None only when both are off. A step the caller
    skipped runs for no time, whatever its parameters still say."""
    if settings.capture_timeout_seconds is not None:
        return settings.capture_timeout_seconds
    if settings.capture_slack_seconds is None:
        return None
    length = max((_expected(collectors[s.collector], s.params) for s in template.steps
                   if s.collector in collectors and not s.skipped), default=0.0)
    return length + settings.capture_slack_seconds


def _expected(collector: type[base.Collector], params: Mapping[str, object]) -> float:
    """A step's own length; a collector that cannot say (a bad parameter, which its step will
    report) counts as instant rather than failing the whole capture here."""
    try:
        return max(float(collector.expected_seconds(params)), 0.0)
    except (TypeError, ValueError):
        return 0.0
