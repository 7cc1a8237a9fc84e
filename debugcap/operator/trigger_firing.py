"""What a DebugTrigger's firing makes and records: the DebugCapture, its name, the past firings.

Blocking API calls, called from :mod:`debugcap.operator.triggers` in threads. A trigger's
firings are its captures (labelled with the trigger, owned by it, ``spec.firing`` saying what
fired) and the newest entries of its ``status.firings``: both are read before each decision, so an
operator restarted in the middle of a storm neither forgets a firing (the cooldown holds) nor makes
one twice (a capture's name comes from the check, so a retried create finds it: 409).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from debugcap import errors, resources
from debugcap.kube.client import Kube, core_path, group_path
from debugcap.operator.reporting import parse_stamp, stamp
from debugcap.operator.scheduling import TERMINAL
from debugcap.operator.triggering import HOUR, Crossing, Past, TriggerSpec, kind

GROUP, VERSION = resources.GROUP, resources.VERSION
# status.firings: the newest FIRINGS_SHOWN, and every firing of the last hour up to the CRD's
# maxItems (maxCapturesPerHour's maximum), so the hourly limit holds when captures are deleted early.
FIRINGS_SHOWN: Final = 20
FIRINGS_KEPT: Final = 100
_SHORT: Final = {"memoryPercentOfLimit": "mem", "goroutines": "goroutines", "goroutineGrowthPerMinute": "growth",
                 "restarted": "restart", "alert": "alert"}


def label_value(name: str) -> str:
    """A trigger's name as a label value (at most 63 characters: a longer name is cut and hashed)."""
    if len(name) <= 63:
        return name
    return f"{name[:54]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def capture_name(trigger: str, trigger_uid: str, crossing: Crossing, pod_uid: str) -> str:
    """``<trigger>-<signal>-<hash>-<when>``: the same for a retry of the same check. The hash is of
    the trigger's and the pod's uids (triggers whose names begin alike, a trigger recreated under its
    name, a pod recreated under its name make other captures). A restart's is its restart count, so
    every check that sees that restart names the same capture."""
    pod_hash = hashlib.sha256(f"{trigger_uid}/{pod_uid}/{crossing.pod}".encode()).hexdigest()[:8]
    when = f"r{crossing.observed:.0f}" if crossing.reason == "restarted" else str(int(crossing.at.timestamp()))
    return f"{trigger[:40].rstrip('-.')}-{_SHORT[crossing.reason]}-{pod_hash}-{when}"


def capture_body(trigger: Mapping[str, Any], spec: TriggerSpec, crossing: Crossing, *, pod_uid: str,
                 container: str | None) -> dict[str, Any]:
    """The DebugCapture of ``crossing``: one pod, the trigger's template and captureTemplate, what fired."""
    meta = trigger["metadata"]
    target: dict[str, Any] = {"pod": crossing.pod}
    if container:
        target["container"] = container
    firing: dict[str, Any] = {"trigger": meta["name"], "reason": crossing.reason, "value": crossing.value,
                              "observed": crossing.observed, "time": stamp(crossing.at)}
    if crossing.threshold is not None:
        firing["threshold"] = crossing.threshold
    labels = {**spec.capture_labels, resources.TRIGGER_LABEL: label_value(str(meta["name"])),
              resources.REASON_LABEL: crossing.reason}
    return {
        "apiVersion": resources.API_VERSION, "kind": "DebugCapture",
        "metadata": {"name": capture_name(str(meta["name"]), str(meta["uid"]), crossing, pod_uid),
                     "namespace": meta["namespace"],
                     "labels": labels,
                     "ownerReferences": [{"apiVersion": resources.API_VERSION, "kind": "DebugTrigger",
                                          "name": meta["name"], "uid": meta["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {**spec.capture_spec, "target": target, "template": spec.template, "firing": firing},
    }


def create(kube: Kube, body: Mapping[str, Any]) -> str:
    """Create the capture; one of that name already there and owned by the same trigger (a retried
    check) is the same firing. One owned by anything else is an error naming it."""
    meta = body["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    try:
        kube.post_json(group_path(GROUP, VERSION, resources.CAPTURES, namespace), body)
    except errors.ConflictError:
        there: Any = kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES, namespace, name))
        owners = {o.get("uid") for o in (there.get("metadata") or {}).get("ownerReferences") or []}
        if meta["ownerReferences"][0]["uid"] not in owners:
            raise errors.ConfigError(f'DebugCapture "{namespace}/{name}" already exists and was not made by this '
                                     "trigger; delete it, or rename the trigger") from None
    return name


def owned_captures(kube: Kube, namespace: str, trigger: str, uid: str) -> list[dict[str, Any]]:
    listed: Any = kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES, namespace),
                                [("labelSelector", f"{resources.TRIGGER_LABEL}={label_value(trigger)}")])
    return [c for c in listed.get("items") or []
            if any(o.get("uid") == uid for o in c["metadata"].get("ownerReferences") or [])]


def past_firings(captures: Sequence[Mapping[str, Any]], status_firings: Sequence[Mapping[str, Any]]) -> list[Past]:
    """Every firing known: the captures' ``spec.firing``, and status entries whose capture is gone
    (deleted by hand, or by its ttl within the hour) so the hourly limit still counts them."""
    out: list[Past] = []
    seen: set[str] = set()
    for c in captures:
        firing = (c.get("spec") or {}).get("firing") or {}
        at = _time(firing.get("time")) or _time(c["metadata"].get("creationTimestamp"))
        if at is None or not firing.get("reason"):
            continue
        seen.add(str(c["metadata"]["name"]))
        observed = firing.get("observed")
        out.append(Past(str((c.get("spec") or {}).get("target", {}).get("pod", "")), str(firing["reason"]), at,
                        float(observed) if isinstance(observed, int | float) else None))
    for entry in status_firings:
        at = _time(entry.get("time"))
        if at is None or entry.get("capture") in seen:
            continue
        out.append(Past(str(entry.get("pod", "")), str(entry.get("reason", "")), at, None))
    return out


def running_triggered(kube: Kube, namespaces: Sequence[str]) -> dict[str, int]:
    """Triggered captures not yet finished, in every namespace the operator serves, by
    :func:`triggering.kind` of their signal."""
    selector = [("labelSelector", resources.TRIGGER_LABEL)]
    lists = ([kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES, ns), selector) for ns in namespaces]
             if namespaces else [kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES), selector)])
    out = {"urgent": 0, "regular": 0}
    for listed in lists:
        for c in listed.get("items") or []:
            if collecting(c):
                out[kind(str((c["metadata"].get("labels") or {}).get(resources.REASON_LABEL, "")))] += 1
    return out


