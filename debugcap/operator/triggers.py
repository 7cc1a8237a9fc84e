"""kopf handlers of DebugTrigger: checks each trigger's signals and fires captures (in progress)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AlertOutcome:
    """What became of one alert: ``outcome`` is fired, suppressed or refused; ``message`` says
    why, naming the trigger, pod and field; ``captures`` are the DebugCaptures made."""

    alertname: str
    namespace: str
    pod: str
    outcome: str
    message: str
    captures: tuple[str, ...] = ()


async def fire_for_alerts(rt: Any, alerts: Sequence[Any]) -> list[AlertOutcome]:
    raise NotImplementedError("being written")
