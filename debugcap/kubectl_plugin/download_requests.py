"""Asking the operator for presigned URLs to a capture's bundles: a DebugDownload, made, read, deleted.

Taken by :func:`debugcap.kubectl_plugin.fetching.source_for` when the user has no S3 settings
(docs/captures.md). :class:`DownloadRequest` creates one DebugDownload for the capture (and
``--pod``) the first time a bundle needs a URL, polls it with GETs until the operator answers
(a watch would need ``watch`` rights, for an answer that takes a second), hands each bundle its
:class:`~debugcap.kubectl_plugin.fetching.PresignedSource`, and deletes the request when the
download is over: the operator would delete it at its expiry anyway, but the URLs need not be
readable in the namespace for longer than the download took.

Who may ask is the API server's decision, at admission (a ValidatingAdmissionPolicy requires the
right to get the DebugCapture): its refusal, RBAC's, a cluster without the resource and an operator
that does not answer are each one line saying what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from debugcap import errors, hints, resources
from debugcap.kubectl_plugin import fetching, terminal

if TYPE_CHECKING:
    from debugcap.kube.client import Kube

# How long the operator has to answer. It reads a capture and signs a URL per bundle locally, in
# well under a second; 30 s rides out a busy operator, and says soon enough that none is running.
WAIT_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.5
SWITCH: Final = "DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS (the chart value operator.presignedDownloads)"


def _path(namespace: str, name: str | None = None) -> str:
    from debugcap.kube.client import group_path

    return group_path(resources.GROUP, resources.VERSION, resources.DOWNLOADS, namespace, name)


def body(namespace: str, capture: str, pod: str | None) -> dict[str, Any]:
    spec = {"capture": capture, **({"pod": pod} if pod else {})}
    # generateName: one request per command, never in the way of another user's.
    return {"apiVersion": resources.API_VERSION, "kind": "DebugDownload",
            "metadata": {"generateName": f"{capture[:200]}-", "namespace": namespace}, "spec": spec}


def links_of(obj: dict[str, Any]) -> dict[str, fetching.Link]:
    """The URLs of a Ready DebugDownload, by pod."""
    status, name = obj.get("status") or {}, str(obj["metadata"]["name"])
    expires = datetime.fromisoformat(str(status["expiresAt"]).replace("Z", "+00:00"))
    return {str(u["pod"]): fetching.Link(pod=str(u["pod"]), key=str(u["key"]), url=str(u["url"]),
                                         sha256=str(u.get("sha256") or ""), size=int(u.get("sizeBytes") or 0),
                                         expires_at=expires, request=name)
            for u in status.get("urls") or []}


def _seconds_until(stamp: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float:
    """How long to wait for the API server's time ``stamp``: a second more for clock skew, at most
    15 (a policy is in force seconds after it is applied)."""
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 1.0
    return min(15.0, max(0.0, (at - now()).total_seconds()) + 1.0)


class DownloadRequest:
    """One DebugDownload for ``capture`` (its ``pod`` only, when given), made when a bundle first
    needs a URL; a context manager that deletes it on the way out."""

    def __init__(self, kube: Kube, namespace: str, capture: str, pod: str | None = None, *,
                 wait_seconds: float = WAIT_SECONDS, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.kube, self.namespace, self.capture, self.pod = kube, namespace, capture, pod
        self.wait_seconds = wait_seconds
        self._clock, self._sleep = clock, sleep
        self.name: str | None = None
        self._links: dict[str, fetching.Link] | None = None

    def __enter__(self) -> DownloadRequest:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def source_for(self, ref: fetching.BundleRef) -> fetching.Source:
        if self._links is None:
            self._links = self._ask()
        link = self._links.get(ref.pod)
        if link is None:
            raise errors.ConfigError(f"debugdownload/{self.name} has no URL for pod {ref.pod} (the capture changed "
                                     "meanwhile?); run the command again")
        return fetching.PresignedSource(link)

    def close(self) -> None:
        """Delete the request, if one was made; one that cannot be deleted goes at its expiry."""
        if self.name is None:
            return
        try:
            self.kube.delete(_path(self.namespace, self.name), missing_ok=True)
        except errors.KubeError as exc:
            terminal.echo(f"note: debugdownload/{self.name} was not deleted ({errors.shorten(str(exc), 160)}); the "
                       "operator deletes it when its URLs expire", err=True)
        self.name = None

    def _ask(self, again: bool = True) -> dict[str, fetching.Link]:
        self.name = self._create()
        deadline = self._clock() + self.wait_seconds
        while True:
            obj = self._read()
            status = obj.get("status") or {}
            if status.get("phase") == "Ready":
                return links_of(obj)
            if status.get("phase") == "Failed" and status.get("retryAfter") and again:
                # Made while the admission policy was (re)installed: a new request, once it is in force.
                self.close()
                self._sleep(_seconds_until(str(status["retryAfter"])))
                return self._ask(again=False)
            if status.get("phase") == "Failed":
                raise errors.ConfigError(f"the operator refused debugdownload/{self.name}: "
                                         f"{status.get('message') or 'no message'}")
            if self._clock() >= deadline:
                raise errors.ConfigError(
                    f"no answer from the debugcap operator to debugdownload/{self.name} within "
                    f"{self.wait_seconds:.0f}s: is it running, with presigned downloads on ({SWITCH})? "
                    f"Or download with your own S3 settings: set {fetching.S3_VARIABLES}")
            self._sleep(POLL_SECONDS)

    def _create(self) -> str:
        ns, capture = self.namespace, self.capture
        try:
            made = self.kube.post_json(_path(ns), body(ns, capture, self.pod))
        except errors.NotFoundError as exc:
            if "could not find the requested resource" not in exc.api_message:
                raise
            raise errors.ConfigError(
                "no S3 settings, and this cluster has no DebugDownload resource to ask the operator for a "
                f"presigned URL ({hints.install_crds()}); or set {fetching.S3_VARIABLES}") from exc
        except errors.ForbiddenError as exc:
            if exc.status != 403:
                raise
            if "ValidatingAdmissionPolicy" in exc.api_message:
                raise type(exc)(f'you may not get debugcaptures "{capture}" in namespace "{ns}", which a download '
                                "of its bundles needs (the admission policy of DebugDownloads refused it); "
                                f"{hints.ask_rights('get', 'debugcaptures.debugcap.io', ns)}",
                                status=exc.status, reason=exc.reason, api_message=exc.api_message) from exc
            raise type(exc)(f"no S3 settings, and you may not create debugdownloads in namespace \"{ns}\" to ask the "
                            "operator for a presigned URL; "
                            f"{hints.ask_rights('create', 'debugdownloads.debugcap.io', ns)} (and get, delete); "
                            f"or set {fetching.S3_VARIABLES}",
                            status=exc.status, reason=exc.reason, api_message=exc.api_message) from exc
        except errors.InvalidError as exc:
            raise type(exc)(f"the API server refused the DebugDownload of debugcapture \"{capture}\": "
                            f"{exc.api_message}", status=exc.status, reason=exc.reason,
                            api_message=exc.api_message) from exc
        return str(made["metadata"]["name"])

    def _read(self) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self.kube.get_json(_path(self.namespace, self.name))
        except errors.NotFoundError as exc:
            raise errors.ConfigError(f"debugdownload/{self.name} was deleted before the operator answered it; "
                                     "run the command again") from exc
        except errors.ForbiddenError as exc:
            if exc.status != 403:
                raise
            raise type(exc)(f"you may not get debugdownloads in namespace \"{self.namespace}\" to read the "
                            "operator's answer; "
                            f"{hints.ask_rights('get', 'debugdownloads.debugcap.io', self.namespace)}",
                            status=exc.status, reason=exc.reason, api_message=exc.api_message) from exc
        return found
