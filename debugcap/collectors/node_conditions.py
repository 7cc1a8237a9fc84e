"""The conditions (memory, disk, PID pressure, readiness) and capacity of the pod's node."""

from __future__ import annotations

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.kube.client import segment


class NodeConditionsCollector(base.Collector):
    name = "node-conditions"
    kind = base.Kind.KUBERNETES
    description = "the node's conditions, capacity and versions"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        node_name = ctx.target.node
        if not node_name:
            return base.CollectorResult(base.Status.SKIPPED, "the pod is not scheduled on a node yet")
        try:
            # One read per node for a sweep's pods (they share few nodes), at most 5 s old.
            node = ctx.read_shared(("node", node_name), lambda: ctx.kube.get_json(
                f"/api/v1/nodes/{segment(node_name)}", timeout=ctx.settings.http_timeout_seconds))
        except errors.KubeError as exc:
            if exc.status == 403:  # RBAC, which many setups leave out on purpose; 401 is a real failure
                return base.CollectorResult(base.Status.SKIPPED, f"no permission to read node {node_name} "
                                            "(nodes are cluster-scoped); grant 'get nodes' to include its conditions")
            return base.CollectorResult(base.Status.FAILED, str(exc))
        status = node.get("status") or {}
        info = status.get("nodeInfo") or {}
        doc = {
            "name": node_name,
            "conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
                           for c in status.get("conditions") or []],
            "capacity": status.get("capacity"), "allocatable": status.get("allocatable"),
            "nodeInfo": {k: info.get(k) for k in ("kubeletVersion", "containerRuntimeVersion", "kernelVersion",
                                                  "osImage")},
        }
        ctx.add_bytes(layout.K8S_NODE_CONDITIONS, base.yaml_bytes(doc))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_NODE_CONDITIONS,))
