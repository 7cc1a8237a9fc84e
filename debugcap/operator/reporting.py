"""What the operator tells people about its objects: timestamps and Events (conditions: :mod:`conditions`).

Shared by the handler modules (:mod:`~debugcap.operator.captures`,
:mod:`~debugcap.operator.schedules`) so every status and Event reads alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from debugcap import errors


def now() -> datetime:
    """The current time in whole seconds, as status timestamps carry it."""
    return datetime.now(UTC).replace(microsecond=0)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event(body: kopf.Body, ok: bool, reason: str, message: str) -> None:
    # kopf.event, not kopf.info/warn: those obey settings.posting.level, which is raised in
    # startup.configure() to silence kopf's own per-handler Events, and ours must still be posted.
    kopf.event(body, type="Normal" if ok else "Warning", reason=reason, message=errors.shorten(message, 1024))


def pod_event(pod: Mapping[str, Any], reason: str, message: str) -> None:
    """A Warning Event on a target pod (``pod``: its apiVersion, kind and metadata name, namespace, uid).

    Posted like :func:`event`, through kopf's queue; the uid is what `kubectl describe pod`
    selects the pod's Events by."""
    body = kopf.Body(cast(kopf.RawBody, dict(pod)))
    kopf.event(body, type="Warning", reason=reason, message=errors.shorten(message, 1024))
