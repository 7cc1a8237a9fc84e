"""The Alertmanager webhook receiver: ``POST /alerts`` fires the DebugTriggers an alert names.

Off unless ``DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT`` is set (docs/alertmanager.md). The kopf
start-up handler :func:`start_alert_receiver` serves it once :func:`debugcap.operator.startup.configure` has made
the runtime; :func:`stop_alert_receiver` closes it at clean-up. The server itself (:class:`AlertReceiver`,
:func:`make_app`) takes its dispatch function as an argument, so unit tests run it with a fake.

A request is answered, in this order:

- 401 (``WWW-Authenticate: Bearer``) without ``Authorization: Bearer <token>`` naming the token
  of the token file (compared in constant time; never logged);
- 400 for a ``Content-Encoding`` other than identity, before anything is read: Alertmanager
  sends plain JSON, and the server never decompresses (``auto_decompress=False``), so no
  compressed body can grow past :data:`MAX_BODY` in memory;
- 413 for a body over :data:`MAX_BODY` (by its Content-Length before reading, or while reading:
  no more than that is ever held), or with more than :data:`~debugcap.operator.alerts.MAX_ALERTS`
  alerts (Alertmanager's ``max_alerts``);
- 400 ``{"error": ...}`` for a body that cannot be read (a broken chunked encoding), is not a
  version 4 payload, or whose firing alerts all fail to name a pod (:mod:`debugcap.operator.alerts`);
- 503 when an alert met a temporary failure (outcome ``error``: the API server did not answer),
  even if others fired: Alertmanager sends the whole notification again, and the trigger's
  cooldown turns the repeats of those that fired into ``suppressed``;
- 200 when at least one alert fired or was suppressed by a DebugTrigger's limit (or none was
  firing): Alertmanager must not send it again;
- 422 when every alert was refused (no DebugTrigger in that namespace watches that alert name,
  or the pod is not its target);
- 500 (503 while the operator stops) when dispatching failed; Alertmanager retries those.

A client that disconnects before its body is read gets nothing and costs one debug log line.
Each request adds one to ``debugcap_alert_webhook_requests_total{outcome}``.

The TLS certificate and key are read again, for new handshakes, once either file changed (a
Secret updated by cert-manager, say): :class:`ReloadingTLS`. A port the receiver cannot bind
stops the operator at start-up with a message naming the port and its variable.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import kopf
from aiohttp import web
from prometheus_client import Counter

from debugcap.errors import ConfigError

# startup is imported for its registration: kopf runs start-up handlers in the order they were
# registered, which is import order, and startup.configure (which makes the runtime) must run
# before start_alert_receiver whatever order handlers.py imports the modules in.
from debugcap.operator import runtime, startup, triggers  # noqa: F401
from debugcap.operator.alerts import (
    AlertPayloadError,
    AlertRef,
    InvalidAlert,
    Notification,
    TooManyAlerts,
    read_payload,
    show,
)
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.triggers import AlertOutcome

MAX_BODY: Final = 1 << 20  # 1 MiB: Alertmanager's max_alerts keeps a real payload far below it
PATH: Final = "/alerts"
TOKEN_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE"
PORT_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT"
TLS_ENV: Final = "DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TLS_CERT_FILE and _TLS_KEY_FILE"
OUTCOMES: Final = ("fired", "suppressed", "refused", "ignored", "unauthorized", "too_large", "malformed", "error")
REQUESTS = Counter("debugcap_alert_webhook_requests_total", "Requests to the Alertmanager webhook receiver, "
                   "by outcome: fired, suppressed, refused (every alert), ignored (none firing), unauthorized, "
                   "too_large, malformed, error.", ["outcome"])
for _outcome in OUTCOMES:
    REQUESTS.labels(_outcome)  # every series present from the start, at 0

Dispatch = Callable[[Sequence[AlertRef]], Awaitable[list[AlertOutcome]]]
log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Dispatch cannot run now (the operator is starting or stopping): 503, Alertmanager retries."""


@dataclass(frozen=True)
class ReceiverSettings:
    """What the server needs, read from :class:`DebugcapConfig` by :func:`settings_from`."""

    port: int
    token: str
    namespace_label: str = "namespace"
    pod_label: str = "pod"
    ssl_context: ssl.SSLContext | None = None
    host: str | None = None  # None: every interface (Alertmanager reaches the pod through a Service)

    def __repr__(self) -> str:  # never the token
        return f"ReceiverSettings(port={self.port}, tls={self.ssl_context is not None}, host={self.host!r})"


def settings_from(config: DebugcapConfig) -> ReceiverSettings:
    """The receiver's settings; :class:`ConfigError` naming the variable for a missing or empty
    token file, or a certificate and key that do not load."""
    return ReceiverSettings(port=config.alert_webhook_port, token=read_token(config.alert_webhook_token_file),
                            namespace_label=config.alert_namespace_label, pod_label=config.alert_pod_label,
                            ssl_context=tls_context(config.alert_webhook_tls_cert_file,
                                                    config.alert_webhook_tls_key_file))


