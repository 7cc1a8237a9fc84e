"""Watching a DebugCapture while the operator works: ``create --wait`` and ``logs -f``.

:func:`follow` polls the capture (one GET a second: a watch would need ``watch`` rights and a
reconnect loop, and a capture lasts seconds to minutes) until it ends or a deadline passes; the
clock and the sleep are parameters, so the tests drive it by hand. :class:`ProgressView` turns
what was seen into text: on a terminal a block of live lines, one per pod, redrawn in place; when
piped, a plain line each time something changed, so a CI log reads as a history. Both write to
stderr: stdout keeps only what a script reads (the name created, where bundles went).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from debugcap import errors
from debugcap.kubectl_plugin import terminal
from debugcap.kubectl_plugin.describe_lines import event_order, event_time
from debugcap.kubectl_plugin.describing import TERMINAL, human_size
from debugcap.kubectl_plugin.options import ExitCode

POLL_SECONDS: Final = 1.0
UNCLAIMED_SECONDS: Final = 30.0  # a capture with no status after this long: said to be unclaimed
_UP_AND_CLEAR = "\x1b[{n}F"  # cursor to the start of the line n lines up
_CLEAR_LINE = "\x1b[2K"


class WaitTimeout(errors.DebugcapError):
    """The capture did not end before the deadline."""


class CaptureGone(errors.DebugcapError):
    """The capture was deleted while it was followed."""


def exit_code(phase: str) -> int:
    """What ``create --wait`` exits with: the capture's outcome (docs/plugin.md has the table)."""
    return {"Completed": ExitCode.OK, "PartiallyFailed": ExitCode.PARTIALLY_FAILED,
            "Failed": ExitCode.NOTHING_COLLECTED}.get(phase, ExitCode.ERROR)


def phase_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


