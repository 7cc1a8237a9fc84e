"""The pod object as YAML, with literal env values masked and bookkeeping fields dropped.

References to Secrets (valueFrom.secretKeyRef, envFrom) are only names and are
never resolved. Literal ``env[].value`` strings, though, are often secrets
pasted into a manifest, and the last-applied annotation repeats them: env
values outside the allowlist are masked here, and that annotation is dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from debugcap import errors
from debugcap.bundle import environment, layout, redact
from debugcap.collectors import base
from debugcap.kube.client import segment

MASK = "***REDACTED***"
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def sanitize(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    meta.pop("managedFields", None)
    for key in DROPPED_ANNOTATIONS:
        (meta.get("annotations") or {}).pop(key, None)
    spec = pod.get("spec") or {}
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            for env in container.get("env") or []:
                value = env.get("value")
                if value is None:
                    continue
                name = env.get("name", "")
                # As the environment file is filtered: outside the allowlist, a secret word in the
                # name, or a value that looks secret, and the value is masked.
                if (not environment.is_allowed_name(name) or redact.SECRET_NAME.search(name)
                        or redact.looks_secret(str(value))):
                    env["value"] = MASK
    return pod


class PodYamlCollector(base.Collector):
    name = "pod-yaml"
    kind = base.Kind.KUBERNETES
    description = "the pod object as YAML (secret values masked)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        t = ctx.target
        try:
            # In a sweep, the pod as its target was resolved from (the sweep's LIST, at most 5 s old).
            pod = ctx.read_shared(("pod", t.namespace, t.pod), lambda: ctx.kube.get_json(
                f"/api/v1/namespaces/{segment(t.namespace)}/pods/{segment(t.pod)}",
                timeout=ctx.settings.http_timeout_seconds))
        except errors.KubeError as exc:
            return base.CollectorResult(base.Status.FAILED, str(exc))
        # sanitize edits in place, and a shared read is others' too. A PodList's items lack kind and
        # apiVersion: put back, so a sweep's pod.yaml is a Pod as a capture of one pod stores it.
        doc = sanitize({"kind": "Pod", "apiVersion": "v1", **copy.deepcopy(dict(pod))})
        ctx.add_bytes(layout.K8S_POD, base.yaml_bytes(doc))
        return base.CollectorResult(base.Status.OK, "", (layout.K8S_POD,))
