"""kopf handlers of DebugDownload: answer a request with presigned URLs, delete it when they expire.

Registered through :mod:`debugcap.operator.handlers`. A DebugDownload names a DebugCapture of its
namespace; its creator's right to read that capture was checked by the API server at admission
(the ValidatingAdmissionPolicy named by ``DEBUGCAP_OPERATOR_DOWNLOAD_POLICY``), so the operator
never needs to know who asked. It answers once, writing into the status a GET URL per stored
bundle, presigned for ``DEBUGCAP_OPERATOR_PRESIGNED_TTL``, and ``expiresAt``; a daemon deletes the
object at ``expiresAt``, and, since kopf starts daemons for every object it finds, an operator
that restarts deletes the ones its predecessor left. No URL outlives its request.

The URLs are credentials for their lifetime: they are written with a raw status patch (kopf's own
patches are logged at debug level) and never logged. What :mod:`~debugcap.operator.download_links`
decides is pure; this module reads, signs and writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import kopf

from debugcap import delivering, errors, resources
from debugcap.kube.client import Kube, group_path
from debugcap.operator import download_links, runtime
from debugcap.operator.captures import key_owner
from debugcap.operator.reporting import now, parse_stamp, stamp

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
DOWNLOADS: Final = resources.DOWNLOADS
ADMISSION: Final = ("admissionregistration.k8s.io", "v1")


def _enabled(memo: kopf.Memo, **_: Any) -> bool:
    rt = memo.get("runtime")
    return isinstance(rt, runtime.Runtime) and rt.config.presigned_downloads


def _expiring(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("expiresAt"))


@kopf.on.create(GROUP, VERSION, DOWNLOADS, when=_enabled)
async def answer_download(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo,
                          logger: kopf.Logger, **_: Any) -> None:
    if status.get("phase"):  # answered before a restart
        return
    rt = runtime.of(memo)
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    expires = download_links.expires_at(now(), rt.config.presigned_ttl)
    try:
        made = body.metadata.get("creationTimestamp")
        answer = await runtime.in_thread(sign, rt, namespace, dict(spec), expires,
                                         parse_stamp(str(made)) if made else None)
    except errors.KubeError as exc:  # the API server did not answer: a moment later it may
        raise kopf.TemporaryError(f"cannot answer yet: {exc}", delay=5) from exc
    await runtime.in_thread(write_status, rt.kube, namespace, name, answer)
    if answer["phase"] == "Ready":
        logger.info("signed %d URL(s) for debugcapture %s, valid until %s", len(answer["urls"]),
                    spec.get("capture"), answer["expiresAt"])
    else:
        logger.warning("refused: %s", answer["message"])


@kopf.daemon(GROUP, VERSION, DOWNLOADS, when=_expiring, cancellation_timeout=5.0)
async def expire_download(body: kopf.Body, status: kopf.Status, stopped: kopf.DaemonStopped, memo: kopf.Memo,
                          logger: kopf.Logger, **_: Any) -> None:
    """Delete the DebugDownload at ``status.expiresAt``, its URLs with it."""
    delay = download_links.seconds_left(status, datetime.now(UTC))
    if delay > 0:
        await stopped.wait(delay)
    if stopped:
        return
    logger.info("expired at %s; deleting it", status["expiresAt"])
    path = group_path(GROUP, VERSION, DOWNLOADS, str(body.metadata.namespace), str(body.metadata.name))
    await runtime.in_thread(runtime.of(memo).kube.delete, path, missing_ok=True)


def sign(rt: runtime.Runtime, namespace: str, spec: dict[str, Any], expires: datetime,
         created: datetime | None = None) -> dict[str, Any]:
    """The status answering ``spec`` (a request made at ``created``): Ready with the URLs, or Failed
    saying why and what to do. Blocking (API reads, and the store may be asked for its region once)."""
    try:
        request = download_links.parse_request(spec)
        since = check_policy(rt.kube, rt.config.download_policy)
        if created is not None and since is not None and created < since:
            # Made while the policy was missing or still loading (an operator that was down answers
            # it only now): nothing checked that its creator may read the capture.
            raise download_links.PolicyNotInForce(f"this request was made before the admission policy "
                                                  f'"{rt.config.download_policy}" checked requests (from '
                                                  f"{stamp(since)}); run the command again", since)
        capture = read_capture(rt.kube, namespace, request.capture)
        bundles = download_links.bundles_to_sign(capture, request, namespace)
        owner = key_owner(rt.store, kopf.Body(capture or {}))  # type: ignore[arg-type]  # a plain dict is a raw body
        foreign = [why for b in bundles if (why := delivering.key_refusal(b.key, owner, b.pod))]
        if foreign:  # a status patched to name another object of the bucket: never signed
            raise errors.ConfigError(f"not signed: {foreign[0]}; the capture's status names a key the operator "
                                     "did not store for it")
        download_links.check_stored_in(bundles, lambda key: rt.store.backend.uri(key=key),
                                       rt.store.backend.describe())
        ttl = download_links.signing_ttl(expires, datetime.now(UTC))
        urls = [delivering.download_url(rt.store, b.key, ttl, rt.config.presigned_endpoint or None)
                for b in bundles]
    except (errors.ConfigError, errors.StorageError, ValueError) as exc:
        # ValueError: what the S3 client says of an endpoint it cannot sign for; answered, not retried.
        return download_links.failed_status(str(exc), expires, getattr(exc, "since", None))
    return download_links.ready_status(bundles, urls, expires)


def check_policy(kube: Kube, name: str) -> datetime | None:
    """The admission policy that lets only readers of a capture ask for its URLs, and its binding
    (of the same name, denying), are installed as shipped; returns from when they check requests.
    Without them anyone allowed to create a DebugDownload could read any capture's bundles of the
    namespace: no URL is handed out then."""
    install = ("install it with the chart (operator.presignedDownloads) or: "
               "kubectl apply -f deploy/admission/debugcap-downloads.yaml")
    try:
        policy = kube.get_json(group_path(*ADMISSION, "validatingadmissionpolicies", None, name)) or {}
        binding = kube.get_json(group_path(*ADMISSION, "validatingadmissionpolicybindings", None, name)) or {}
    except errors.NotFoundError as exc:
        raise errors.ConfigError(f'the ValidatingAdmissionPolicy "{name}" or its binding is not installed, so '
                                 "nothing checks who may ask for download URLs and none are handed out; "
                                 f"{install}") from exc
    except errors.ForbiddenError as exc:
        raise errors.ConfigError(f'the operator may not read the ValidatingAdmissionPolicy "{name}" and its '
                                 "binding, which it checks before handing out download URLs; grant it get on them "
                                 "(the chart does)") from exc
    problems = download_links.policy_problems(policy, binding, name)
    if problems:
        raise errors.ConfigError(f'the ValidatingAdmissionPolicy "{name}" and its binding do not check every request '
                                 f"as shipped ({'; '.join(problems)}), so no download URL is handed out; {install}")
    return download_links.in_force_since(policy, binding)


def read_capture(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES, namespace, name))
    except errors.NotFoundError:
        return None
    return found


def write_status(kube: Kube, namespace: str, name: str, status: dict[str, Any]) -> None:
    try:
        kube.merge_patch(group_path(GROUP, VERSION, DOWNLOADS, namespace, name, "status"), {"status": status})
    except errors.NotFoundError:
        pass  # deleted before it was answered: nobody waits for the answer

