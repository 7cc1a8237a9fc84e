"""The Alertmanager webhook receiver, served in-process with a fake dispatch in place of the triggers.

Cases: no, a wrong or a non-Bearer Authorization is 401 with ``WWW-Authenticate: Bearer`` and
dispatches nothing; 10 MB (with a Content-Length, or chunked without one) is 413; a body that is
not a version 4 payload, or whose firing alerts all name no pod, is 400 with a JSON error naming
what is wrong; every alert refused is 422; one fired or suppressed is 200 (the others listed); only
resolved alerts is 200 without a dispatch; a dispatch that raises is 500 with a short message (and
a log line), one that finds the operator stopping 503, and an alert whose outcome is "error" (a
temporary API failure) makes the answer 503 even beside one that fired; GET is 405. More than
MAX_ALERTS alerts is 413 naming max_alerts. On the real server, a Content-Encoding (gzip, valid or
not) is 400 without reading or inflating the body, and a client leaving mid-body logs no error.
Each request counts once in ``debugcap_alert_webhook_requests_total`` under its outcome, and the
token is in no log line. Over TLS (a self-signed certificate made with openssl) the receiver
answers HTTPS and refuses plain HTTP, and a certificate replaced on disk serves the next handshake
(one that does not load leaves the previous one serving). The token file is required and
non-empty, a bad certificate is a ConfigError; the kopf start-up handler serves on the configured
port (nothing when it is 0), after configure has made the runtime, and stops at clean-up; a port
it cannot bind stops the operator (PermanentError) naming the port and its variable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import json
import logging
import os
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from debugcap.errors import ConfigError
from debugcap.operator import alert_webhook, runtime, triggers
from debugcap.operator.alert_webhook import AlertReceiver, ReceiverSettings, Unavailable
from debugcap.operator.alerts import MAX_ALERTS, AlertRef
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.triggers import AlertOutcome

TOKEN = "s3cr3t-t0ken-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def alert(pod: str = "api-0", status: str = "firing", **labels: str) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": "HighHeap", "namespace": "shop", "pod": pod, **labels},
            "annotations": {}, "startsAt": "2026-12-04T21:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": "0123456789abcdef"}


def payload(*items: dict[str, Any]) -> bytes:
    return json.dumps({"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "debugcap",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
                       "truncatedAlerts": 0, "alerts": list(items)}).encode()


class FakeFire:
    """Dispatch that records the alerts it got and answers each with ``outcome_of(ref)``."""

    def __init__(self, outcome_of: Callable[[AlertRef], str] = lambda ref: "fired",
                 raises: BaseException | None = None) -> None:
        self.calls: list[list[AlertRef]] = []
        self.outcome_of = outcome_of
        self.raises = raises

    async def __call__(self, refs: Sequence[AlertRef]) -> list[AlertOutcome]:
        self.calls.append(list(refs))
        if self.raises is not None:
            raise self.raises
        return [AlertOutcome(r.alertname, r.namespace, r.pod, self.outcome_of(r), f"{self.outcome_of(r)} for {r.pod}",
                             (f"trig-{r.pod}",) if self.outcome_of(r) == "fired" else ()) for r in refs]


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value("debugcap_alert_webhook_requests_total", {"outcome": outcome}) or 0.0


Exchange = Callable[[TestClient[Any, Any]], Awaitable[Any]]


def serve(exchange: Exchange, fire: FakeFire | None = None, **settings: Any) -> Any:
    """Run ``exchange`` against the receiver's app on an ephemeral 127.0.0.1 port."""

    async def main() -> Any:
        app = alert_webhook.make_app(ReceiverSettings(port=0, token=TOKEN, **settings), fire or FakeFire())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await exchange(client)

    return asyncio.run(main())


async def post(client: TestClient[Any, Any], body: bytes | Any, headers: dict[str, str] | None = None
               ) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with client.post("/alerts", data=body, headers=AUTH if headers is None else headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
                                     {"Authorization": "Bearer \u00e9t\u00e9"}])
def test_a_missing_or_wrong_token_is_401_and_dispatches_nothing(headers: dict[str, str]) -> None:
    fire, before = FakeFire(), count("unauthorized")
    status, body, response_headers = serve(lambda c: post(c, payload(alert()), headers), fire)
    assert status == 401 and response_headers["WWW-Authenticate"] == "Bearer"
    assert "bearer token" in body["error"]
    assert fire.calls == [] and count("unauthorized") == before + 1