def follow(read: Callable[[], dict[str, Any] | None], *, timeout: float | None, interval: float | None = None,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """Each read of the capture, once a poll (``interval``, default :data:`POLL_SECONDS`), until
    it ends (the last one yielded is terminal).

    Raises :class:`WaitTimeout` when ``timeout`` seconds pass first and :class:`CaptureGone` when
    the capture is deleted; the message says what to run next."""
    interval = POLL_SECONDS if interval is None else interval
    deadline = None if timeout is None else clock() + timeout
    while True:
        obj = read()
        if obj is None:
            raise CaptureGone("the DebugCapture was deleted while it was followed (by someone else, or its ttl "
                              "expired)")
        yield obj
        if phase_of(obj) in TERMINAL:
            return
        if deadline is not None and clock() >= deadline:
            meta = obj.get("metadata") or {}
            raise WaitTimeout(f"debugcapture \"{meta.get('name')}\" is still {phase_of(obj)} after {timeout:g}s; "
                              f"it goes on in the cluster: follow it with kubectl debugcap logs {meta.get('name')} "
                              f"-n {meta.get('namespace')} -f")
        sleep(interval)


def pod_state(pod: Mapping[str, Any]) -> str:
    """One pod's progress in words: its phase, then its bundle or why it failed."""
    phase = str(pod.get("phase") or "Pending")
    bundle = pod.get("bundle") or {}
    if bundle.get("key"):
        detail = f"bundle {bundle.get('uri') or bundle['key']} ({human_size(int(bundle.get('sizeBytes') or 0))})"
    elif phase == "Running":
        detail = "capturing"
    elif phase == "Pending":
        detail = "waiting for a slot"
    else:
        detail = ""
    message = " ".join(str(pod.get("message") or "").split())
    text = f"{phase}, {detail}" if detail else phase
    return f"{text}: {message}" if message and phase != "Completed" else text


@dataclass
class ProgressView:
    """The text to write for each read of a capture (:meth:`update`), for a terminal or a pipe."""

    tty: bool
    clock: Callable[[], float] = time.monotonic
    width: int = 120
    _started: float | None = None
    _drawn: int = 0  # lines of the live block on screen
    _said: dict[str, str] = field(default_factory=dict)  # what the plain lines last said, per subject
    _since: dict[str, tuple[str, float]] = field(default_factory=dict)  # per pod: its phase, seen since

    def update(self, obj: Mapping[str, Any]) -> str:
        now = self.clock()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        return self._live(obj, now) if self.tty else self._plain(obj, elapsed)

    def _subjects(self, obj: Mapping[str, Any], elapsed: float) -> list[tuple[str, str]]:
        status = obj.get("status") or {}
        name = (obj.get("metadata") or {}).get("name", "")
        message = " ".join(str(status.get("message") or "").split())
        if not status and elapsed >= UNCLAIMED_SECONDS:
            # The operator writes Pending at once: no status this long means no operator serves it.
            message = (f"no operator has taken it up in {UNCLAIMED_SECONDS:.0f}s; is one running for this namespace? "
                       "(kubectl get pods -A -l app.kubernetes.io/name=debugcap)")
        head = f"{phase_of(obj)}: {message}" if message else phase_of(obj)
        subjects = [(f"debugcapture/{name}", head)]
        subjects += [(f"pod/{p.get('name')}", pod_state(p)) for p in status.get("pods") or []]
        # What the operator and the pods wrote, escaped here: the live view draws with escapes of its own.
        return [(terminal.one_line(subject), terminal.one_line(text)) for subject, text in subjects]

    def _plain(self, obj: Mapping[str, Any], elapsed: float) -> str:
        out = []
        for subject, text in self._subjects(obj, elapsed):
            if self._said.get(subject) != text:
                self._said[subject] = text
                out.append(f"[{elapsed:4.0f}s] {subject}: {text}\n")
        return "".join(out)

    def _live(self, obj: Mapping[str, Any], now: float) -> str:
        """The capture's line with the time since the wait began, then a line per pod with how long
        it has been Pending or Running; the block redrawn in place. Lines are cut to the terminal's
        width (less one, where some terminals wrap) so that a redraw moves up as many lines as it wrote."""
        assert self._started is not None
        (head, text), *pods = self._subjects(obj, now - self._started)
        lines = [f"[{now - self._started:4.0f}s] {head}: {text}"]
        for subject, state in pods:
            phase = state.split(",", 1)[0].split(":", 1)[0]
            since = self._since.get(subject)
            if since is None or since[0] != phase:
                since = self._since[subject] = (phase, now)
            if phase in ("Pending", "Running"):
                state = f"{phase} for {now - since[1]:.0f}s{state[len(phase):]}"
            lines.append(f"       {subject}: {state}")
        limit = max(self.width - 1, 20)
        lines = [line if len(line) <= limit else line[: limit - 3] + "..." for line in lines]
        out = _UP_AND_CLEAR.format(n=self._drawn) if self._drawn else ""
        out += "".join(f"{_CLEAR_LINE}{line}\n" for line in lines)
        # A block that shrank (never: pods are only added) would leave lines behind; clear them.
        out += "".join(f"{_CLEAR_LINE}\n" for _ in range(self._drawn - len(lines)))
        self._drawn = max(self._drawn, len(lines))
        return out


def event_line(event: Mapping[str, Any]) -> str:
    """An Event as ``logs`` prints it: time, type, reason, message."""
    count = int(event.get("count") or 1)
    message = " ".join(str(event.get("message", "")).split()) + (f" (x{count})" if count > 1 else "")
    return f"{event_time(event)[:19].replace('T', ' ')}  {str(event.get('type', '')):<8} " \
           f"{str(event.get('reason', '')):<18} {message}"


@dataclass
class LogFeed:
    """What ``logs`` has not printed yet: new Events, and pods whose state changed."""

    seen_events: set[str] = field(default_factory=set)
    pods: dict[str, str] = field(default_factory=dict)
    phase: str = ""

    def events(self, items: list[dict[str, Any]]) -> list[str]:
        fresh = []
        for e in items:
            key = f"{(e.get('metadata') or {}).get('name')}/{e.get('count') or 1}"
            if key not in self.seen_events:
                self.seen_events.add(key)
                fresh.append(e)
        fresh.sort(key=event_order)
        return [event_line(e) for e in fresh]

    def progress(self, obj: Mapping[str, Any], stamp: str) -> list[str]:
        out = []
        phase = phase_of(obj)
        if phase != self.phase:
            self.phase = phase
            out.append(f"{stamp}  {'status':<8} {'phase':<18} {phase}")
        for pod in (obj.get("status") or {}).get("pods") or []:
            text = pod_state(pod)
            if self.pods.get(str(pod.get("name"))) != text:
                self.pods[str(pod.get("name"))] = text
                out.append(f"{stamp}  {'pod':<8} {str(pod.get('name')):<18} {text}")
        return out
