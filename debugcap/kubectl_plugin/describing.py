"""What ``kubectl debugcap describe`` prints: a DebugCapture, its pods and its Events, as text.

Pure: a capture object and its Events in, lines out; the command reads them and prints. Every
field is read from the status as the CRD describes it (``crds/debugcap.io_debugcaptures.yaml``):
the plugin never imports the operator, so a status written by an older or newer operator, with
fields missing, still describes, with ``<none>`` where kubectl would print it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from debugcap.kubectl_plugin import describe_lines as layout

TERMINAL: Final = ("Completed", "PartiallyFailed", "Failed")
STORED: Final = ("Completed", "PartiallyFailed")  # phases that stored something
_LABEL = 16  # the width of kubectl describe's first column


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def firing_text(firing: Mapping[str, Any]) -> str:
    """The DebugTrigger signal that made the capture, in one line."""
    text = f"DebugTrigger {firing.get('trigger', '?')}: {firing.get('reason', '?')}"
    if firing.get("value"):
        text += f", {firing['value']}"
    numbers = [f"{k} {firing[k]:g}" for k in ("observed", "threshold") if isinstance(firing.get(k), int | float)]
    if numbers:
        text += f" ({', '.join(numbers)})"
    if firing.get("time"):
        text += f" at {firing['time']}"
    return text


def _field(label: str, value: object, indent: int = 0) -> str:
    return layout.field(label, value, indent, width=_LABEL)


def _summary(summary: Mapping[str, Any]) -> str:
    def n(key: str) -> int:
        return int(summary.get(key) or 0)

    return (f"{n('pods')} pod(s): {n('captured')} captured, {n('failed')} failed; {n('healthy')} healthy, "
            f"{n('unhealthy')} unhealthy; {n('findings')} finding(s)")


def pod_lines(pod: Mapping[str, Any]) -> list[str]:
    """One pod's entry of ``status.pods``: its result, bundle, failed collectors and findings."""
    lines = [f"  {pod.get('name', '?')}:", _field("Phase", pod.get("phase"), 4)]
    for label, key in (("Container", "container"), ("Node", "node"), ("Message", "message")):
        if pod.get(key):
            lines.append(_field(label, " ".join(str(pod[key]).split()), 4))
    if pod.get("access"):
        lines.append(_field("Access", ", ".join(f"{k}={v}" for k, v in sorted(pod["access"].items())), 4))
    bundle = pod.get("bundle") or {}
    if bundle.get("key"):
        size = int(bundle.get("sizeBytes") or 0)
        lines += [_field("Bundle", bundle.get("uri") or bundle["key"], 4),
                  _field("Size", f"{human_size(size)} ({size} bytes)", 4), _field("SHA-256", bundle.get("sha256"), 4)]
    elif pod.get("uploadKey"):
        lines.append(_field("Bundle", f"not stored yet (will be {pod['uploadKey']})", 4))
    health = next((c for c in pod.get("conditions") or [] if c.get("type") == "Healthy"), None)
    if health is not None:
        lines.append(_field("Healthy", f"{health.get('status')} ({health.get('reason', '')}): "
                                       f"{' '.join(str(health.get('message', '')).split())}", 4))
    if pod.get("readings"):
        lines.append(_field("Readings", ", ".join(f"{k}={v}" for k, v in pod["readings"].items()), 4))
    collectors = pod.get("collectors") or []
    failed = [c for c in collectors if c.get("status") in ("failed", "partial")]
    if collectors:
        counts: dict[str, int] = {}
        for c in collectors:
            counts[str(c.get("status"))] = counts.get(str(c.get("status")), 0) + 1
        lines.append(_field("Collectors", ", ".join(f"{v} {k}" for k, v in counts.items()), 4))
    if failed:
        lines.append("    Failed collectors:")
        lines += [f"      {c.get('name')} ({c.get('status')}): {c.get('message') or 'no reason recorded'}"
                  for c in failed]
    findings = pod.get("findings") or []
    if findings:
        total = int(pod.get("findingsTotal") or len(findings))
        lines.append(f"    Findings ({len(findings)} of {total}, most serious first):")
        lines += [f"      {str(f.get('level', '')):<6} {f.get('kind')} at {f.get('subject')}: {f.get('message')}"
                  for f in findings]
    return lines


def next_commands(obj: Mapping[str, Any]) -> list[str]:
    """What to run next, given where the capture is."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    where = f"{meta.get('name')} -n {meta.get('namespace')}"
    phase = status.get("phase") or "Pending"
    if phase not in TERMINAL:
        return [f"kubectl debugcap logs {where} -f      # follow it until it ends"]
    stored = [str(p.get("name")) for p in status.get("pods") or [] if (p.get("bundle") or {}).get("key")]
    if not stored:
        return [f"kubectl debugcap delete {where}       # nothing was stored; fix the cause above and "
                "create it again"]
    # report reads one bundle: with several, each needs its --pod.
    reports = ([f"kubectl debugcap report {where}       # findings and evidence"] if len(stored) == 1 else
               [f"kubectl debugcap report {where} --pod {pod}       # its findings and evidence"
                for pod in stored[:3]])
    return [f"kubectl debugcap download {where}     # fetch and verify the bundles", *reports]


def describe(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None, now: datetime,
             events_note: str = "") -> list[str]:
    """``kubectl describe``-like lines; ``events`` None: they could not be read (``events_note`` says why)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    labels = ", ".join(f"{k}={v}" for k, v in (meta.get("labels") or {}).items())
    created = meta.get("creationTimestamp")
    lines = [_field("Name", meta.get("name")), _field("Namespace", meta.get("namespace")), _field("Labels", labels),
             _field("Created", layout.when(created, now) if created else None),
             _field("Template", spec.get("template")), _field("Target", layout.target(spec)),
             _field("Parameters", ", ".join(f"{k}={v}" for k, v in (spec.get("parameters") or {}).items())),
             _field("TTL", spec.get("ttl"))]
    if meta.get("deletionTimestamp"):
        lines.append(_field("Deleting", f"since {meta['deletionTimestamp']} (the operator removes the bundles "
                                        "first)"))
    firing = status.get("firing") or spec.get("firing")
    if firing:
        lines.append(_field("Fired By", firing_text(firing)))
    lines += [_field("Phase", status.get("phase") or "Pending"),
              _field("Message", " ".join(str(status.get("message", "")).split()))]
    for label, key in (("Started", "startTime"), ("Completed", "completionTime"), ("Expires", "expiresAt")):
        if status.get(key):
            lines.append(_field(label, status[key]))
    if status.get("summary"):
        lines.append(_field("Summary", _summary(status["summary"])))
    lines += layout.conditions(status.get("conditions") or [], width=_LABEL)
    pods = status.get("pods") or []
    lines.append("Pods:" if pods else _field("Pods", None))
    for pod in pods:
        lines += pod_lines(pod)
    if events is None and events_note:
        lines.append(_field("Events", events_note))
    else:
        lines += layout.events(events, now, width=_LABEL)
    lines += ["Next:", *(f"  {c}" for c in next_commands(obj))]
    return lines
