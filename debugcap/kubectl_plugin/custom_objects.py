"""DebugSchedules and DebugTriggers as the plugin reads and changes them, with the user's own rights.

Requests go through :class:`debugcap.kube.client.Kube`'s raw-JSON methods, whose errors already
name the object and the right to ask for (:mod:`debugcap.kube.errors`); this module rewords
the few where the plugin knows a better next step: an object that is not there (list them with
the plugin's own ``get``), a name already taken, a cluster without the CRD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from debugcap import errors, hints, resources

if TYPE_CHECKING:
    from debugcap.kube.client import Kube
    from debugcap.kubectl_plugin.columns import Resource

# The plugin's noun of each resource: what "list them with" names.
NOUNS = {resources.SCHEDULES: "schedule", resources.TRIGGERS: "trigger", resources.CAPTURES: ""}


def path(resource: Resource, namespace: str | None, name: str | None = None) -> str:
    from debugcap.kube.client import group_path

    return group_path(resources.GROUP, resources.VERSION, resource.plural, namespace, name)


def _reworded(exc: errors.KubeError, message: str) -> errors.KubeError:
    return type(exc)(message, status=exc.status, reason=exc.reason, api_message=exc.api_message)


def _crds_missing(exc: errors.NotFoundError) -> bool:
    # A 404 on the collection itself: the API server does not know the resource.
    return "could not find the requested resource" in exc.api_message


def list_hint(resource: Resource, namespace: str) -> str:
    noun = NOUNS.get(resource.plural, "")
    return f"list them with: kubectl debugcap {noun + ' ' if noun else ''}get -n {namespace}"


def _not_found(exc: errors.NotFoundError, resource: Resource, namespace: str | None, name: str | None) -> Exception:
    if _crds_missing(exc):
        return _reworded(exc, f"this cluster has no {resource.kind} resource; {hints.install_crds()}")
    if name and namespace:
        return _reworded(exc, f'{resource.kind.lower()} "{name}" not found in namespace "{namespace}"; '
                              f"{list_hint(resource, namespace)}")
    return exc


def read(kube: Kube, resource: Resource, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    """The object ``name`` (a list of one), or all of ``namespace``'s (None: of every namespace)."""
    try:
        if name:
            return [kube.get_json(path(resource, namespace, name))]
        items: list[dict[str, Any]] = kube.get_json(path(resource, namespace))["items"]
        return items
    except errors.NotFoundError as exc:
        raise _not_found(exc, resource, namespace, name) from exc


def read_one(kube: Kube, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    return read(kube, resource, namespace, name)[0]


def create(kube: Kube, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` in its namespace; the object as the API server wrote it."""
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    try:
        made: dict[str, Any] = kube.post_json(path(resource, ns), obj)
        return made
    except errors.NotFoundError as exc:
        raise _not_found(exc, resource, ns, None) from exc
    except errors.ConflictError as exc:
        raise _reworded(exc, f'{resource.kind.lower()} "{name}" already exists in namespace "{ns}"; '
                             "pick another name, or delete the old one") from exc
    except errors.InvalidError as exc:
        raise _reworded(exc, f'the API server refused {resource.kind.lower()} "{name}": {exc.api_message}') from exc


def patch(kube: Kube, resource: Resource, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch the object; the object as written."""
    try:
        written: dict[str, Any] = kube.merge_patch(path(resource, namespace, name), body)
        return written
    except errors.NotFoundError as exc:
        raise _not_found(exc, resource, namespace, name) from exc


def captures(kube: Kube, namespace: str, label: str, owner: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The DebugCaptures ``owner`` made: labelled ``label=<its name>`` and owned by it (an object of
    the same name deleted and made again has its own), oldest first; None when the user may not
    list DebugCaptures (a describe shows that as a note, as it does for Events)."""
    from debugcap.kube.client import group_path

    meta = owner["metadata"]
    try:
        listed = kube.get_json(group_path(resources.GROUP, resources.VERSION, resources.CAPTURES, namespace),
                               [("labelSelector", f"{label}={meta['name']}")])
    except errors.ForbiddenError:
        return None
    items = [c for c in listed.get("items") or []
             if any(o.get("uid") == meta.get("uid") for o in c["metadata"].get("ownerReferences") or [])]
    return sorted(items, key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"]))


def events(kube: Kube, obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Events of ``obj`` (by uid), or None when the user may not list Events (a describe shows
    that as a note rather than failing)."""
    from debugcap.kube.client import core_path

    meta = obj["metadata"]
    selector = f"involvedObject.uid={meta['uid']}" if meta.get("uid") else f"involvedObject.name={meta['name']}"
    try:
        listed = kube.get_json(core_path("events", meta["namespace"]), [("fieldSelector", selector)])
    except errors.ForbiddenError:
        return None
    items: list[dict[str, Any]] = listed.get("items") or []
    return items
