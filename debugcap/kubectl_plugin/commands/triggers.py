"""``kubectl debugcap trigger get|describe|suspend|resume``: DebugTriggers (docs/triggers.md).

A DebugTrigger watches pods' signals and makes a DebugCapture of a pod when one crosses. Triggers
are written as YAML (their conditions do not fit flags well); the plugin lists them, shows what
each watches, what it fired and why, and suspends or resumes them (``spec.suspend``: a suspended
trigger reads no signal and fires nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from debugcap import resources
from debugcap.kubectl_plugin import describe_lines as lines
from debugcap.kubectl_plugin.columns import TRIGGERS
from debugcap.kubectl_plugin.object_verbs import describe_command, get_command, suspend_command


def conditions_text(when: dict[str, Any]) -> str:
    """spec.when as a sentence: what fires the trigger."""
    parts = []
    if "memoryPercentOfLimit" in when:
        parts.append(f"memory >= {when['memoryPercentOfLimit']}% of the limit")
    if "goroutines" in when:
        parts.append(f"goroutines >= {when['goroutines']}")
    if "goroutineGrowthPerMinute" in when:
        parts.append(f"goroutines growing >= {when['goroutineGrowthPerMinute']}/min")
    if when.get("restarted"):
        parts.append("the container restarted")
    if "alert" in when:
        parts.append(f"alert {(when['alert'] or {}).get('name')}")
    return " or ".join(parts) or "<none>"


def describe(obj: dict[str, Any], made: list[dict[str, Any]] | None, events: list[dict[str, Any]] | None,
             now: datetime) -> list[str]:
    """``trigger describe``'s text: what it watches and fires on, its state, firings, the signals
    nearest their thresholds, its captures and Events."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    capture = spec.get("captureTemplate") or {}
    out = [lines.field("Name", meta["name"]), lines.field("Namespace", meta.get("namespace")),
           lines.field("Labels", lines.labels(meta)),
           lines.field("Target", lines.target(spec)),
           lines.field("Max Pods", (spec.get("target") or {}).get("maxPods", 100)),
           lines.field("Template", spec.get("template", "go-heap")),
           lines.field("Fires When", conditions_text(spec.get("when") or {})),
           lines.field("Check Interval", f"{spec.get('checkIntervalSeconds', 10)}s"),
           lines.field("Cooldown", spec.get("cooldown", "15m")),
           lines.field("Max Captures/Hour", spec.get("maxCapturesPerHour", 6)),
           lines.field("Suspend", "true" if spec.get("suspend") else "false")]
    if capture:
        labels = (capture.get("metadata") or {}).get("labels") or {}
        out += ["Capture Template:",
                lines.field("Labels", ",".join(f"{k}={v}" for k, v in labels.items()) or None, 2),
                lines.field("Spec", ", ".join(f"{k}={v}" for k, v in (capture.get("spec") or {}).items()) or None, 2)]
    out += [lines.field("Pods Watched", status.get("pods")),
            lines.field("Last Checked", lines.when(status.get("lastChecked"), now)),
            lines.field("Last Fired", lines.when(status.get("lastFired"), now)),
            lines.field("Fired", status.get("firedTotal", 0)),
            lines.field("Suppressed", status.get("suppressedTotal", 0)),
            lines.field("Message", status.get("message")),
            *lines.conditions(status.get("conditions") or []),
            *_firings(status.get("firings") or [], now), *_signals(status.get("signals") or []),
            *lines.captures(made, now), *lines.events(events, now)]
    verb = "resume" if spec.get("suspend") else "suspend"
    out.append(f"next: kubectl debugcap trigger {verb} {meta['name']} -n {meta.get('namespace')}")
    return out


def _firings(firings: list[dict[str, Any]], now: datetime) -> list[str]:
    if not firings:
        return [lines.field("Firings", None)]
    rows = [["Age", "Pod", "Signal", "Capture", "Value"]]
    rows += [[lines.age(f.get("time"), now), str(f.get("pod", "")), str(f.get("reason", "")),
              str(f.get("capture", "")), str(f.get("value", ""))] for f in firings]
    return ["Firings (newest first):", *lines.table(rows)]


def _signals(signals: list[dict[str, Any]]) -> list[str]:
    if not signals:
        return [lines.field("Signals", None)]
    rows = [["Pod", "Memory % Of Limit", "Goroutines", "Growth/Min", "Restarts", "Error"]]
    for s in signals:
        memory = s.get("memoryPercentOfLimit")
        growth = s.get("goroutineGrowthPerMinute")
        rows.append([str(s.get("pod", "")), f"{memory:.1f}" if isinstance(memory, (int, float)) else "",
                     str(s.get("goroutines", "")), f"{growth:.1f}" if isinstance(growth, (int, float)) else "",
                     str(s.get("restarts", "")), str(s.get("error", ""))])
    return ["Signals (nearest their thresholds):", *lines.table(rows)]


@click.group("trigger")
def trigger() -> None:
    """DebugTriggers: capture a pod when its memory, goroutines, restarts or an alert cross a line.

    \b
    kubectl debugcap trigger get -n shop -o wide
    kubectl debugcap trigger describe api-pre-oom -n shop
    kubectl debugcap trigger suspend api-pre-oom -n shop
    """


trigger.add_command(get_command(TRIGGERS))
trigger.add_command(describe_command(
    TRIGGERS, resources.TRIGGER_LABEL, describe,
    "A DebugTrigger: what it watches and fires on, its firings, signals, captures and Events."))
trigger.add_command(suspend_command(TRIGGERS, "suspend", True, "Suspend DebugTriggers: nothing is read or fired."))
trigger.add_command(suspend_command(TRIGGERS, "resume", False, "Resume suspended DebugTriggers."))


COMMANDS: list[click.Command] = [trigger]
