"""Alertmanager's webhook payload (version 4), read into the alerts a DebugTrigger can act on.

Pure parsing, no I/O: :mod:`~debugcap.operator.alert_webhook` hands the request body here and
:func:`debugcap.operator.triggers.fire_for_alerts` gets the :class:`AlertRef` list back.

The payload is what Alertmanager POSTs to a ``webhook_configs`` receiver::

    {"version": "4", "groupKey": "...", "status": "firing", "receiver": "...",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": "...",
     "truncatedAlerts": 0,
     "alerts": [{"status": "firing", "labels": {"alertname": "HighHeap", "namespace": "shop",
                 "pod": "api-7d9f"}, "annotations": {...}, "startsAt": "...", "endsAt": "...",
                 "generatorURL": "...", "fingerprint": "..."}]}

Only ``firing`` alerts count; ``resolved`` ones are counted and otherwise ignored. A body that is
not such a payload raises :class:`AlertPayloadError`. One alert that cannot name a pod (no
alertname, no namespace or pod label, a value that is not a Kubernetes name) does not spoil the
others of its group: :func:`read_payload` lists it in :attr:`Notification.invalid` with the
reason, and :func:`parse_payload` (strict) raises that reason instead.

Nothing from the body is echoed back as it came: values in messages are escaped (control
characters as ``\\u..``) and cut to :data:`SHOWN_MAX` characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from debugcap.errors import ConfigError

PAYLOAD_VERSION: Final = "4"
NAMESPACE_LABEL_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_NAMESPACE_LABEL"
POD_LABEL_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_POD_LABEL"
SHOWN_MAX: Final = 64  # characters of a value from the body shown in a message
ALERTNAME_MAX: Final = 253
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class AlertPayloadError(ConfigError):
    """The body is not an Alertmanager webhook payload this receiver can act on; the message
    says what is wrong, naming the field."""


@dataclass(frozen=True)
class AlertRef:
    """One firing alert naming one pod: what a DebugTrigger's ``when.alert`` is matched against."""

    alertname: str
    namespace: str
    pod: str
    labels: dict[str, str] = field(hash=False)
    fingerprint: str
    starts_at: str


@dataclass(frozen=True)
class InvalidAlert:
    """A firing alert that names no usable pod: its position in ``alerts``, its alertname when it
    had a readable one, and why it is refused."""

    index: int
    alertname: str
    message: str


@dataclass(frozen=True)
class Notification:
    """A payload read: the firing alerts that name a pod, those that could not, and how many
    resolved alerts were ignored."""

    firing: tuple[AlertRef, ...]
    invalid: tuple[InvalidAlert, ...]
    resolved: int
    group_key: str
    receiver: str


def show(value: object) -> str:
    """``value`` safe to put in a message: a string escaped and cut short, else its JSON type."""
    if not isinstance(value, str):
        return _type_name(value)
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    escaped = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)
    if len(escaped) > SHOWN_MAX:
        escaped = escaped[: SHOWN_MAX - 3] + "..."
    return f'"{escaped}"'


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def read_payload(body: bytes, *, namespace_label: str, pod_label: str) -> Notification:
    """The alerts of an Alertmanager webhook body; :class:`AlertPayloadError` when it is not one."""
    payload = _decode(body)
    version = payload.get("version")
    if version != PAYLOAD_VERSION:
        shown = "missing" if version is None else show(version)
        raise AlertPayloadError(f"version is {shown}, not \"4\": this receiver reads Alertmanager's webhook "
                                "payload version 4 (Alertmanager 0.x sends it from a webhook_configs receiver)")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        shown = "missing" if alerts is None else show(alerts)
        raise AlertPayloadError(f"alerts is {shown}: a webhook payload carries a list of alerts")
    firing: list[AlertRef] = []
    invalid: list[InvalidAlert] = []
    resolved = 0
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise AlertPayloadError(f"alerts[{index}] is {show(alert)}, not an object")
        status = alert.get("status")
        if status == "resolved":
            resolved += 1
            continue
        if status != "firing":
            raise AlertPayloadError(f"alerts[{index}].status is {show(status) if status is not None else 'missing'}:"
                                    ' Alertmanager sends "firing" or "resolved"')
        try:
            firing.append(_alert(alert, index, namespace_label=namespace_label, pod_label=pod_label))
        except AlertPayloadError as err:
            invalid.append(InvalidAlert(index, _readable_alertname(alert), str(err)))
    return Notification(tuple(firing), tuple(invalid), resolved, _text(payload.get("groupKey")),
                        _text(payload.get("receiver")))


