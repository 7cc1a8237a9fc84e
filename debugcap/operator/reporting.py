"""What the operator tells people about its objects: timestamps, conditions and Events.

Shared by the handler modules (:mod:`~debugcap.operator.captures`,
:mod:`~debugcap.operator.schedules`) so every status and Event reads alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

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


def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": errors.shorten(message, 1024), "lastTransitionTime": stamp(now())}
