"""Events about the pod (scheduling, probes, OOM kills, restarts), oldest first."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base


class EventsCollector(base.Collector):
    name = "events"
    kind = base.Kind.KUBERNETES
    description = "the pod's events"

    def required_permissions(self) -> list[tuple[str, str, str]]:
        return [("list", "events", "")]

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        t = ctx.target
        try:
            events = ctx.kube.core().list_namespaced_event(
                t.namespace, field_selector=f"involvedObject.name={t.pod}",
                _request_timeout=ctx.settings.http_timeout_seconds)
        except ApiException as exc:
            return base.CollectorResult(base.Status.FAILED, f"cannot list events of {t.namespace}/{t.pod}: "
                                        f"{errors.shorten(str(exc.reason))}")
        rows = [{
            "type": e.type, "reason": e.reason, "message": e.message, "count": e.count,
            "firstTimestamp": e.first_timestamp.isoformat() if e.first_timestamp else None,
            "lastTimestamp": e.last_timestamp.isoformat() if e.last_timestamp else None,
            "source": (e.source.component if e.source else None) or e.reporting_component,
        } for e in events.items]
        rows.sort(key=lambda r: r["lastTimestamp"] or r["firstTimestamp"] or "")
        ctx.add_bytes(layout.K8S_EVENTS, base.yaml_bytes({"events": rows}))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_EVENTS,))
