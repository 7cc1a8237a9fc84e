"""The layout of ``kubectl describe``, for every ``describe`` of the plugin (captures, schedules, triggers).

Pure: values in, lines out. ``Label:`` padded to one column, nested blocks indented by two,
tables laid out as kubectl's tabwriter lays them out, Events last as kubectl shows them (type,
reason, age, from, message; ``<none>`` when there are none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from debugcap.kubectl_plugin.columns import human_duration
from debugcap.kubectl_plugin.options import table_lines

LABEL_WIDTH = 20


def field(label: str, value: object, indent: int = 0, width: int = LABEL_WIDTH) -> str:
    text = "<none>" if value is None or value in ("", [], {}) else str(value)
    return " " * indent + f"{label + ':':<{width - indent}}{text}"


def table(rows: Sequence[Sequence[str]], indent: int = 2) -> list[str]:
    return [" " * indent + line.rstrip() for line in table_lines(rows)]


def parse_time(stamp: object) -> datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(stamp: object, now: datetime) -> str:
    """How long ago ``stamp`` was, as kubectl prints an age; ``<unknown>`` without one."""
    at = parse_time(stamp)
    return human_duration((now - at).total_seconds()) if at else "<unknown>"


def when(stamp: object, now: datetime) -> str:
    """A timestamp and how long ago it was: ``2026-12-04T03:00:00Z (5m ago)``."""
    at = parse_time(stamp)
    if at is None:
        return "<none>"
    return f"{stamp} ({human_duration((now - at).total_seconds())} ago)"


def labels(meta: Mapping[str, Any]) -> str:
    found = meta.get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(found.items())) or "<none>"


def target(spec: Mapping[str, Any]) -> str:
    """``pod/api-1``, ``deployment/api`` or ``pods with app=api``, and the container when named."""
    found = spec.get("target") or {}
    if "pod" in found:
        text = f"pod/{found['pod']}"
    elif "workload" in found:
        text = f"{str(found['workload'].get('kind', '')).lower()}/{found['workload'].get('name', '')}"
    elif "selector" in found:
        selector = found["selector"] or {}
        terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
        terms += [f"{e.get('key')} {e.get('operator')} ({','.join(e.get('values') or [])})"
                  for e in selector.get("matchExpressions") or []]
        text = "pods with " + ",".join(terms)
    else:
        return "<none>"
    return text + (f" (container {found['container']})" if found.get("container") else "")


def conditions(items: Sequence[Mapping[str, Any]], width: int = LABEL_WIDTH) -> list[str]:
    if not items:
        return [field("Conditions", None, width=width)]
    rows = [["Type", "Status", "Reason", "Message"]]
    rows += [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
              " ".join(str(c.get("message", "")).split())] for c in items]
    return ["Conditions:", *table(rows)]


def captures(items: Sequence[Mapping[str, Any]] | None, now: datetime) -> list[str]:
    """The DebugCaptures an object made, oldest first: name, phase, age; ``items`` None: the user
    may not list them, said in their place."""
    if items is None:
        return [field("Captures", "<not shown: you may not list debugcaptures in this namespace>")]
    if not items:
        return [field("Captures", None)]
    rows = [["Name", "Phase", "Age"]]
    rows += [[c["metadata"]["name"], str((c.get("status") or {}).get("phase") or "Pending"),
              age(c["metadata"].get("creationTimestamp"), now)] for c in items]
    return ["Captures:", *table(rows)]


def event_time(event: Mapping[str, Any]) -> str:
    """When an Event last happened: kopf sets all three, other posters one of them."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def event_order(event: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """Events by when they last happened; within a second (lastTimestamp has whole seconds) by
    eventTime, which has microseconds: a capture's PodCaptured comes before its CaptureCompleted."""
    epoch = datetime.min.replace(tzinfo=UTC)
    return parse_time(event_time(event)) or epoch, parse_time(event.get("eventTime")) or epoch


def events(items: Sequence[Mapping[str, Any]] | None, now: datetime, width: int = LABEL_WIDTH) -> list[str]:
    """The Events block; ``items`` None: the user may not list Events, said in its place."""
    if items is None:
        return [field("Events", "<not shown: you may not list events in this namespace>", width=width)]
    if not items:
        return [field("Events", None, width=width)]
    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for e in sorted(items, key=event_order):
        count = int(e.get("count") or 1)
        rows.append([str(e.get("type", "")), str(e.get("reason", "")),
                     age(event_time(e), now) + (f" (x{count})" if count > 1 else ""),
                     str((e.get("source") or {}).get("component") or e.get("reportingComponent") or ""),
                     " ".join(str(e.get("message", "")).split())])
    return ["Events:", *table(rows)]
