"""Two replicas, one leading (issue 15 item 3), as the chart renders them.

Cases:
* by default 2 replicas, strategy RollingUpdate (a standby up before an old pod stops), the
  election's settings in the env as LeaseSettings.from_env reads them, the pod's name and
  namespace from the downward API, and a preferred anti-affinity over the operator's pods only
* one spool.existingClaim for several replicas fails rendering, naming both values
* the election's Role in the release's namespace: leases create, get and update of its own Lease
  only, and patch pods (the leader's label), bound to the operator's ServiceAccount
* more than one replica without the election fails rendering, naming both values; one replica
  without it renders strategy Recreate, no election env and no Lease Role
* a user's affinity replaces the default one; the election's durations are schema-checked
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap.operator.leadership import LeaseSettings

from .test_chart_namespaces import operator_env, render, run_helm
from .test_chart_operations import one

pytestmark = pytest.mark.slow


def test_two_replicas_roll_and_elect_a_leader_on_the_releases_lease(helm: Path) -> None:
    docs = render(helm)
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"] == {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    env = {k: v for k, v in operator_env(docs).items() if v is not None}
    settings = LeaseSettings.from_env({**env, "POD_NAME": "dc-debugcap-abc"})
    assert settings.enabled and (settings.name, settings.namespace) == ("dc-debugcap", "ops")
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (15.0, 10.0, 2.0)
    fields = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
              for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (fields["POD_NAME"], fields["POD_NAMESPACE"]) == ("metadata.name", "metadata.namespace")
    [term] = deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


def test_the_election_role_grants_its_own_lease_and_the_pod_label_only(helm: Path) -> None:
    docs = render(helm)
    role = one(docs, "Role", "dc-debugcap-leader-election")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["dc-debugcap"],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
    ]
    binding = one(docs, "RoleBinding", "dc-debugcap-leader-election")
    assert binding["roleRef"]["name"] == "dc-debugcap-leader-election"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dc-debugcap", "namespace": "ops"}]


def test_several_replicas_without_the_election_are_refused_and_one_is_recreated(helm: Path) -> None:
    res = run_helm(helm, "--set", "leaderElection.enabled=false")
    assert res.returncode != 0
    assert "replicaCount is 2 but leaderElection.enabled is false" in res.stderr
    docs = render(helm, "--set", "leaderElection.enabled=false", "--set", "replicaCount=1")
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    env = operator_env(docs)
    assert env["DEBUGCAP_OPERATOR_LEADER_ELECTION"] == "false" and "DEBUGCAP_OPERATOR_LEASE_NAME" not in env
    assert not LeaseSettings.from_env({k: v for k, v in env.items() if v is not None}).enabled
    assert not [d for d in docs if d["metadata"]["name"].endswith("-leader-election")]
    assert "affinity" not in deploy["spec"]["template"]["spec"]


def test_a_users_affinity_wins_and_durations_are_checked(helm: Path) -> None:
    docs = render(helm, "--set-json", 'affinity={"nodeAffinity":{}}')
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {}}
    res = run_helm(helm, "--set", "leaderElection.leaseDuration=15")
    assert res.returncode != 0 and "leaderElection/leaseDuration" in res.stderr
    slow = render(helm, "--set", "leaderElection.leaseDuration=60s", "--set", "leaderElection.renewDeadline=40s")
    env = operator_env(slow)
    assert (env["DEBUGCAP_OPERATOR_LEASE_DURATION"], env["DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE"]) == ("60s", "40s")


def test_one_spool_claim_for_several_replicas_is_refused_naming_the_values(helm: Path) -> None:
    res = run_helm(helm, "--set", "spool.existingClaim=spool")
    assert res.returncode != 0
    assert "spool.existingClaim (spool) is one PersistentVolumeClaim but replicaCount is 2" in res.stderr
    assert "set replicaCount=1, or leave spool.existingClaim empty" in res.stderr
    deploy = one(render(helm, "--set", "spool.existingClaim=spool", "--set", "replicaCount=1"), "Deployment")
    [spool] = [v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "spool"]
    assert spool == {"name": "spool", "persistentVolumeClaim": {"claimName": "spool"}}
    # Rolling, the new pod would wait for the ReadWriteOnce claim the old one holds: for ever.
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
