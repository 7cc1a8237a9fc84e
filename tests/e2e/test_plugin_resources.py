"""`kubectl debugcap create` (without --local) and `get` against the real API server and CRDs."""

from __future__ import annotations

import json
import os
import subprocess

from debugcap import resources
from debugcap.kube.client import Kube
from testbed import layout

from .conftest import Testbed

PLUGIN = str(layout.REPO / ".venv" / "bin" / "kubectl-debugcap")


def plugin(testbed: Testbed, *args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig or testbed.kubeconfig}
    return subprocess.run([PLUGIN, *args], env=env, capture_output=True, text=True, timeout=60)


def test_create_writes_the_debugcapture_and_get_reads_it(crds: None, testbed: Testbed, kube: Kube,
                                                        namespace: str) -> None:
    res = plugin(testbed, "create", "deployment/api", "-t", "go-profile", "-p", "cpu_seconds=2", "-n", namespace,
                 "--name", "cap-1", "--ttl", "1h")
    assert res.returncode == 0, res.stderr
    assert "debugcapture.debugcap.io/cap-1 created" in res.stdout
    obj = kube.custom().get_namespaced_custom_object(resources.GROUP, resources.VERSION, namespace,
                                                     resources.CAPTURES, "cap-1")
    # maxPods: 10 is the CRD's default, filled in by the API server.
    assert obj["spec"] == {"target": {"workload": {"kind": "Deployment", "name": "api"}, "maxPods": 10},
                           "template": "go-profile",
                           "parameters": {"cpuSeconds": 2}, "ttl": "1h"}

    listing = plugin(testbed, "get", "-n", namespace)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()[:2]
    # The CRD's columns, as kubectl get dcap: no operator runs here, so no phase yet (an empty cell).
    assert header.split() == ["NAME", "PHASE", "HEALTHY", "UNHEALTHY", "TEMPLATE", "POD", "STARTED", "AGE"]
    assert row.split()[:2] == ["cap-1", "go-profile"]
    one = plugin(testbed, "get", "cap-1", "-n", namespace, "-o", "json")
    assert json.loads(one.stdout)["metadata"]["name"] == "cap-1"

    everywhere = plugin(testbed, "get", "-A")
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [namespace, "cap-1"] in [line.split()[:2] for line in everywhere.stdout.splitlines()[1:]]

    missing = plugin(testbed, "get", "nope", "-n", namespace)
    assert missing.returncode == 1 and f'debugcapture "nope" not found in namespace "{namespace}"' in missing.stderr


def test_the_api_server_schema_error_reaches_the_user(crds: None, testbed: Testbed, namespace: str) -> None:
    res = plugin(testbed, "create", "pod/api-1", "-p", "cpu_seconds=0", "-n", namespace)
    assert res.returncode == 1
    assert "refused" in res.stderr and "cpuSeconds" in res.stderr and "Traceback" not in res.stderr


def test_a_user_without_rights_is_told_what_to_ask_for(crds: None, testbed: Testbed, namespace: str) -> None:
    res = plugin(testbed, "create", "pod/api-1", "-n", namespace, kubeconfig=testbed.user_kubeconfig)
    assert res.returncode == 1
    assert f'not allowed to create debugcaptures in namespace "{namespace}"' in res.stderr
