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