def parse_payload(body: bytes, *, namespace_label: str, pod_label: str) -> list[AlertRef]:
    """The firing alerts of a webhook body, every one naming a pod; resolved alerts are left out.

    Strict: the first firing alert that names no usable pod raises its :class:`AlertPayloadError`
    (:func:`read_payload` lists such alerts instead and keeps the others).
    """
    notification = read_payload(body, namespace_label=namespace_label, pod_label=pod_label)
    if notification.invalid:
        raise AlertPayloadError(notification.invalid[0].message)
    return list(notification.firing)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except RecursionError:
        raise AlertPayloadError("the body is JSON nested too deeply to read; an Alertmanager payload is "
                                "a few levels deep") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise AlertPayloadError(f"the body is not JSON ({show(str(err))}); Alertmanager sends a JSON "
                                "object") from None
    if not isinstance(payload, dict):
        raise AlertPayloadError(f"the body is {show(payload)}, not a JSON object: Alertmanager sends an object "
                                'with "version" and "alerts"')
    return payload


def _alert(alert: Mapping[str, Any], index: int, *, namespace_label: str, pod_label: str) -> AlertRef:
    where = f"alerts[{index}]"
    labels = alert.get("labels")
    if not isinstance(labels, dict):
        shown = "missing" if labels is None else show(labels)
        raise AlertPayloadError(f"{where}.labels is {shown}, not an object of label names to values")
    for name, value in labels.items():
        if not isinstance(value, str):
            raise AlertPayloadError(f"{where}.labels[{show(name)}] is {show(value)}; label values are strings")
    alertname = labels.get("alertname", "")
    if not alertname.strip():
        raise AlertPayloadError(f"{where} has no alertname label: a DebugTrigger's when.alert.name is matched "
                                "against it")
    if len(alertname) > ALERTNAME_MAX or _CONTROL.search(alertname):
        raise AlertPayloadError(f"{where}.labels.alertname {show(alertname)} is not a name a DebugTrigger "
                                f"can match (control characters, or over {ALERTNAME_MAX} characters)")
    namespace = _name(labels, namespace_label, NAMESPACE_LABEL_ENV, where, alertname, "namespace", subdomain=False)
    pod = _name(labels, pod_label, POD_LABEL_ENV, where, alertname, "pod", subdomain=True)
    return AlertRef(alertname=alertname, namespace=namespace, pod=pod, labels=dict(labels),
                    fingerprint=_text(alert.get("fingerprint")), starts_at=_text(alert.get("startsAt")))


def _name(labels: Mapping[str, str], label: str, env: str, where: str, alertname: str, what: str, *,
          subdomain: bool) -> str:
    value = labels.get(label)
    if value is None or not value:
        raise AlertPayloadError(f"{where} ({show(alertname)}) has no {show(label)} label naming the {what}; "
                                f"add it to the alert rule, or name the label that holds the {what} with {env}")
    limit, pattern = (253, _DNS1123_SUBDOMAIN) if subdomain else (63, _DNS1123_LABEL)
    if len(value) > limit or not pattern.fullmatch(value):
        kind = "DNS-1123 subdomain" if subdomain else "DNS-1123 label"
        raise AlertPayloadError(f"{where}.labels[{show(label)}] is {show(value)}, not a Kubernetes {what} name "
                                f"(a {kind}: lower-case letters, digits and '-', at most {limit} characters)")
    return value


def _readable_alertname(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels")
    name = labels.get("alertname") if isinstance(labels, dict) else None
    if isinstance(name, str) and 0 < len(name) <= ALERTNAME_MAX and not _CONTROL.search(name):
        return name
    return ""


def _text(value: object) -> str:
    """A string field Alertmanager always sends, kept only when it is a string of sane length."""
    return value if isinstance(value, str) and len(value) <= 1024 else ""
