"""``node-conditions``: the pod's node: conditions, capacity and versions.

Cases: the node at /api/v1/nodes/NAME is reduced to its conditions, capacity, allocatable and
four versions and stored under k8s/node-conditions.yaml (addresses, images and ids left out); a
pod not scheduled yet is a skip asking nothing; no right to read nodes (403) is a skip saying
which right to grant; another API error is a failure.
"""

from __future__ import annotations

import yaml

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.node_conditions import NodeConditionsCollector
from debugcap.kube.shared_reads import SharedReads

NODE = "/api/v1/nodes/worker-1"


def test_node_conditions_are_stored_under_the_k8s_path(bundle, api) -> None:
    api.serve_json(NODE, "kube/node.json")
    result = NodeConditionsCollector().collect(bundle.context(kube=api))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.K8S_NODE_CONDITIONS,))
    assert [call[1] for call in api.calls] == [NODE]
    doc = yaml.safe_load(bundle.files[layout.K8S_NODE_CONDITIONS])
    assert list(doc) == ["name", "conditions", "capacity", "allocatable", "nodeInfo"]
    assert doc["name"] == "worker-1"
    assert doc["conditions"][0] == {"type": "MemoryPressure", "status": "True",
                                    "reason": "KubeletHasInsufficientMemory",
                                    "message": "kubelet has insufficient memory available",
                                    "lastTransitionTime": "2026-12-04T14:09:40Z"}
    assert [c["type"] for c in doc["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert doc["capacity"]["memory"] == "24671236Ki" and doc["allocatable"]["pods"] == "110"
    assert doc["nodeInfo"] == {"kubeletVersion": "v1.31.4", "containerRuntimeVersion": "containerd://1.7.24",
                               "kernelVersion": "6.1.0-27-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)"}
    text = bundle.text(layout.K8S_NODE_CONDITIONS)
    assert "172.18.0.2" not in text and "registry.local" not in text and "machineID" not in text


def test_pod_not_scheduled_yet_is_a_skip_that_asks_nothing(bundle, api) -> None:
    target = base.Target(namespace="prod", pod="api-7d9f8c6b5-x2x4q", container="app")
    result = NodeConditionsCollector().collect(bundle.context(kube=api, target=target))
    assert result == base.CollectorResult(base.Status.SKIPPED, "the pod is not scheduled on a node yet")
    assert api.calls == [] and bundle.files == {}


def test_no_right_to_read_nodes_is_a_skip_naming_the_right(bundle, api) -> None:
    api.fail(NODE, errors.ForbiddenError('cannot get nodes "worker-1": forbidden', status=403, reason="Forbidden"))
    result = NodeConditionsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.SKIPPED
    assert "worker-1" in result.message and "grant 'get nodes'" in result.message
    assert bundle.files == {}


def test_other_api_error_is_a_failure(bundle, api) -> None:
    api.fail(NODE, errors.NotFoundError('cannot get nodes "worker-1": nodes "worker-1" not found', status=404,
                                        reason="NotFound"))
    result = NodeConditionsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.FAILED and 'nodes "worker-1" not found' in result.message
    assert bundle.files == {}


def test_rejected_credentials_are_a_failure_not_a_missing_right(bundle, api) -> None:
    api.fail(NODE, errors.ForbiddenError('cannot get nodes "worker-1": Unauthorized; check your credentials',
                                         status=401, reason="Unauthorized"))
    result = NodeConditionsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.FAILED and "check your credentials" in result.message


def test_pods_of_a_sweep_on_one_node_read_it_once(bundle, api, tmp_path) -> None:
    api.serve_json(NODE, "kube/node.json")
    shared = SharedReads(clock=lambda: 10.0)
    first = NodeConditionsCollector().collect(bundle.context(kube=api, shared=shared))
    neighbour = base.Target(namespace="prod", pod="api-other", container="app", node="worker-1")
    second = NodeConditionsCollector().collect(type(bundle)(tmp_path).context(kube=api, shared=shared,
                                                                              target=neighbour))
    assert first.status is second.status is base.Status.OK
    assert [call[1] for call in api.calls] == [NODE]
