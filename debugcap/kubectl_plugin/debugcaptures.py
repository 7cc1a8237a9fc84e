"""The DebugCapture resource as the plugin writes and reads it: built from flags, created, read.

The operator in the cluster carries a DebugCapture out; the plugin only writes and reads the
resource, with the user's own rights (RBAC decides who may capture what). Requests go through
:class:`debugcap.kube.client.Kube`'s raw-JSON methods, which raise only the ``KubeError``
family; the plugin rewords the failures it can give better advice for (``--local``,
``--name``, ``kubectl debugcap get``) and lets the others through.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from debugcap import errors, hints, resources

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

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


def parameters(pairs: dict[str, str], pprof_port: int | None = None, timeout: int | None = None,
               deadline: int | None = None) -> dict[str, int]:
    """spec.parameters: template parameters (``-p``, snake_case or the CRD's camelCase) and the
    engine's limits (``--pprof-port``, ``--timeout``, ``--deadline``)."""
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
    engine = zip(resources.ENGINE_PARAMETERS, (pprof_port, timeout, deadline), strict=True)
    out.update({camel: limit for camel, limit in engine if limit is not None})
    return out


def capture_name(short: str, template: str, now: datetime) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", f"{short}-{template}".lower()).strip("-")[:45].strip("-")
    return f"{base}-{now.astimezone(UTC):%Y%m%d%H%M%S}"


def body(name: str, namespace: str, target: dict[str, Any], template: str, params: dict[str, int | str],
         container: str | None, ttl: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"target": {**target, **({"container": container} if container else {})},
                            "template": template}
    if params:
        spec["parameters"] = params
    if ttl:
        spec["ttl"] = ttl
    return {"apiVersion": resources.API_VERSION, "kind": "DebugCapture",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _path(namespace: str | None, name: str | None = None) -> str:
    from debugcap.kube.client import group_path

    return group_path(resources.GROUP, resources.VERSION, resources.CAPTURES, namespace, name)


def _crds_missing(exc: errors.NotFoundError) -> bool:
    # A 404 on the collection itself: the API server does not know the resource.
    return "could not find the requested resource" in exc.api_message


def reworded(exc: errors.KubeError, message: str) -> errors.KubeError:
    return type(exc)(message, status=exc.status, reason=exc.reason, api_message=exc.api_message)


def create(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj``; the object as the API server wrote it."""
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    try:
        made: dict[str, Any] = kube.post_json(_path(ns), obj) or obj
        return made
    except errors.NotFoundError as exc:
        if _crds_missing(exc):
            raise reworded(exc, f"this cluster has no DebugCapture resource ({hints.install_operator()})") from exc
        raise reworded(exc, f'cannot create debugcapture "{name}": {exc.api_message}; '
                             f"{hints.list_namespaces()}") from exc
    except errors.ForbiddenError as exc:
        if exc.status != 403:
            raise
        raise reworded(exc, f'not allowed to create debugcaptures in namespace "{ns}"; '
                             f"{hints.ask_rights('create', 'debugcaptures.debugcap.io', ns)}; "
                             "or capture from here with --local") from exc
    except errors.ConflictError as exc:
        raise reworded(exc, f'debugcapture "{name}" already exists in namespace "{ns}"; '
                             "pick another --name") from exc
    except errors.InvalidError as exc:
        raise reworded(exc, f'the API server refused debugcapture "{name}": {exc.api_message}') from exc


def read(kube: Kube, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    """The DebugCapture ``name`` (a list of one), or all of ``namespace``'s (None: of every one)."""
    try:
        if name:
            return [kube.get_json(_path(namespace, name))]
        items: list[dict[str, Any]] = kube.get_json(_path(namespace))["items"]
        return items
    except errors.NotFoundError as exc:
        if _crds_missing(exc):
            raise reworded(exc, f"this cluster has no DebugCapture resource; {hints.install_crds()}") from exc
        if not name or namespace is None:
            raise
        raise reworded(exc, f'debugcapture "{name}" not found in namespace "{namespace}"; '
                             f"{hints.list_captures(namespace)}") from exc


def read_one(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """The DebugCapture ``name``; a missing one is a ``NotFoundError`` naming the namespace and
    ``kubectl debugcap get``."""
    return read(kube, namespace, name)[0]


def read_if_present(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """The DebugCapture, or None once it is gone (waiting for a deletion, following a capture)."""
    try:
        found: dict[str, Any] = kube.get_json(_path(namespace, name))
    except errors.NotFoundError as exc:
        if _crds_missing(exc):
            raise
        return None
    return found


def select(kube: Kube, namespace: str, selector: str | None) -> list[dict[str, Any]]:
    """The DebugCaptures of ``namespace`` whose labels match ``selector`` (None: all of them)."""
    try:
        listed = kube.get_json(_path(namespace), [("labelSelector", selector)] if selector else [])
    except errors.NotFoundError as exc:
        if _crds_missing(exc):
            raise reworded(exc, f"this cluster has no DebugCapture resource; {hints.install_crds()}") from exc
        raise
    items: list[dict[str, Any]] = listed["items"]
    return items


def delete(kube: Kube, namespace: str, name: str) -> bool:
    """Delete the DebugCapture ``name``; False when it was already gone."""
    try:
        kube.delete(_path(namespace, name))
    except errors.NotFoundError:
        return False
    except errors.ForbiddenError as exc:
        if exc.status != 403:
            raise
        raise reworded(exc, f'not allowed to delete debugcapture "{name}" in namespace "{namespace}"; '
                             f"{hints.ask_rights('delete', 'debugcaptures.debugcap.io', namespace)}") from exc
    return True
