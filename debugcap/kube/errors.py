"""The Kubernetes client's failures, turned into debugcap's own error family once.

Only :mod:`debugcap.kube` calls the client library, and it raises nothing but
:class:`debugcap.errors.KubeError` and its subclasses: callers never see ``ApiException``,
urllib3 or websocket errors, and catch ``NotFoundError``, ``ForbiddenError``, ... instead of
comparing status codes (kopf ``_cogs/clients/errors.py`` does the same, for the same reason).
Messages name the object and take their advice from :mod:`debugcap.hints`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from debugcap import errors, hints
from debugcap.resources import GROUP


@dataclass(frozen=True)
class ObjectRef:
    """What a request path names, for messages: ``pods "api-1" in namespace "prod"``."""

    resource: str
    name: str = ""
    namespace: str = ""
    group: str = ""
    subresource: str = ""

    @classmethod
    def from_path(cls, path: str) -> ObjectRef:
        """Read ``/api/v1/namespaces/NS/pods/NAME/log`` or ``/apis/G/V/...`` back into parts."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        group = ""
        if parts[:1] == ["api"]:
            parts = parts[2:]
        elif parts[:1] == ["apis"]:
            group, parts = (parts[1] if len(parts) > 1 else ""), parts[3:]
        namespace = ""
        if parts[:1] == ["namespaces"] and len(parts) > 2:
            namespace, parts = parts[1], parts[2:]
        resource = parts[0] if parts else "namespaces"
        return cls(resource=resource, name=parts[1] if len(parts) > 1 else "", namespace=namespace,
                   group=group, subresource=parts[2] if len(parts) > 2 else "")

    def __str__(self) -> str:
        kind = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        what = f'{kind} "{self.name}"' if self.name else kind
        return f'{what} in namespace "{self.namespace}"' if self.namespace else what


_CLASSES: dict[int, type[errors.KubeError]] = {
    400: errors.InvalidError, 401: errors.ForbiddenError, 403: errors.ForbiddenError,
    404: errors.NotFoundError, 409: errors.ConflictError, 422: errors.InvalidError,
}
_VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def api_message(body: str) -> tuple[str, str]:
    """The message and reason of the v1.Status the API server answers errors with."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("message") or ""), str(doc.get("reason") or "")


def from_response(method: str, path: str, status: int, body: str, http_reason: str = "") -> errors.KubeError:
    """The error an API answer of ``status`` to ``method path`` stands for."""
    ref = ObjectRef.from_path(path)
    message, reason = api_message(body)
    message = errors.shorten(message or http_reason or f"HTTP {status}")
    # A GET of a collection is what RBAC (and kubectl auth can-i) calls list.
    verb = "list" if method.upper() == "GET" and not ref.name else _VERBS.get(method.upper(), method.lower())
    if ref.subresource in ("exec", "portforward", "log", "status", "proxy"):
        rights_verb, rights_on = ("create" if ref.subresource in ("exec", "portforward") else verb), \
            f"{ref.resource}/{ref.subresource}"
    else:
        rights_verb, rights_on = verb, ref.resource
    cls = _CLASSES.get(status, errors.KubeError)
    if status == 404:
        advice = (hints.install_crds() if ref.group == GROUP and "could not find the requested resource" in message
                  else hints.list_objects(ref.resource, ref.namespace or None))
    elif status == 401:
        advice = hints.check_credentials()
    elif status == 403:
        advice = hints.ask_rights(rights_verb, rights_on, ref.namespace or None)
    elif status == 409:
        advice = hints.retry_later() if method.upper() != "POST" else "pick another name, or delete the old one"
    else:
        advice = ""
    text = f"cannot {verb} {ref}: {message}" + (f"; {advice}" if advice else "")
    return cls(text, status=status, reason=reason or http_reason, api_message=message)


def from_transport(method: str, path: str, host: str, exc: BaseException) -> errors.KubeError:
    """The error for a request that got no answer: refused, reset, timed out, TLS failed."""
    ref = ObjectRef.from_path(path)
    verb = _VERBS.get(method.upper(), method.lower())
    detail = errors.shorten(str(exc) or type(exc).__name__)
    return errors.KubeError(f"cannot {verb} {ref}: no answer from the API server ({detail}); "
                            f"{hints.reach_cluster(host)}", status=0, reason=type(exc).__name__,
                            api_message=detail)


def from_handshake(path: str, host: str, exc: BaseException) -> errors.KubeError:
    """The error for an exec or port-forward websocket that did not open: the API server's answer
    when it gave one (403: RBAC, 404: no such pod, 400: no such container), else no answer."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        body = getattr(exc, "resp_body", None) or b""
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        # The upgrade is a GET, but RBAC and users think of exec and port-forward as create.
        return from_response("POST", path, status, text)
    return from_transport("POST", path, host, exc)