def collecting(capture: Mapping[str, Any]) -> bool:
    """Whether a capture still asks its pod for evidence: not ended, and some pod not yet stored.
    One whose bundle is stored and waits for its analysis costs the pod nothing more."""
    status = capture.get("status") or {}
    if status.get("phase") in TERMINAL:
        return False
    pods = status.get("pods") or []
    return not pods or any(not p.get("bundle") and p.get("phase") not in TERMINAL for p in pods)


def kept_firings(entries: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """``entries`` (newest first) as status.firings keeps them: see FIRINGS_KEPT."""
    kept = [dict(e) for i, e in enumerate(entries)
            if i < FIRINGS_SHOWN or ((at := _time(e.get("time"))) is not None and now - at < HOUR)]
    return kept[:FIRINGS_KEPT]


def firing_entry(crossing: Crossing, capture: str) -> dict[str, Any]:
    return {"time": stamp(crossing.at), "pod": crossing.pod, "reason": crossing.reason, "value": crossing.value,
            "capture": capture}


def read_trigger(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    body: Any = kube.get_json(group_path(GROUP, VERSION, resources.TRIGGERS, namespace, name))
    return dict(body)


def write_status(kube: Kube, namespace: str, name: str, fields: Mapping[str, Any]) -> None:
    kube.merge_patch(group_path(GROUP, VERSION, resources.TRIGGERS, namespace, name, "status"),
                     {"status": dict(fields)})


def list_triggers(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    listed: Any = kube.get_json(group_path(GROUP, VERSION, resources.TRIGGERS, namespace))
    return list(listed.get("items") or [])


def post_event(kube: Kube, trigger: Mapping[str, Any], ok: bool, reason: str, message: str, *,
               now: datetime) -> None:
    """An Event on the trigger, through the API: firings come from the check's timer and from the
    Alertmanager receiver, which runs outside kopf's handlers (where ``kopf.event`` has no queue)."""
    meta = trigger["metadata"]
    when = stamp(now)
    kube.post_json(core_path("events", str(meta["namespace"])), {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{str(meta['name'])[:200]}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": resources.API_VERSION, "kind": "DebugTrigger", "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid", "")},
        "reason": reason, "message": errors.shorten(message, 1024), "type": "Normal" if ok else "Warning",
        "source": {"component": "debugcap-operator"}, "firstTimestamp": when, "lastTimestamp": when, "count": 1,
    })


def _time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        when = parse_stamp(str(text))
    except ValueError:
        return None
    # A time without a zone (hand-edited status) is the API server's: UTC, comparable with the rest.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
