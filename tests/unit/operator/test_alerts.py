"""Reading Alertmanager's webhook payload (version 4) into the alerts a DebugTrigger acts on.

Cases: the body Alertmanager 0.35 sent the testbed's receiver (one firing alert) gives one
AlertRef; resolved alerts are counted and left out; the namespace and pod labels can be other
labels; the body is refused, with a message naming what is wrong, when it is not JSON, not an
object, of another version, without a list of alerts, or with more than MAX_ALERTS alerts (naming
max_alerts). An alert that is not an object or has an unknown status, a firing alert without
alertname or the namespace/pod label (the message names the label and the variable that
configures it), with a label value that is not a string or not a Kubernetes name, or an alertname
with control, bidi or zero-width characters, is listed as invalid by read_payload (the others of
its group kept) and raised by parse_payload. startsAt is handed on only as an RFC 3339 time
rewritten in UTC, else empty; a fingerprint only as hex. Values from the body appear escaped
(bidi and zero-width characters too) and cut short; JSON nested a hundred thousand levels deep and
over-long integers are refused, not a crash.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from debugcap.errors import ConfigError
from debugcap.operator import alerts
from debugcap.operator.alerts import AlertPayloadError, AlertRef, parse_payload, read_payload

# As Alertmanager v0.35.0 POSTed it to the testbed's webhook receiver (one alert, posted by hand).
REAL = (b'{"receiver":"debugcap-operator","status":"firing","alerts":[{"status":"firing","labels":'
        b'{"alertname":"ProbeAlert","namespace":"default","pod":"x"},"annotations":{},'
        b'"startsAt":"2026-12-04T21:06:49Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"",'
        b'"fingerprint":"d3573ea3bf40a1fb"}],"notification_reason":"first notification","groupLabels":'
        b'{"alertname":"ProbeAlert","namespace":"default","pod":"x"},"commonLabels":{"alertname":"ProbeAlert",'
        b'"namespace":"default","pod":"x"},"commonAnnotations":{},"routeLabels":{},"externalURL":"http://vm:19094",'
        b'"version":"4","groupKey":"{}:{alertname=\\"ProbeAlert\\", namespace=\\"default\\", pod=\\"x\\"}",'
        b'"truncatedAlerts":0}')

LABELS = {"namespace_label": "namespace", "pod_label": "pod"}


def alert(status: str = "firing", **labels: Any) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": "HighHeap", "namespace": "shop", "pod": "api-7d9f-x2", **labels},
            "annotations": {"summary": "heap over 80% of the limit"}, "startsAt": "2026-12-04T21:00:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
            "fingerprint": "0123456789abcdef"}


def payload(*items: dict[str, Any], **top: Any) -> bytes:
    body = {"version": "4", "groupKey": '{}:{alertname="HighHeap"}', "truncatedAlerts": 0, "status": "firing",
            "receiver": "debugcap", "groupLabels": {"alertname": "HighHeap"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(items), **top}
    return json.dumps(body).encode()


def error_of(body: bytes, **labels: str) -> str:
    with pytest.raises(AlertPayloadError) as err:
        parse_payload(body, **{**LABELS, **labels})
    return str(err.value)


def test_the_payload_alertmanager_sent_gives_one_alert_ref() -> None:
    assert parse_payload(REAL, **LABELS) == [AlertRef(
        alertname="ProbeAlert", namespace="default", pod="x",
        labels={"alertname": "ProbeAlert", "namespace": "default", "pod": "x"},
        fingerprint="d3573ea3bf40a1fb", starts_at="2026-12-04T21:06:49Z")]
    notification = read_payload(REAL, **LABELS)
    assert (notification.receiver, notification.resolved, notification.invalid) == ("debugcap-operator", 0, ())
    assert notification.group_key.startswith("{}:{alertname=")


def test_resolved_alerts_are_counted_and_left_out() -> None:
    body = payload(alert(pod="a"), alert("resolved", pod="b"), alert("resolved", pod="c"))
    notification = read_payload(body, **LABELS)
    assert [a.pod for a in notification.firing] == ["a"]
    assert notification.resolved == 2
    assert [a.pod for a in parse_payload(body, **LABELS)] == ["a"]
    # A resolved alert is not judged: it may lack the labels a firing one needs.
    assert read_payload(payload({"status": "resolved", "labels": {}}), **LABELS).resolved == 1


def test_the_namespace_and_pod_can_come_from_other_labels() -> None:
    body = payload(alert(kubernetes_namespace="payments", kubernetes_pod_name="worker-0"))
    (ref,) = parse_payload(body, namespace_label="kubernetes_namespace", pod_label="kubernetes_pod_name")
    assert (ref.namespace, ref.pod) == ("payments", "worker-0")
    assert ref.labels["namespace"] == "shop"  # every label kept as it came


def test_an_alert_ref_is_frozen() -> None:
    (ref,) = parse_payload(REAL, **LABELS)
    with pytest.raises(AttributeError):
        ref.pod = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("body", "says"), [
    (b"", "not JSON"),
    (b"version=4&alerts=", "not JSON"),
    (b'{"version": "4", "alerts": [', "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b'[{"version": "4"}]', "is a list, not a JSON object"),
    (b'"4"', 'is "4", not a JSON object'),
    (b"null", "is null, not a JSON object"),
    (b'{"alerts": []}', 'version is missing, not "4"'),
    (b'{"version": "3", "alerts": []}', 'version is "3", not "4"'),
    (b'{"version": 4, "alerts": []}', 'version is a number, not "4"'),
    (b'{"version": "4"}', "alerts is missing"),
    (b'{"version": "4", "alerts": {"status": "firing"}}', "alerts is an object"),
])
def test_a_body_that_is_not_a_version_4_payload_is_refused_naming_why(body: bytes, says: str) -> None:
    message = error_of(body)
    assert says in message
    with pytest.raises(ConfigError):  # one of debugcap's own errors, for whoever catches those
        read_payload(body, **LABELS)


@pytest.mark.parametrize(("bad", "says"), [
    ("HighHeap", 'alerts[1] is "HighHeap", not an object'),
    (None, "alerts[1] is null, not an object"),
    ({"labels": {"alertname": "HighHeap"}}, "alerts[1].status is missing"),
    ({"status": "pending", "labels": {"alertname": "HighHeap"}}, 'alerts[1].status is "pending": Alertmanager sends'),
])
def test_an_alert_not_an_object_or_of_unknown_status_spoils_only_itself(bad: Any, says: str) -> None:
    notification = read_payload(payload(alert(pod="good"), bad, alert(pod="also-good")), **LABELS)
    assert [a.pod for a in notification.firing] == ["good", "also-good"]
    [invalid] = notification.invalid
    assert invalid.index == 1 and says in invalid.message
    assert invalid.alertname == ("HighHeap" if isinstance(bad, dict) else "")
    assert says in error_of(payload(alert(pod="good"), bad))  # strict: raised


def test_more_alerts_than_max_alerts_are_refused_naming_the_setting() -> None:
    assert len(read_payload(payload(*[alert(pod=f"p{i}") for i in range(alerts.MAX_ALERTS)]), **LABELS).firing) == 100
    with pytest.raises(alerts.TooManyAlerts) as err:
        read_payload(payload(*[alert("resolved")] * (alerts.MAX_ALERTS + 1)), **LABELS)
    assert str(err.value) == ("101 alerts in one notification, over 100: set max_alerts: 100 (or fewer) in the "
                              "Alertmanager receiver's webhook_configs")
    assert isinstance(err.value, AlertPayloadError)


@pytest.mark.parametrize(("given", "handed_on"), [
    ("2026-12-04T21:00:00Z", "2026-12-04T21:00:00Z"),
    ("2026-12-04T21:00:00.123456789Z", "2026-12-04T21:00:00.123Z"),  # Alertmanager's nanoseconds
    ("2026-12-04T23:30:00+02:30", "2026-12-04T21:00:00Z"),
    ("2026-12-04t21:00:00z", "2026-12-04T21:00:00Z"),
    ("0001-01-01T00:00:00Z", ""),  # Go's zero time: no start
    ("2026-12-04", ""), ("2026-12-04T21:00:00", ""), ("2026-W49-5T21:00:00Z", ""), ("2026-02-31T21:00:00Z", ""),
    ("2026-12-04T21:00:00Z\u202e\n", ""), ("yesterday", ""), (1733346000, ""), ("2" * 10_000, ""),
])
def test_starts_at_is_handed_on_only_as_an_rfc_3339_time_of_our_own_writing(given: Any, handed_on: str) -> None:
    item = alert()
    item["startsAt"] = given
    (ref,) = parse_payload(payload(item), **LABELS)
    assert ref.starts_at == handed_on


def test_a_fingerprint_is_handed_on_only_as_hex() -> None:
    item = alert()
    item["fingerprint"] = "abc\x1b[2J"
    assert parse_payload(payload(item), **LABELS)[0].fingerprint == ""
    assert parse_payload(payload(alert()), **LABELS)[0].fingerprint == "0123456789abcdef"


@pytest.mark.parametrize("alertname", ["High\u202eHeap", "High\u200bHeap", "High\u2028Heap", "High\ud800Heap",
                                       "High\u0085Heap", "High\x00Heap"])
def test_an_alertname_with_bidi_zero_width_or_control_characters_is_refused(alertname: str) -> None:
    notification = read_payload(payload(alert(alertname=alertname), alert(pod="good")), **LABELS)
    assert [a.pod for a in notification.firing] == ["good"]
    [invalid] = notification.invalid
    assert "is not a name a DebugTrigger can match" in invalid.message and invalid.alertname == ""
    shown = invalid.message.split("alertname ", 1)[1].split(" is not", 1)[0]
    assert shown.isascii() and shown.isprintable(), shown  # escaped as \\u....


def test_an_alert_without_alertname_is_refused() -> None:
    item = alert()
    del item["labels"]["alertname"]
    assert "alerts[0] has no alertname label" in error_of(payload(item))
    assert "has no alertname" in error_of(payload(alert(alertname="  ")))
    assert "alerts[0].labels is missing" in error_of(payload({"status": "firing"}))


@pytest.mark.parametrize(("missing", "env"), [("namespace", "DEBUGCAP_OPERATOR_ALERT_NAMESPACE_LABEL"),
                                              ("pod", "DEBUGCAP_OPERATOR_ALERT_POD_LABEL")])
def test_an_alert_without_the_namespace_or_pod_label_names_the_label_and_its_setting(missing: str, env: str) -> None:
    item = alert()
    del item["labels"][missing]
    message = error_of(payload(item))
    assert f'has no "{missing}" label naming the {missing}' in message and env in message
    assert '"HighHeap"' in message
    custom = error_of(payload(alert()), **{f"{missing}_label": "kubernetes_" + missing})
    assert f'no "kubernetes_{missing}" label' in custom and env in custom


@pytest.mark.parametrize(("labels", "says"), [
    ({"pod": 7}, 'labels["pod"] is a number; label values are strings'),
    ({"severity": {"level": "high"}}, 'labels["severity"] is an object'),
    ({"namespace": None}, 'labels["namespace"] is null'),
    ({"namespace": "Shop"}, 'labels["namespace"] is "Shop", not a Kubernetes namespace name (a DNS-1123 label'),
    ({"namespace": "shop.eu"}, "not a Kubernetes namespace name"),
    ({"namespace": "n" * 64}, "at most 63 characters"),
    ({"pod": "../../etc/passwd"}, "not a Kubernetes pod name (a DNS-1123 subdomain"),
    ({"pod": "api_1"}, "not a Kubernetes pod name"),
    ({"pod": "-api"}, "not a Kubernetes pod name"),
    ({"pod": "p" * 254}, "at most 253 characters"),
    ({"alertname": "High\nHeap"}, "is not a name a DebugTrigger can match"),
    ({"alertname": "A" * 300}, "is not a name a DebugTrigger can match"),
])
def test_label_values_must_be_strings_and_kubernetes_names(labels: dict[str, Any], says: str) -> None:
    assert says in error_of(payload(alert(**labels)))


def test_a_dotted_pod_name_is_a_valid_subdomain() -> None:
    (ref,) = parse_payload(payload(alert(pod="web.v2-0")), **LABELS)
    assert ref.pod == "web.v2-0"


def test_one_bad_alert_does_not_spoil_the_others_of_its_group() -> None:
    bad = alert()
    del bad["labels"]["pod"]
    notification = read_payload(payload(alert(pod="good"), bad, alert(pod="Bad")), **LABELS)
    assert [a.pod for a in notification.firing] == ["good"]
    assert [(i.index, i.alertname) for i in notification.invalid] == [(1, "HighHeap"), (2, "HighHeap")]
    assert 'no "pod" label' in notification.invalid[0].message
    assert "alerts[2]" in notification.invalid[1].message
    # parse_payload is strict: the first bad alert's reason.
    assert 'alerts[1] ("HighHeap") has no "pod" label' in error_of(payload(alert(pod="good"), bad))


def test_values_from_the_body_are_escaped_and_cut_short() -> None:
    hostile = "\x1b[31m\r\n" + "A" * 100_000 + "\x00"
    for body in (payload(alert(pod=hostile)), payload(alert(namespace=hostile)), payload(alert(**{hostile: 1})),
                 json.dumps({"version": hostile, "alerts": []}).encode()):
        message = error_of(body)
        assert len(message) < 500
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in message), repr(message)
        assert "\\u001b[31m\\r\\n" in message and "..." in message
    assert alerts.show("é \u0085") == '"é \\u0085"'
    assert alerts.show(["x"]) == "a list" and alerts.show(True) == "a boolean"


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "nested too deeply" in error_of(deep)
    in_labels = b'{"version": "4", "alerts": [{"status": "firing", "labels": ' + b'{"a":' * 100_000 + b"1"
    in_labels += b"}" * 100_000 + b"}]}"
    assert "nested too deeply" in error_of(in_labels)


def test_an_integer_of_ten_thousand_digits_is_not_json_we_read() -> None:
    assert "not JSON" in error_of(b'{"version": "4", "truncatedAlerts": ' + b"9" * 10_000 + b', "alerts": []}')