def read_token(path: Path | None) -> str:
    if path is None:
        raise ConfigError(f"{TOKEN_ENV} is not set: the Alertmanager receiver accepts only requests bearing "
                          "the token in that file (mount it from a Secret)")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{TOKEN_ENV}={path}: cannot read the token ({err.__class__.__name__}: "
                          f"{getattr(err, 'strerror', None) or err})") from None
    if not token:
        raise ConfigError(f"{TOKEN_ENV}={path} is empty: put the bearer token Alertmanager sends in it")
    return token


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context, which reads the files again when they change (:class:`ReloadingTLS`);
    None without them. :class:`ConfigError` naming the variables when they do not load."""
    if cert is None or key is None:
        return None
    return ReloadingTLS(cert, key).context


def _load_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"{TLS_ENV} ({cert}, {key}): cannot load the certificate and key: {err}") from None
    return context


class ReloadingTLS:
    """The receiver's certificate and key, read again once either file changed.

    Certificates are rotated under a running operator (cert-manager renews a Secret, the kubelet
    swaps the mounted files): the files' modification time, size and inode are looked at when a
    client's hello arrives (``sni_callback``, called with or without SNI), and a change loads
    them into a new context that this and later handshakes use; connections already open keep
    theirs. Files caught mid-rotation (a key that does not match the certificate yet) do not
    load: the previous pair serves on, and the next handshake tries again. Two ``stat`` calls a
    handshake is all it costs.
    """

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self._seen = self._stamp()
        self._failed: object = None  # the stamp of files that did not load: said once, not per handshake
        self.context = self.current = _load_tls(cert, key)  # the server's context; and the one handshakes use
        self.context.sni_callback = self._hello

    def _stamp(self) -> object:
        try:
            return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in (os.stat(self.cert), os.stat(self.key)))
        except OSError:  # between a Secret's old files and its new ones: look again next time
            return None

    def refresh(self) -> None:
        """Load the files again when they changed since last loaded."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen or stamp == self._failed:
            return
        try:
            loaded = _load_tls(self.cert, self.key)
        except ConfigError as err:
            self._failed = stamp
            log.warning("the Alertmanager receiver keeps its previous certificate: %s", err)
            return
        self.current, self._seen = loaded, stamp
        log.info("the Alertmanager receiver loaded its certificate again (%s changed)", self.cert)

    def _hello(self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None,
               _context: ssl.SSLContext) -> None:
        self.refresh()
        if self.current is not self.context:
            connection.context = self.current


def make_app(settings: ReceiverSettings, dispatch: Dispatch) -> web.Application:
    """The aiohttp application: ``POST /alerts``, each request counted under its outcome."""

    async def alerts(request: web.Request) -> web.Response:
        try:
            response, outcome = await _receive(settings, dispatch, request)
        except web.HTTPRequestEntityTooLarge:  # a body without Content-Length, past MAX_BODY
            response, outcome = _too_large(), "too_large"
        except ConnectionResetError:  # the client left mid-body (aiohttp's "Connection lost"): nobody to tell
            log.debug("a client of the Alertmanager receiver disconnected before sending its whole body")
            response, outcome = _error(400, "the connection closed before the whole body came"), "malformed"
        except web.RequestPayloadError as err:  # a broken chunked encoding, a body short of its length
            response, outcome = _error(400, f"the body cannot be read: {show(str(err))}"), "malformed"
        except Exception:
            log.exception("the Alertmanager receiver failed on a request")
            response, outcome = _error(500, "the receiver failed; the operator's log says why"), "error"
        REQUESTS.labels(outcome).inc()
        return response

    app = web.Application(client_max_size=MAX_BODY, middlewares=[_count_others])
    app.router.add_post(PATH, alerts)
    return app


