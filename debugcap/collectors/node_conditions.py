"""The conditions (memory, disk, PID pressure, readiness) and capacity of the pod's node."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base


class NodeConditionsCollector(base.Collector):
    name = "node-conditions"
    kind = base.Kind.KUBERNETES
    description = "the node's conditions, capacity and versions"

    def required_permissions(self) -> list[tuple[str, str, str]]:
        return [("get", "nodes", "")]

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        node_name = ctx.target.node
        if not node_name:
            return base.CollectorResult(base.Status.SKIPPED, "the pod is not scheduled on a node yet")
        try:
            node: Any = ctx.kube.core().read_node(node_name, _request_timeout=ctx.settings.http_timeout_seconds)
        except ApiException as exc:
            if exc.status == 403:
                return base.CollectorResult(base.Status.SKIPPED, f"no permission to read node {node_name} "
                                            "(nodes are cluster-scoped); grant 'get nodes' to include its conditions")
            return base.CollectorResult(base.Status.FAILED, f"cannot read node {node_name}: "
                                        f"{errors.shorten(str(exc.reason))}")
        doc = {
            "name": node_name,
            "conditions": [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message,
                            "lastTransitionTime": c.last_transition_time.isoformat()
                            if c.last_transition_time else None} for c in node.status.conditions or []],
            "capacity": node.status.capacity, "allocatable": node.status.allocatable,
            "nodeInfo": {"kubeletVersion": node.status.node_info.kubelet_version,
                         "containerRuntimeVersion": node.status.node_info.container_runtime_version,
                         "kernelVersion": node.status.node_info.kernel_version,
                         "osImage": node.status.node_info.os_image},
        }
        ctx.add_bytes(layout.K8S_NODE_CONDITIONS, base.yaml_bytes(doc))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_NODE_CONDITIONS,))
