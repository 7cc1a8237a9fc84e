"""`create` and `get` against a faked API: the paths they use and what each API error tells the user."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from debugcap import errors
from debugcap.kubectl_plugin.cli import cli

from .fakes import FakeKube, raising, use

COLLECTION = "/apis/debugcap.io/v1alpha1/namespaces/team/debugcaptures"
ITEM = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
        "metadata": {"name": "c-1", "namespace": "team", "creationTimestamp": "2026-11-23T16:00:00Z"},
        "spec": {"template": "go-profile"},
        "status": {"phase": "Completed", "message": "2 of 2 pods captured",
                   "pods": [{"bundle": {"uri": "s3://b/1.tar.gz"}}, {"bundle": {"uri": "s3://b/2.tar.gz"}}]}}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_create_posts_the_debugcapture_to_its_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, FakeKube())
    res = invoke("create", "pod/api-1", "--name", "c-1")
    assert res.exit_code == 0, res.output
    ((method, path, body),) = kube.requests
    assert (method, path, body["metadata"]) == ("POST", COLLECTION, {"name": "c-1", "namespace": "team"})
    assert res.stdout == "debugcapture.debugcap.io/c-1 created\n"
    assert "kubectl debugcap get c-1 -n team -o wide" in res.stderr
    assert kube.closed


@pytest.mark.parametrize(("exc", "says"), [
    (errors.NotFoundError("x", status=404, api_message="the server could not find the requested resource"),
     "this cluster has no DebugCapture resource"),
    (errors.ForbiddenError("x", status=403, api_message="forbidden"),
     'not allowed to create debugcaptures in namespace "team"'),
    (errors.ConflictError("x", status=409, api_message="already exists"),
     'debugcapture "c-1" already exists in namespace "team"; pick another --name'),
    (errors.InvalidError("x", status=422, api_message="spec.parameters.cpuSeconds: Invalid value: 0"),
     'the API server refused debugcapture "c-1": spec.parameters.cpuSeconds: Invalid value: 0'),
], ids=["no-crd", "forbidden", "exists", "invalid"])
def test_create_turns_each_api_error_into_advice(monkeypatch: pytest.MonkeyPatch, exc: errors.KubeError,
                                                 says: str) -> None:
    use(monkeypatch, FakeKube(post=raising(exc)))
    res = invoke("create", "pod/api-1", "--name", "c-1")
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: ") and says in res.stderr and "Traceback" not in res.output


def test_an_api_error_the_plugin_has_no_advice_for_keeps_the_boundarys_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeKube(post=raising(errors.KubeError("cannot create debugcaptures: no answer", status=0))))
    res = invoke("create", "pod/api-1", "--name", "c-1")
    assert res.exit_code == 1 and res.stderr == "Error: cannot create debugcaptures: no answer\n"


def test_get_a_missing_capture_says_how_to_list_them(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeKube(get=raising(errors.NotFoundError("x", status=404, api_message="not found"))))
    res = invoke("get", "nope", "-n", "prod")
    assert res.exit_code == 1
    assert res.stderr == ('Error: debugcapture "nope" not found in namespace "prod"; list them with: '
                          "kubectl debugcap get -n prod\n")


def test_get_lists_the_crds_columns_and_wide_adds_its_priority_1_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, FakeKube(get=lambda path: {"items": [ITEM]}))
    table = invoke("get")
    assert table.exit_code == 0, table.output
    assert kube.requests[0][:2] == ("GET", COLLECTION)
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "HEALTHY", "UNHEALTHY", "TEMPLATE", "POD", "STARTED", "AGE"]
    assert row.split()[:3] == ["c-1", "Completed", "go-profile"]  # no health, no pod: empty cells, as kubectl's
    wide = invoke("get", "-o", "wide").stdout.splitlines()
    assert " FIRED BY " in wide[0]
    assert wide[0].split()[-5:] == ["READY", "FINDINGS", "EXPIRES", "MESSAGE", "AGE"]
    assert "2 of 2 pods captured" in wide[1]


def test_get_prints_one_capture_or_a_list_as_json_yaml_or_names(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, FakeKube(get=lambda path: ITEM if path.endswith("/c-1") else {"items": [ITEM]}))
    assert json.loads(invoke("get", "c-1", "-o", "json").stdout) == ITEM
    assert kube.requests[0][1] == f"{COLLECTION}/c-1"
    assert yaml.safe_load(invoke("get", "-o", "yaml").stdout) == {"apiVersion": "v1", "kind": "List",
                                                                  "items": [ITEM]}
    assert invoke("get", "-o", "name").stdout == "debugcapture.debugcap.io/c-1\n"


def test_get_refuses_a_name_kubernetes_cannot_have_before_reading_the_kubeconfig(tmp_path: Any) -> None:
    res = CliRunner().invoke(cli, ["get", "pod/x", "--kubeconfig", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "NAME" in res.stderr and "credentials" not in res.stderr
