"""Events about the pod (scheduling, probes, OOM kills, restarts), oldest first.

A capture of one pod asks for its Events only (a field selector). The pods of a sweep share one
LIST of the namespace's Events instead (``CollectContext.shared``, at most 5 s old): the API
server answers a field-selected LIST by scanning every Event of the namespace, so a sweep asking
once per pod cost it the namespace's Events times the pods (issue 17). What the shared LIST keeps
is only the rows the bundle stores, by pod; when it fails (a paging token expired, an API server
too slow), each pod asks for its own Events as a capture of one pod does.

Events are matched by the pod's uid when it is known: a pod recreated under the same name (a
StatefulSet's) must not get its predecessor's Events.
"""

from __future__ import annotations

from typing import Any

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment

# Events per page: a namespace's Events may be many; pages bound each answer (and what is parsed at once).
PAGE = 500

Rows = dict[str, list[dict[str, Any]]]  # pod name -> its Events as stored, each with its pod's uid


class EventsCollector(base.Collector):
    name = "events"
    kind = base.Kind.KUBERNETES
    description = "the pod's events"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        t = ctx.target

        def alone() -> Rows:  # by name as the shared LIST's rows are; the uid is checked below for both
            return _rows(ctx, [("fieldSelector", f"involvedObject.kind=Pod,involvedObject.name={t.pod}")])

        try:
            # Pods' Events only: the namespace's others (its DebugCaptures' own, Deployments') are not sent.
            by_pod = ctx.read_shared(("events", t.namespace),
                                     lambda: _rows(ctx, [("fieldSelector", "involvedObject.kind=Pod")]), alone=alone)
        except errors.KubeError as exc:
            return base.CollectorResult(base.Status.FAILED, str(exc))
        # An Event without a uid (some reporters leave it empty) is the pod's by name.
        rows = [{k: v for k, v in r.items() if k != "uid"} for r in by_pod.get(t.pod, [])
                if not t.pod_uid or not r["uid"] or r["uid"] == t.pod_uid]
        # Events written through events.k8s.io have only eventTime; core/v1 ones the other two.
        rows.sort(key=lambda r: r["lastTimestamp"] or r.get("eventTime") or r["firstTimestamp"] or "")
        ctx.add_bytes(layout.K8S_EVENTS, base.yaml_bytes({"events": rows}))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))


def _rows(ctx: base.CollectContext, query: list[tuple[str, str]]) -> Rows:
    """The Pod Events of the namespace that ``query`` selects, every page, as stored, by pod."""
    path = f"/api/v1/namespaces/{segment(ctx.target.namespace)}/events"
    by: Rows = {}
    token = ""
    while True:
        page = ctx.kube.get_json(path, [*query, ("limit", str(PAGE)), *([("continue", token)] if token else [])],
                                 timeout=ctx.settings.http_timeout_seconds)
        for e in page.get("items") or []:
            about = e.get("involvedObject") or {}
            if about.get("kind") == "Pod":
                by.setdefault(str(about.get("name")), []).append(_row(e, about.get("uid")))
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return by


def _row(e: dict[str, Any], uid: str | None) -> dict[str, Any]:
    return {
        "type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"), "count": e.get("count"),
        "firstTimestamp": e.get("firstTimestamp"), "lastTimestamp": e.get("lastTimestamp"),
        **({"eventTime": e["eventTime"]} if e.get("eventTime") else {}),
        "source": (e.get("source") or {}).get("component") or e.get("reportingComponent"),
        "uid": uid,
    }
