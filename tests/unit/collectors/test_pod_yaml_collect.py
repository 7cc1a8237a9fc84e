"""``pod-yaml``: the pod object from the API server, stored as YAML with secrets masked.

(test_pod_yaml.py tests ``sanitize`` alone; this drives the collector.)
Cases: the pod at /api/v1/namespaces/NS/pods/NAME is stored under k8s/pod.yaml, in the API's key
order, with literal secret env values masked, managedFields and the last-applied annotation
(which repeats them) gone, and Secret references left as names (an allowlisted name
holding a secret word has its value masked, as in the environment file); an API error is a failure
carrying the API's message, storing nothing.
"""

from __future__ import annotations

import json

import yaml

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base, pod_yaml
from debugcap.collectors.pod_yaml import PodYamlCollector
from debugcap.kube.shared_reads import SharedReads

from .conftest import recorded

POD = "/api/v1/namespaces/prod/pods/api-7d9f8c6b5-x2x4q"


def _env(pod: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_pod_is_stored_as_yaml_under_the_k8s_path(bundle, api) -> None:
    api.serve_json(POD, "kube/pod.json")
    result = PodYamlCollector().collect(bundle.context(kube=api))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.K8S_POD,))
    assert set(bundle.files) == {layout.K8S_POD}
    pod = yaml.safe_load(bundle.files[layout.K8S_POD])
    assert list(pod) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert pod["metadata"]["name"] == "api-7d9f8c6b5-x2x4q"
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert api.calls == [("get_json", POD, ())]


def test_stored_pod_has_secrets_masked_and_bookkeeping_dropped(bundle, api) -> None:
    api.serve_json(POD, "kube/pod.json")
    PodYamlCollector().collect(bundle.context(kube=api))
    text = bundle.text(layout.K8S_POD)
    assert "s3cret" not in text and "last-applied-configuration" not in text
    pod = yaml.safe_load(text)
    assert "managedFields" not in pod["metadata"]
    assert pod["metadata"]["annotations"] == {"debugcap.io/pprof-port": "6060"}
    env = _env(pod)
    assert env["APP_MODE"] == "demo" and env["GOMAXPROCS"] == "2"
    assert env["DATABASE_URL"] == pod_yaml.MASK
    assert env["API_TOKEN"] == {"secretKeyRef": {"name": "api-secrets", "key": "token"}}


def test_allowlisted_name_holding_a_secret_word_is_masked_too(bundle, api) -> None:
    api.serve_json(POD, "kube/pod.json")
    PodYamlCollector().collect(bundle.context(kube=api))
    assert _env(yaml.safe_load(bundle.files[layout.K8S_POD]))["APP_DB_PASSWORD"] == pod_yaml.MASK


def test_api_error_is_a_failure_with_the_apis_message(bundle, api) -> None:
    api.fail(POD, errors.NotFoundError('cannot get pods "api-7d9f8c6b5-x2x4q" in namespace "prod": '
                                       'pods "api-7d9f8c6b5-x2x4q" not found', status=404, reason="NotFound"))
    result = PodYamlCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.FAILED
    assert 'pods "api-7d9f8c6b5-x2x4q" not found' in result.message
    assert bundle.files == {}


def test_in_a_sweep_the_pod_as_listed_is_stored_without_a_read_and_left_unmasked_for_others(bundle, api) -> None:
    listed = json.loads(recorded("kube/pod.json"))
    shared = SharedReads(clock=lambda: 10.0)
    shared.put(("pod", "prod", "api-7d9f8c6b5-x2x4q"), listed, read_at=9.0)
    result = PodYamlCollector().collect(bundle.context(kube=api, shared=shared))
    assert result.status is base.Status.OK and api.calls == []
    stored = yaml.safe_load(bundle.files[layout.K8S_POD])
    assert "managedFields" not in stored["metadata"]
    # sanitize edits a copy: the shared object is what the sweep read, for whoever reads it next.
    assert listed == json.loads(recorded("kube/pod.json"))


def test_a_pod_from_a_list_is_stored_as_a_pod(bundle, api) -> None:
    """A PodList's items have no kind or apiVersion: a sweep's pod.yaml must still be a Pod."""
    listed = json.loads(recorded("kube/pod.json"))
    del listed["kind"], listed["apiVersion"]
    shared = SharedReads(clock=lambda: 10.0)
    shared.put(("pod", "prod", "api-7d9f8c6b5-x2x4q"), listed, read_at=9.0)
    PodYamlCollector().collect(bundle.context(kube=api, shared=shared))
    stored = yaml.safe_load(bundle.files[layout.K8S_POD])
    assert list(stored)[:3] == ["kind", "apiVersion", "metadata"]
    assert (stored["kind"], stored["apiVersion"]) == ("Pod", "v1")
