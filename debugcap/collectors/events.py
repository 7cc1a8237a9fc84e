"""Events about the pod (scheduling, probes, OOM kills, restarts), oldest first."""

from __future__ import annotations

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment


class EventsCollector(base.Collector):
    name = "events"
    kind = base.Kind.KUBERNETES
    description = "the pod's events"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        t = ctx.target
        try:
            events = ctx.kube.get_json(f"/api/v1/namespaces/{segment(t.namespace)}/events",
                                       [("fieldSelector", f"involvedObject.name={t.pod}")],
                                       timeout=ctx.settings.http_timeout_seconds)
        except errors.KubeError as exc:
            return base.CollectorResult(base.Status.FAILED, str(exc))
        rows = [{
            "type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"), "count": e.get("count"),
            "firstTimestamp": e.get("firstTimestamp"), "lastTimestamp": e.get("lastTimestamp"),
            **({"eventTime": e["eventTime"]} if e.get("eventTime") else {}),
            "source": (e.get("source") or {}).get("component") or e.get("reportingComponent"),
        } for e in events.get("items") or []]
        # Events written through events.k8s.io have only eventTime; core/v1 ones the other two.
        rows.sort(key=lambda r: r["lastTimestamp"] or r.get("eventTime") or r["firstTimestamp"] or "")
        ctx.add_bytes(layout.K8S_EVENTS, base.yaml_bytes({"events": rows}))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))
