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
not such a payload raises :class:`AlertPayloadError`; one with more than :data:`MAX_ALERTS`
alerts raises :class:`TooManyAlerts` before any is read. One alert that cannot name a pod (not an
object, a status neither firing nor resolved, no alertname, no namespace or pod label, a value
that is not a Kubernetes name) does not spoil the others of its group: :func:`read_payload` lists
it in :attr:`Notification.invalid` with the reason, and :func:`parse_payload` (strict) raises that
reason instead.

Nothing from the body is echoed back as it came: values in messages are escaped (control
characters as ``\\u..``) and cut to :data:`SHOWN_MAX` characters. What an :class:`AlertRef` hands
on is clean: the alertname has no control, format (bidi, zero-width) or separator character and
at most :data:`ALERTNAME_MAX` characters, the namespace and pod are Kubernetes names, ``starts_at``
is an RFC 3339 time rewritten by this module (``2026-12-04T21:00:00.123Z``) or empty, the
fingerprint hexadecimal or empty. Only ``labels`` is as it came, for matching, never for messages.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from debugcap.errors import ConfigError

PAYLOAD_VERSION: Final = "4"
NAMESPACE_LABEL_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_NAMESPACE_LABEL"
POD_LABEL_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_POD_LABEL"
SHOWN_MAX: Final = 64  # characters of a value from the body shown in a message
ALERTNAME_MAX: Final = 253
# Alerts one request may carry. Each firing alert costs the operator about 7 API calls (the
# namespace's triggers, the pod, past captures, a create, status writes) and 10,000 fit in 1 MiB:
# Alertmanager's max_alerts keeps a notification to this many (docs/alertmanager.md).
MAX_ALERTS: Final = 100
# Unicode categories no name handed on may hold: control, format (bidi overrides, zero-width),
# surrogate (a lone "\ud800" escape decodes to one), private use, unassigned, line and paragraph
# separators. They reorder or hide text in a terminal, a log line or `kubectl get`.
_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class AlertPayloadError(ConfigError):
    """The body is not an Alertmanager webhook payload this receiver can act on; the message
    says what is wrong, naming the field."""


class TooManyAlerts(AlertPayloadError):
    """The payload carries more than :data:`MAX_ALERTS` alerts; the message names Alertmanager's
    ``max_alerts``."""


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
    # Cut before escaping (escapes only lengthen it): a 1 MiB label costs no more than a short one.
    escaped = json.dumps(value[: SHOWN_MAX + 1], ensure_ascii=False)[1:-1]
    escaped = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNPRINTABLE else c for c in escaped)
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
    if len(alerts) > MAX_ALERTS:
        raise TooManyAlerts(f"{len(alerts)} alerts in one notification, over {MAX_ALERTS}: set max_alerts: "
                            f"{MAX_ALERTS} (or fewer) in the Alertmanager receiver's webhook_configs")
    firing: list[AlertRef] = []
    invalid: list[InvalidAlert] = []
    resolved = 0
    for index, alert in enumerate(alerts):
        status = alert.get("status") if isinstance(alert, dict) else None
        if status == "resolved":
            resolved += 1
            continue
        try:
            if not isinstance(alert, dict):
                raise AlertPayloadError(f"alerts[{index}] is {show(alert)}, not an object")
            if status != "firing":
                raise AlertPayloadError(f"alerts[{index}].status is {'missing' if status is None else show(status)}:"
                                        ' Alertmanager sends "firing" or "resolved"')
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
    if not printable_name(alertname):
        raise AlertPayloadError(f"{where}.labels.alertname {show(alertname)} is not a name a DebugTrigger "
                                f"can match (control, format or separator characters, or over {ALERTNAME_MAX} "
                                "characters)")
    namespace = _name(labels, namespace_label, NAMESPACE_LABEL_ENV, where, alertname, "namespace", subdomain=False)
    pod = _name(labels, pod_label, POD_LABEL_ENV, where, alertname, "pod", subdomain=True)
    fingerprint = alert.get("fingerprint")
    return AlertRef(alertname=alertname, namespace=namespace, pod=pod, labels=dict(labels),
                    fingerprint=fingerprint if isinstance(fingerprint, str) and _FINGERPRINT.fullmatch(fingerprint)
                    else "", starts_at=rfc3339(alert.get("startsAt")))


def printable_name(name: str) -> bool:
    """Whether ``name`` is at most ALERTNAME_MAX characters, none of them unprintable (_UNPRINTABLE)."""
    return 0 < len(name) <= ALERTNAME_MAX and not any(unicodedata.category(c) in _UNPRINTABLE for c in name)


def rfc3339(value: object) -> str:
    """``value`` as an RFC 3339 time with a zone, rewritten in UTC (``2026-12-04T21:00:00Z``, or
    with milliseconds when it had a fraction); "" when it is not one (then the alert counts as
    starting when received). Nothing of the original text is kept: what is handed on is ours."""
    # The shape first: fromisoformat also takes week dates, ordinal dates and times without a zone.
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return ""
    try:
        when = datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # 2026-02-31, or a zone pushing year 9999 past the end
        return ""
    if when.year < 1970:  # Alertmanager's zero time (0001-01-01): no start given
        return ""
    fraction = f".{when.microsecond // 1000:03d}" if when.microsecond else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


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


def _readable_alertname(alert: object) -> str:
    labels = alert.get("labels") if isinstance(alert, dict) else None
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return name if isinstance(name, str) and printable_name(name) else ""


def _text(value: object) -> str:
    """A string field Alertmanager always sends, kept only when it is a string of sane length."""
    return value if isinstance(value, str) and len(value) <= 1024 else ""