def test_the_scheme_is_case_insensitive() -> None:
    status, _, _ = serve(lambda c: post(c, payload(alert()), {"Authorization": f"bearer {TOKEN}"}))
    assert status == 200


def test_ten_megabytes_is_413_with_or_without_a_content_length() -> None:
    big = b'{"version": "4", "alerts": [' + b'{"status": "resolved"},' * (10_000_000 // 23) + b"]}"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1 << 16):
            yield big[start:start + (1 << 16)]

    fire, before = FakeFire(), count("too_large")
    for body in (io.BytesIO(big), chunks()):  # BytesIO: sent with a Content-Length
        status, answer, _ = serve(lambda c, body=body: post(c, body), fire)  # type: ignore[misc]
        assert status == 413 and "over 1 MiB" in answer["error"] and "max_alerts" in answer["error"]
    assert fire.calls == [] and count("too_large") == before + 2


@pytest.mark.parametrize(("body", "says"), [
    (b"not json", "not JSON"),
    (b'{"version": "3", "alerts": []}', 'version is "3", not "4"'),
    (b"[" * 200_000, "nested too deeply"),
    (payload({"status": "firing", "labels": {"alertname": "HighHeap", "namespace": "shop"}}),
     'has no "pod" label naming the pod; add it to the alert rule, or name the label that holds the pod with '
     "DEBUGCAP_OPERATOR_ALERT_POD_LABEL"),
    (payload(alert(pod="Not_A_Pod\x1b")), 'labels["pod"] is "Not_A_Pod\\u001b", not a Kubernetes pod name'),
])
def test_a_malformed_body_is_400_naming_what_is_wrong(body: bytes, says: str) -> None:
    fire, before = FakeFire(), count("malformed")
    status, answer, _ = serve(lambda c: post(c, body), fire)
    assert status == 400 and says in answer["error"]
    assert fire.calls == [] and count("malformed") == before + 1


def test_every_alert_refused_is_422() -> None:
    fire, before = FakeFire(lambda ref: "refused"), count("refused")
    status, answer, _ = serve(lambda c: post(c, payload(alert("a"), alert("b"))), fire)
    assert status == 422
    assert [(a["pod"], a["outcome"], a["message"]) for a in answer["alerts"]] == [
        ("a", "refused", "refused for a"), ("b", "refused", "refused for b")]
    assert (answer["fired"], answer["refused"], answer["message"]) == (0, 2, "2 refused")
    assert count("refused") == before + 1


def test_one_alert_fired_is_200_with_every_outcome_listed() -> None:
    fire, before = FakeFire(lambda ref: {"a": "fired", "b": "suppressed"}.get(ref.pod, "refused")), count("fired")
    bad = alert("x")
    del bad["labels"]["namespace"]
    body = payload(alert("a"), alert("b"), alert("c"), bad, alert("d", status="resolved"))
    status, answer, _ = serve(lambda c: post(c, body), fire, namespace_label="namespace")
    assert status == 200
    assert [r.pod for r in fire.calls[0]] == ["a", "b", "c"]
    assert [(a["pod"], a["outcome"], a["captures"]) for a in answer["alerts"]] == [
        ("a", "fired", ["trig-a"]), ("b", "suppressed", []), ("c", "refused", []), ("", "refused", [])]
    assert 'alerts[3] ("HighHeap") has no "namespace" label' in answer["alerts"][3]["message"]
    assert answer["message"] == "1 fired; 1 suppressed; 2 refused; 1 resolved alert ignored"
    assert count("fired") == before + 1


def test_suppressed_only_is_200_so_alertmanager_does_not_retry() -> None:
    fire, before = FakeFire(lambda ref: "suppressed"), count("suppressed")
    status, answer, _ = serve(lambda c: post(c, payload(alert())), fire)
    assert (status, answer["suppressed"]) == (200, 1) and count("suppressed") == before + 1


def test_only_resolved_alerts_is_200_and_dispatches_nothing() -> None:
    fire, before = FakeFire(), count("ignored")
    status, answer, _ = serve(lambda c: post(c, payload(alert(status="resolved"), alert(status="resolved"))), fire)
    assert (status, answer["message"], answer["alerts"]) == (200, "2 resolved alerts ignored", [])
    assert fire.calls == [] and count("ignored") == before + 1


def test_configured_labels_name_the_pod() -> None:
    fire = FakeFire()
    body = payload(alert(kubernetes_namespace="payments", kubernetes_pod="worker-1"))
    status, _, _ = serve(lambda c: post(c, body), fire, namespace_label="kubernetes_namespace",
                         pod_label="kubernetes_pod")
    assert status == 200 and (fire.calls[0][0].namespace, fire.calls[0][0].pod) == ("payments", "worker-1")


def test_a_failing_dispatch_is_500_with_a_short_message_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    fire, before = FakeFire(raises=RuntimeError("kube exploded at /secret/path")), count("error")
    with caplog.at_level(logging.INFO):
        status, answer, _ = serve(lambda c: post(c, payload(alert())), fire)
    assert status == 500 and "log says why" in answer["error"] and "exploded" not in json.dumps(answer)
    assert "kube exploded" in caplog.text and "Traceback" in caplog.text
    assert TOKEN not in caplog.text
    assert count("error") == before + 1


def test_an_operator_stopping_is_503() -> None:
    status, answer, _ = serve(lambda c: post(c, payload(alert())), FakeFire(raises=Unavailable("stopping")))
    assert (status, answer["error"]) == (503, "stopping")


def test_get_is_405_and_counted_malformed() -> None:
    before = count("malformed")

    async def get(client: TestClient[Any, Any]) -> int:
        async with client.get("/alerts", headers=AUTH) as resp:
            return resp.status

    assert serve(get) == 405 and count("malformed") == before + 1


def test_the_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def several(client: TestClient[Any, Any]) -> None:
        await post(client, payload(alert()))
        await post(client, b"junk")
        await post(client, payload(alert()), {"Authorization": f"Bearer {TOKEN}-not"})

    with caplog.at_level(logging.DEBUG):
        serve(several)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(ReceiverSettings(port=1, token=TOKEN))


# ---------------------------------------------------------------- settings, TLS, the kopf handlers


def test_the_token_file_is_required_and_not_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE is not set"):
        alert_webhook.read_token(None)
    with pytest.raises(ConfigError, match=r"DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE=.*cannot read the token"):
        alert_webhook.read_token(tmp_path / "absent")
    (tmp_path / "empty").write_text(" \n")
    with pytest.raises(ConfigError, match=r"TOKEN_FILE=.*empty"):
        alert_webhook.read_token(tmp_path / "empty")
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    assert alert_webhook.read_token(tmp_path / "token") == TOKEN


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_a_certificate_that_does_not_load_is_a_config_error(tmp_path: Path) -> None:
    assert alert_webhook.tls_context(None, None) is None
    (tmp_path / "bad.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="TLS_CERT_FILE and _TLS_KEY_FILE"):
        alert_webhook.tls_context(tmp_path / "bad.crt", tmp_path / "bad.crt")


def test_over_tls_the_receiver_answers_https_and_refuses_plain_http(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    settings = ReceiverSettings(port=0, token=TOKEN, ssl_context=alert_webhook.tls_context(cert, key),
                                host="127.0.0.1")
    fire = FakeFire()

    async def main() -> tuple[int, dict[str, Any], type[BaseException] | None]:
        receiver = AlertReceiver(settings, fire)
        await receiver.start()
        try:
            port = receiver.addresses[0][1]
            trusted = ssl.create_default_context(cafile=str(cert))
            async with aiohttp.ClientSession() as session:
                async with session.post(f"https://127.0.0.1:{port}/alerts", data=payload(alert()), headers=AUTH,
                                        ssl=trusted) as resp:
                    status, body = resp.status, await resp.json()
                plain: type[BaseException] | None = None
                try:
                    async with session.post(f"http://127.0.0.1:{port}/alerts", data=payload(alert()),
                                            headers=AUTH) as resp:
                        await resp.read()
                except aiohttp.ClientError as err:
                    plain = type(err)
            return status, body, plain
        finally:
            await receiver.stop()

    status, body, plain = asyncio.run(main())
    assert (status, body["fired"]) == (200, 1)
    assert plain is not None, "plain HTTP to the TLS port was answered"
    assert len(fire.calls) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memo_with(config: DebugcapConfig) -> kopf.Memo:
    memo = kopf.Memo()
    # Only config is read by these handlers; the rest of the runtime is never touched.
    memo.runtime = runtime.Runtime(config=config, kube=None, store=None, executor=None, pods=None)  # type: ignore[arg-type]
    return memo


def test_the_startup_handler_serves_nothing_when_the_port_is_0() -> None:
    memo = memo_with(DebugcapConfig())
    asyncio.run(alert_webhook.start_alert_receiver(memo=memo, logger=logging.getLogger("test")))
    assert "alert_receiver" not in memo


def test_the_startup_handler_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    config = DebugcapConfig(alert_webhook_port=free_port(), alert_webhook_token_file=tmp_path / "absent")
    with pytest.raises(kopf.PermanentError, match="DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE"):
        asyncio.run(alert_webhook.start_alert_receiver(memo=memo_with(config), logger=logging.getLogger("test")))


def test_the_handlers_serve_the_configured_port_through_the_triggers_until_clean_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    port = free_port()
    config = dataclasses.replace(DebugcapConfig(), alert_webhook_port=port, alert_webhook_token_file=tmp_path / "token",
                                 alert_pod_label="instance_pod")
    memo = memo_with(config)
    seen: list[tuple[object, list[AlertRef]]] = []

    async def fire_for_alerts(rt: object, refs: Sequence[AlertRef]) -> list[AlertOutcome]:
        seen.append((rt, list(refs)))
        return [AlertOutcome(r.alertname, r.namespace, r.pod, "fired", "ok", ("c",)) for r in refs]

    monkeypatch.setattr(triggers, "fire_for_alerts", fire_for_alerts)

    async def send(session: aiohttp.ClientSession) -> int:
        async with session.post(f"http://127.0.0.1:{port}/alerts", data=payload(alert(instance_pod="w-1")),
                                headers=AUTH) as resp:
            return resp.status

    async def main() -> tuple[int, int, bool]:
        await alert_webhook.start_alert_receiver(memo=memo, logger=logging.getLogger("test"))
        async with aiohttp.ClientSession() as session:
            served = await send(session)
            rt = memo.pop("runtime")  # startup.shutdown runs first at clean-up
            stopping = await send(session)
            memo.runtime = rt
            await alert_webhook.stop_alert_receiver(memo=memo)
            try:
                await send(session)
                refused = False
            except aiohttp.ClientConnectionError:
                refused = True
        return served, stopping, refused

    served, stopping, refused = asyncio.run(main())
    assert (served, stopping, refused) == (200, 503, True)
    assert seen[0][0] is memo.runtime and [r.pod for r in seen[0][1]] == ["w-1"]
    assert "alert_receiver" not in memo


def test_kopf_runs_configure_before_the_receiver_starts_whatever_the_import_order() -> None:
    from debugcap.operator import handlers  # noqa: F401  (registers every handler, as kopf run -m does)

    ids = [h.id for h in kopf.get_default_registry()._activities.get_all_handlers()]  # noqa: SLF001
    assert ids.index("configure") < ids.index("start_alert_receiver")



# ---------------------------------------------------------------- after review: errors, limits, the wire


def test_an_alert_met_by_a_temporary_failure_makes_the_answer_503_even_beside_one_that_fired() -> None:
    """Alertmanager retries only a whole notification, on a 5xx; the repeats of those that fired
    are turned into suppressed by the trigger's cooldown."""
    fire, before = FakeFire(lambda ref: "error" if ref.pod == "b" else "fired"), count("error")
    status, answer, _ = serve(lambda c: post(c, payload(alert("a"), alert("b"))), fire)
    assert status == 503
    assert (answer["fired"], answer["error"], answer["message"]) == (1, 1, "1 fired; 1 error")
    assert [(a["pod"], a["outcome"]) for a in answer["alerts"]] == [("a", "fired"), ("b", "error")]
    assert count("error") == before + 1


def test_more_alerts_than_max_alerts_is_413_naming_the_setting() -> None:
    fire, before = FakeFire(), count("too_large")
    status, answer, _ = serve(lambda c: post(c, payload(*[alert(f"p{i}") for i in range(MAX_ALERTS + 1)])), fire)
    assert status == 413 and "max_alerts" in answer["error"] and "101 alerts" in answer["error"]
    assert fire.calls == [] and count("too_large") == before + 1


def raw_exchange(request: bytes, *, read: bool = True, fire: FakeFire | None = None,
                 until: Callable[[], bool] = lambda: True) -> bytes:
    """``request`` sent as it is to the real receiver (its own server settings); what came back.
    The receiver stops once ``until()`` holds (a wait for the server's side of a dropped connection,
    bounded only against a failing test)."""

    def talk(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            if not read:
                return b""
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            return answer

    async def main() -> bytes:
        receiver = AlertReceiver(ReceiverSettings(port=0, token=TOKEN, host="127.0.0.1"), fire or FakeFire())
        await receiver.start()
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, talk, receiver.addresses[0][1])
            for _ in range(1000):
                if until():
                    break
                await asyncio.sleep(0.01)
            return answer
        finally:
            await receiver.stop()

    return asyncio.run(main())


def head(body_length: int, extra: str = "") -> bytes:
    return (f"POST /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {body_length}\r\nConnection: close\r\n{extra}\r\n"
            ).encode()


@pytest.mark.parametrize("body", [gzip.compress(payload(alert())), b"not gzip at all",
                                  gzip.compress(b"0" * (16 << 20))], ids=["gzip", "broken", "bomb"])
def test_a_content_encoding_is_400_without_inflating_or_an_error_log(body: bytes, caplog: pytest.LogCaptureFixture
                                                                       ) -> None:
    fire, before = FakeFire(), count("malformed")
    with caplog.at_level(logging.DEBUG):
        answer = raw_exchange(head(len(body), "Content-Encoding: gzip\r\n") + body, fire=fire)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'Content-Encoding \\"gzip\\" is not accepted' in answer  # JSON-escaped quotes
    assert fire.calls == [] and count("malformed") == before + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_client_leaving_mid_body_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    fire, before = FakeFire(), count("malformed")
    with caplog.at_level(logging.DEBUG):
        raw_exchange(head(1000) + b'{"version": "4", "al', read=False, fire=fire,
                     until=lambda: count("malformed") > before)
    assert fire.calls == [] and count("malformed") == before + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "disconnected before sending its whole body" in caplog.text


def peer_certificate(port: int) -> bytes:
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with client.wrap_socket(sock) as tls:  # no server_hostname: no SNI, as for an IP address
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def test_a_certificate_replaced_on_disk_serves_the_next_handshake(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    cert, key = make_cert(tmp_path)
    first = der_of(cert)
    renewed_dir = tmp_path / "renewed"
    renewed_dir.mkdir()
    renewed, renewed_key = make_cert(renewed_dir)
    settings = ReceiverSettings(port=0, token=TOKEN, ssl_context=alert_webhook.tls_context(cert, key),
                                host="127.0.0.1")

    def replace(source: Path, target: Path) -> None:  # as the kubelet swaps a Secret's files: whole
        target.write_bytes(source.read_bytes())
        os.utime(target, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a later mtime, however coarse

    async def main() -> list[bytes]:
        receiver = AlertReceiver(settings, FakeFire())
        await receiver.start()
        loop = asyncio.get_running_loop()
        port = receiver.addresses[0][1]
        seen = []
        try:
            seen.append(await loop.run_in_executor(None, peer_certificate, port))
            replace(renewed, cert)
            replace(renewed_key, key)
            seen.append(await loop.run_in_executor(None, peer_certificate, port))
            cert.write_text("not a certificate")  # mid-rotation, or broken: the previous one serves on
            seen.append(await loop.run_in_executor(None, peer_certificate, port))
            seen.append(await loop.run_in_executor(None, peer_certificate, port))
        finally:
            await receiver.stop()
        return seen

    with caplog.at_level(logging.INFO):
        seen = asyncio.run(main())
    assert seen == [first, der_of(renewed), der_of(renewed), der_of(renewed)]
    assert caplog.text.count("keeps its previous certificate") == 1  # said once, not per handshake


def test_a_port_the_receiver_cannot_bind_stops_the_operator_naming_it(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = DebugcapConfig(alert_webhook_port=port, alert_webhook_token_file=tmp_path / "token")
        with pytest.raises(kopf.PermanentError) as err:
            asyncio.run(alert_webhook.start_alert_receiver(memo=memo_with(config), logger=logging.getLogger("test")))
    assert str(err.value).startswith(f"DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT={port}: cannot serve the Alertmanager "
                                     "receiver on that port")
