"""The DebugCapture resource from the plugin: build it for ``create`` (without ``--local``), and ``get``.

The operator in the cluster carries a DebugCapture out; the plugin only writes and reads the
resource, with the user's own rights (RBAC decides who may capture what).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import click
import yaml
from kubernetes.client.exceptions import ApiException

from debugcap import errors, resources
from debugcap.kube.client import Kube
from debugcap.kubectl_plugin.options import kube_options, kube_target

KINDS = {
    "pod": "pod", "pods": "pod", "po": "pod",
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "daemonset": "DaemonSet", "daemonsets": "DaemonSet", "ds": "DaemonSet",
    "replicaset": "ReplicaSet", "replicasets": "ReplicaSet", "rs": "ReplicaSet",
}
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
SNAKE_TO_CAMEL = {snake: camel for camel, snake in resources.TEMPLATE_PARAMETERS.items()}


def target_spec(target: str | None, selector: str | None) -> tuple[dict[str, Any], str]:
    """spec.target and a short name for it, from ``KIND/NAME`` or ``-l key=value,...``."""
    if bool(target) == bool(selector):
        raise click.UsageError("give exactly one target: KIND/NAME (pod/api-1, deployment/api) or -l key=value")
    if selector:
        labels: dict[str, str] = {}
        for term in selector.split(","):
            key, sep, value = term.partition("=")
            key, value = key.strip(), value.strip().removeprefix("=")  # kubectl also spells it ==
            if not sep or not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
                raise click.BadParameter(f'"{term.strip()}": only equality selectors (key=value,...) with '
                                         "label-syntax keys and values are supported", param_hint="-l/--selector")
            labels[key] = value
        return {"selector": {"matchLabels": labels}}, "-".join(labels.values())
    assert target is not None
    kind, sep, name = target.partition("/")
    if not sep:
        kind, name = "pod", target
    if kind.lower() not in KINDS or not name:
        raise click.BadParameter(f'"{target}": use pod/NAME or deployment|statefulset|daemonset|replicaset/NAME',
                                 param_hint="TARGET")
    resolved = KINDS[kind.lower()]
    if resolved == "pod":
        return {"pod": name}, name
    return {"workload": {"kind": resolved, "name": name}}, name


def parameters(pairs: dict[str, str], pprof_port: int | None, timeout: float | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in pairs.items():
        camel = SNAKE_TO_CAMEL.get(key, key)
        if camel not in resources.TEMPLATE_PARAMETERS:
            valid = ", ".join(sorted(SNAKE_TO_CAMEL))
            raise click.BadParameter(f'"{key}" is not a DebugCapture parameter; valid: {valid}', param_hint="-p")
        try:
            out[camel] = int(value)
        except ValueError as exc:
            raise click.BadParameter(f'"{key}={value}": a whole number is expected', param_hint="-p") from exc
    if pprof_port:
        out["pprofPort"] = pprof_port
    if timeout:
        out["timeoutSeconds"] = int(timeout)
    return out


def capture_name(short: str, template: str, now: datetime) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", f"{short}-{template}".lower()).strip("-")[:45].strip("-")
    return f"{base}-{now.astimezone(UTC):%Y%m%d%H%M%S}"


def body(name: str, namespace: str, target: dict[str, Any], template: str, params: dict[str, int],
         container: str | None, ttl: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"target": {**target, **({"container": container} if container else {})},
                            "template": template}
    if params:
        spec["parameters"] = params
    if ttl:
        spec["ttl"] = ttl
    return {"apiVersion": resources.API_VERSION, "kind": "DebugCapture",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def create(kube: Kube, obj: dict[str, Any]) -> None:
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    try:
        kube.custom().create_namespaced_custom_object(resources.GROUP, resources.VERSION, ns, resources.CAPTURES,
                                                      obj)
    except ApiException as exc:
        if exc.status == 404:
            raise click.ClickException(
                "this cluster has no DebugCapture resource (the debugcap CRDs and operator are not installed: "
                "kubectl apply -f crds/, or helm install charts/debugcap); or capture from here with --local"
            ) from exc
        if exc.status == 403:
            raise click.ClickException(f'not allowed to create debugcaptures in namespace "{ns}"; ask for '
                                       "create on debugcaptures.debugcap.io there, or use --local") from exc
        if exc.status == 409:
            raise click.ClickException(f'debugcapture "{name}" already exists in namespace "{ns}"; '
                                       "pick another --name") from exc
        detail = exc.body if isinstance(exc.body, str) else str(exc.reason)
        try:
            detail = json.loads(detail).get("message", detail)
        except ValueError:
            pass
        raise click.ClickException(f'the API server refused debugcapture "{name}": {errors.shorten(detail, 400)}'
                                   ) from exc


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "-"
    seconds = int((now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@click.command("get")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "wide", "json", "yaml"]), default="table",
              show_default=True)
@kube_options
def get(name: str | None, output: str, namespace: str | None, context: str | None, kubeconfig: str | None,
        request_timeout: float) -> None:
    """List DebugCaptures (or show one): phase, template, pods and bundles."""
    try:
        kube = Kube.load(kube_target(kubeconfig, context, request_timeout))
    except errors.DebugcapError as exc:
        raise click.ClickException(str(exc)) from exc
    ns = namespace or kube.default_namespace
    api: Any = kube.custom()  # CustomObjectsApi returns untyped JSON objects
    items: list[dict[str, Any]]
    try:
        if name:
            items = [api.get_namespaced_custom_object(resources.GROUP, resources.VERSION, ns, resources.CAPTURES,
                                                      name)]
        else:
            items = api.list_namespaced_custom_object(resources.GROUP, resources.VERSION, ns,
                                                      resources.CAPTURES)["items"]
    except ApiException as exc:
        if exc.status == 404:
            raise click.ClickException(f'debugcapture "{name}" not found in namespace "{ns}"; list them with: '
                                       f"kubectl debugcap get -n {ns}" if name else
                                       "this cluster has no DebugCapture resource (CRDs not installed)") from exc
        raise click.ClickException(f"cannot read debugcaptures in namespace {ns}: {exc.status} {exc.reason}") from exc
    finally:
        kube.close()
    if output in ("json", "yaml"):
        doc: Any = items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
        click.echo(json.dumps(doc, indent=2) if output == "json" else yaml.safe_dump(doc, sort_keys=False))
        return
    now = datetime.now(UTC)
    rows = [["NAME", "PHASE", "TEMPLATE", "PODS", "AGE"] + (["BUNDLES", "MESSAGE"] if output == "wide" else [])]
    for item in items:
        status = item.get("status") or {}
        pods = status.get("pods") or []
        row = [item["metadata"]["name"], status.get("phase", "Pending"), item["spec"].get("template", "-"),
               str(len(pods)), _age(item["metadata"].get("creationTimestamp"), now)]
        if output == "wide":
            row += [" ".join((p.get("bundle") or {}).get("uri", "") for p in pods) or "-",
                    errors.shorten(status.get("message", ""), 80)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
