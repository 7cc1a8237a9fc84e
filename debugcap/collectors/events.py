"""Events about the pod (scheduling, probes, OOM kills, restarts), oldest first.

A capture of one pod asks for its Events only (a field selector). The pods of a sweep share one
LIST of the namespace's Events instead (``CollectContext.shared``, at most 5 s old): the API
server answers a field-selected LIST by scanning every Event of the namespace, so a sweep asking
once per pod cost it the namespace's Events times the pods (issue 17).
"""

from __future__ import annotations

from typing import Any

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment

# Events per page of the shared LIST: a namespace's Events may be many; pages bound each answer.
PAGE = 500


class EventsCollector(base.Collector):
    name = "events"
    kind = base.Kind.KUBERNETES
    description = "the pod's events"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        t = ctx.target
        try:
            if ctx.shared is None:
                events = _list(ctx, [("fieldSelector", f"involvedObject.kind=Pod,involvedObject.name={t.pod}")])
            else:
                events = ctx.read_shared(("events", t.namespace), lambda: _by_pod(_list(ctx, []))).get(t.pod, [])
        except errors.KubeError as exc:
            return base.CollectorResult(base.Status.FAILED, str(exc))
        rows = [{
            "type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"), "count": e.get("count"),
            "firstTimestamp": e.get("firstTimestamp"), "lastTimestamp": e.get("lastTimestamp"),
            **({"eventTime": e["eventTime"]} if e.get("eventTime") else {}),
            "source": (e.get("source") or {}).get("component") or e.get("reportingComponent"),
        } for e in events]
        # Events written through events.k8s.io have only eventTime; core/v1 ones the other two.
        rows.sort(key=lambda r: r["lastTimestamp"] or r.get("eventTime") or r["firstTimestamp"] or "")
        ctx.add_bytes(layout.K8S_EVENTS, base.yaml_bytes({"events": rows}))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))


def _list(ctx: base.CollectContext, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every page of the namespace's Events that ``query`` selects."""
    path = f"/api/v1/namespaces/{segment(ctx.target.namespace)}/events"
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = ctx.kube.get_json(path, [*query, ("limit", str(PAGE)), *([("continue", token)] if token else [])],
                                 timeout=ctx.settings.http_timeout_seconds)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def _by_pod(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        about = e.get("involvedObject") or {}
        if about.get("kind") == "Pod":
            by.setdefault(str(about.get("name")), []).append(e)
    return by
