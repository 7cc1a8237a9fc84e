"""The one exception hierarchy of debugcap.

Third-party errors (kubernetes ApiException, minio S3Error, urllib3 errors) are
wrapped once, at the boundary where they happen, with ``raise XError(...) from
exc`` so callers only ever catch ``DebugcapError`` subclasses and the original
cause stays on ``__cause__`` for ``--debug`` output.

Messages say what failed, on which object, and what to do next.
"""

from __future__ import annotations

# Long API bodies make unreadable messages and may carry secrets; cut them.
TEXT_ERROR_MAX_SIZE = 256


def shorten(text: str, limit: int = TEXT_ERROR_MAX_SIZE) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DebugcapError(Exception):
    """Base of every error debugcap raises on purpose."""


class ConfigError(DebugcapError):
    """Bad user input: a template, a flag, a CR spec, a setting."""


class TargetError(DebugcapError):
    """The pod or container to capture cannot be used (missing, not running)."""


class CollectorError(DebugcapError):
    """One collector failed; recorded in the bundle, never fatal for the capture."""


class BundleError(DebugcapError):
    """A bundle cannot be written, read or verified."""


class StorageError(DebugcapError):
    """An object store refused or failed an operation."""


class AnalysisError(DebugcapError):
    """A profile or dump cannot be read or analysed."""


class KubeError(DebugcapError):
    """The Kubernetes API refused or failed a request. Raised only by :mod:`debugcap.kube`, which
    wraps the client library's exceptions once so no other module needs to know them.

    ``status`` is the HTTP status (0: the API server was not reached or did not answer),
    ``reason`` its Status reason ("NotFound", "Forbidden", ...), ``api_message`` the API
    server's own message ('pods "x" not found'), already cut short.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "", api_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.api_message = api_message


class NotFoundError(KubeError):
    """404: the object (or its namespace, or its kind's CRD) does not exist."""


class ForbiddenError(KubeError):
    """401 or 403: the credentials are not accepted, or RBAC does not allow the request."""


class ConflictError(KubeError):
    """409: the object exists already, or was changed since it was read."""


class InvalidError(KubeError):
    """400 or 422: the API server rejected the object as written."""