@web.middleware
async def _count_others(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:  # 404, 405: not a POST to /alerts
        REQUESTS.labels("malformed").inc()
        raise


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _too_large() -> web.Response:
    return _error(413, f"the body is over {MAX_BODY >> 20} MiB; lower max_alerts in the Alertmanager receiver")


async def _receive(settings: ReceiverSettings, dispatch: Dispatch, request: web.Request
                   ) -> tuple[web.Response, str]:
    if not _authorized(request, settings.token):
        return _error(401, "missing or wrong bearer token (http_config.authorization in the Alertmanager "
                           "receiver)", headers={"WWW-Authenticate": "Bearer"}), "unauthorized"
    encoding = request.headers.get("Content-Encoding", "").strip()
    if encoding.lower() not in ("", "identity"):
        return _error(400, f"Content-Encoding {show(encoding)} is not accepted: Alertmanager sends its JSON "
                           "uncompressed"), "malformed"
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _too_large(), "too_large"
    body = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
    try:
        notification = read_payload(body, namespace_label=settings.namespace_label, pod_label=settings.pod_label)
    except TooManyAlerts as err:
        return _error(413, str(err)), "too_large"
    except AlertPayloadError as err:
        return _error(400, str(err)), "malformed"
    if notification.invalid and not notification.firing:
        return web.json_response({"error": notification.invalid[0].message,
                                  "alerts": [_invalid_entry(i) for i in notification.invalid]},
                                 status=400), "malformed"
    try:
        outcomes = await dispatch(notification.firing) if notification.firing else []
    except Unavailable as err:
        return _error(503, str(err)), "error"
    except Exception:
        log.exception("firing DebugTriggers for %d alerts failed", len(notification.firing))
        return _error(500, "the operator failed to act on the alerts; its log says why"), "error"
    return _answer(notification, outcomes)


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def _answer(notification: Notification, outcomes: list[AlertOutcome]) -> tuple[web.Response, str]:
    entries = [{"alertname": o.alertname, "namespace": o.namespace, "pod": o.pod, "outcome": o.outcome,
                "message": o.message, "captures": list(o.captures)} for o in outcomes]
    entries += [_invalid_entry(i) for i in notification.invalid]
    counts = {kind: sum(1 for e in entries if e["outcome"] == kind)
              for kind in ("fired", "suppressed", "refused", "error")}
    summary = [f"{n} {kind}" for kind, n in counts.items() if n]
    if notification.resolved:
        summary.append(f"{notification.resolved} resolved alert{'s' * (notification.resolved != 1)} ignored")
    body: dict[str, Any] = {"message": "; ".join(summary) or "no firing alert", **counts,
                            "resolved": notification.resolved, "alerts": entries}
    # An error (the API server did not answer) must be tried again, and Alertmanager retries only a
    # whole notification on a 5xx: those that fired meanwhile come back suppressed by their cooldown.
    outcome = ("error" if counts["error"] else "fired" if counts["fired"] else "suppressed" if counts["suppressed"]
               else "ignored" if not entries else "refused")
    status = {"error": 503, "refused": 422}.get(outcome, 200)
    return web.json_response(body, status=status), outcome


def _invalid_entry(invalid: InvalidAlert) -> dict[str, Any]:
    return {"alertname": invalid.alertname, "namespace": "", "pod": "", "outcome": "refused",
            "message": invalid.message, "captures": []}


class AlertReceiver:
    """The receiver on its port: :meth:`start`, :meth:`stop`, :attr:`addresses` (for port 0)."""

    def __init__(self, settings: ReceiverSettings, dispatch: Dispatch) -> None:
        self.settings = settings
        # auto_decompress off: Alertmanager never compresses, and a decompressed body is not bound
        # by client_max_size as it arrives (a small gzip body inflates to gigabytes).
        self._runner = web.AppRunner(make_app(settings, dispatch), access_log=None, handle_signals=False,
                                     auto_decompress=False)

    async def start(self) -> None:
        """Serve on the port; :class:`ConfigError` naming the port and its variable when it cannot
        be bound (in use by another container of the pod, or a privileged port)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port,
                           ssl_context=self.settings.ssl_context)
        try:
            await site.start()
        except (OSError, OverflowError) as err:
            await self._runner.cleanup()
            raise ConfigError(f"{PORT_ENV}={self.settings.port}: cannot serve the Alertmanager receiver on that port "
                              f"({getattr(err, 'strerror', None) or err}); free it or choose another") from None
        except BaseException:
            await self._runner.cleanup()
            raise

    @property
    def addresses(self) -> list[Any]:
        return list(self._runner.addresses)

    async def stop(self) -> None:
        await self._runner.cleanup()


# ---------------------------------------------------------------- kopf handlers (after configure)


@kopf.on.startup()
async def start_alert_receiver(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config = runtime.of(memo).config
    if not config.alert_webhook_port:
        return
    try:
        settings = settings_from(config)
    except ConfigError as err:
        raise kopf.PermanentError(str(err)) from None
    receiver = AlertReceiver(settings, functools.partial(_fire, memo))
    try:
        # Permanent: kopf retries a start-up handler forever, and while it does no watcher runs. A
        # port that cannot be bound is a configuration to fix; the operator stops, saying which.
        await receiver.start()
    except ConfigError as err:
        raise kopf.PermanentError(str(err)) from None
    memo.alert_receiver = receiver
    logger.info("Alertmanager receiver on port %d (%s), POST %s", settings.port,
                "HTTPS" if settings.ssl_context else "HTTP", PATH)


async def _fire(memo: kopf.Memo, refs: Sequence[AlertRef]) -> list[AlertOutcome]:
    rt = memo.get("runtime")  # gone once the clean-up handler has closed it
    if not isinstance(rt, runtime.Runtime):
        raise Unavailable("the operator is starting or stopping; Alertmanager will send the alerts again")
    return await triggers.fire_for_alerts(rt, refs)


@kopf.on.cleanup()
async def stop_alert_receiver(memo: kopf.Memo, **_: Any) -> None:
    receiver = memo.pop("alert_receiver", None)
    if isinstance(receiver, AlertReceiver):
        await receiver.stop()
