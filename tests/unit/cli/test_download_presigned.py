"""A download without S3 settings: a DebugDownload asks the operator for presigned URLs.

Cases: with no DEBUGCAP_S3_* the plugin creates one DebugDownload for the capture (generateName,
spec.capture and --pod), reads its answer, GETs each URL over plain HTTP, verifies the bundle as
the S3 path does (a tampered one is refused, exit 4), deletes the request and never prints a URL;
--presigned takes that way with S3 settings too, --s3 never, both together are a usage error.
Each way it can fail is one line: the admission policy's refusal, RBAC's, no such resource, no
answer in time (naming the operator's switch), the operator's refusal, an expired URL, a store
this machine cannot reach.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap import errors
from debugcap.kubectl_plugin import download_requests, fetching
from debugcap.kubectl_plugin.cli import cli

from .capture_fakes import CAPTURES, RoutedKube, capture, pod_entry, use, write_bundle

DOWNLOADS = "/apis/debugcap.io/v1alpha1/namespaces/team/debugdownloads"
NAME = "cap-1-x7k2p"
SIGNATURE = "X-Amz-Signature=deadbeef"


@dataclass
class Served:
    """Objects served over HTTP by path; ``status`` answers every GET when set (403, 404...)."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200
    body: bytes = b""
    gets: list[str] = field(default_factory=list)
    port: int = 0
    cut: int | None = None


@pytest.fixture
def store() -> Iterator[Served]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            served.gets.append(self.path)
            data = served.files.get(self.path.split("?", 1)[0])
            code = served.status if data is not None or served.status != 200 else 404
            self.send_response(code)
            if served.cut is not None:  # a length announced, fewer bytes sent: a connection cut short
                self.send_header("Content-Length", str(served.cut))
            self.end_headers()
            self.wfile.write(data if code == 200 and data is not None else served.body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


@dataclass
class Operator(RoutedKube):
    """The API server with an operator behind it: a DebugDownload posted is answered by ``answer``
    (a function of the posted object, the status to show), or never when it is None."""

    answer: Any = None
    refuse: Exception | None = None

    def post_json(self, path: str, body: Any) -> Any:
        self.requests.append(("POST", path, []))
        self.posted.append(body)
        if self.refuse is not None:
            raise self.refuse
        made = {**body, "metadata": {**body["metadata"], "name": NAME}}
        self.routes[f"{path}/{NAME}"] = {**made, "status": self.answer(made) if self.answer else {}}
        return made


def expires(minutes: float = 5) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready(port: int, obj: dict[str, Any], *, minutes: float = 5) -> Any:
    """The operator's answer: a URL on the local store for each stored bundle of ``obj``."""
    def answer(made: dict[str, Any]) -> dict[str, Any]:
        pods = [p for p in obj["status"]["pods"] if made["spec"].get("pod") in (None, p["name"])]
        return {"phase": "Ready", "expiresAt": expires(minutes),
                "urls": [{"pod": p["name"], "key": p["bundle"]["key"], "sha256": p["bundle"]["sha256"],
                          "sizeBytes": p["bundle"]["sizeBytes"],
                          "url": f"http://127.0.0.1:{port}/debugcap/{p['bundle']['key']}?{SIGNATURE}"}
                         for p in pods]}
    return answer


@pytest.fixture(autouse=True)
def no_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEBUGCAP_S3_ENDPOINT", "DEBUGCAP_S3_ACCESS_KEY", "DEBUGCAP_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def two_pods(tmp_path: Path, store: Served) -> dict[str, Any]:
    a, b = write_bundle(tmp_path / "s1", "api-1"), write_bundle(tmp_path / "s2", "api-2")
    obj = capture(pods=[pod_entry("api-1", a), pod_entry("api-2", b)])
    for p, written in zip(obj["status"]["pods"], (a, b), strict=True):
        store.files[f"/debugcap/{p['bundle']['key']}"] = written.path.read_bytes()
    return obj


def test_without_s3_settings_the_bundles_come_through_urls_the_operator_hands_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Served) -> None:
    obj = two_pods(tmp_path, store)
    kube = use(monkeypatch, Operator({f"{CAPTURES}/cap-1": obj}, answer=ready(store.port, obj)))
    res = CliRunner().invoke(cli, ["download", "cap-1", "-d", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    names = [Path(p["bundle"]["key"]).name for p in obj["status"]["pods"]]
    assert res.stdout.splitlines() == [str(tmp_path / "out" / n) for n in names]
    assert all((tmp_path / "out" / f"{n}.sha256").is_file() for n in names)
    assert f"pod api-1: downloaded from s3://debugcap/{obj['status']['pods'][0]['bundle']['key']} through a " \
           f"presigned URL of debugdownload/{NAME}, valid until " in res.stderr
    assert "matches the status; every file matches its manifest" in res.stderr
    [posted] = kube.posted
    assert posted == {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugDownload",
                      "metadata": {"generateName": "cap-1-", "namespace": "team"}, "spec": {"capture": "cap-1"}}
    assert kube.deleted == [f"{DOWNLOADS}/{NAME}"]  # the request goes when the download is over
    assert SIGNATURE not in res.output and len(store.gets) == 2


def test_one_pod_is_asked_for_alone_and_a_tampered_bundle_is_refused_as_from_s3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Served) -> None:
    obj = two_pods(tmp_path, store)
    kube = use(monkeypatch, Operator({f"{CAPTURES}/cap-1": obj}, answer=ready(store.port, obj)))
    key = f"/debugcap/{obj['status']['pods'][1]['bundle']['key']}"
    store.files[key] = store.files[key][:-64] + bytes(64)
    res = CliRunner().invoke(cli, ["download", "cap-1", "--pod", "api-2", "-d", str(tmp_path / "out")])
    assert res.exit_code == 4, res.output
    assert kube.posted[0]["spec"] == {"capture": "cap-1", "pod": "api-2"}
    assert "(pod api-2) is refused and was not kept" in res.stderr and not list((tmp_path / "out").glob("*.tar.gz"))
    assert kube.deleted == [f"{DOWNLOADS}/{NAME}"]


def test_presigned_is_taken_with_s3_settings_too_when_asked_and_s3_never_asks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Served) -> None:
    obj = two_pods(tmp_path, store)
    kube = use(monkeypatch, Operator({f"{CAPTURES}/cap-1": obj}, answer=ready(store.port, obj)))
    monkeypatch.setenv("DEBUGCAP_S3_ENDPOINT", "127.0.0.1:9")
    res = CliRunner().invoke(cli, ["download", "cap-1", "--presigned", "--pod", "api-1", "-d", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert len(kube.posted) == 1
    both = CliRunner().invoke(cli, ["download", "cap-1", "--presigned", "--s3"])
    assert both.exit_code == 2 and "--s3 and --presigned: pick one" in both.stderr
    monkeypatch.delenv("DEBUGCAP_S3_ENDPOINT")
    s3_only = CliRunner().invoke(cli, ["download", "cap-1", "--s3", "--pod", "api-2", "-d", str(tmp_path)])
    assert s3_only.exit_code == 1 and "no S3 settings" in s3_only.stderr and len(kube.posted) == 1


def forbidden(message: str) -> errors.ForbiddenError:
    return errors.ForbiddenError("forbidden", status=403, reason="Forbidden", api_message=message)


@pytest.mark.parametrize(("refusal", "words"), [
    (forbidden(f'debugdownloads.debugcap.io "{NAME}" is forbidden: ValidatingAdmissionPolicy \'debugcap-downloads\' '
               "with binding 'debugcap-downloads' denied request: you may not get debugcaptures cap-1"),
     'you may not get debugcaptures "cap-1" in namespace "team", which a download of its bundles needs (the '
     "admission policy of DebugDownloads refused it); ask for get rights on debugcaptures.debugcap.io"),
    (forbidden('debugdownloads.debugcap.io is forbidden: User "u" cannot create resource "debugdownloads"'),
     'no S3 settings, and you may not create debugdownloads in namespace "team" to ask the operator for a '
     "presigned URL; ask for create rights on debugdownloads.debugcap.io"),
    (errors.NotFoundError("nf", status=404, reason="NotFound", api_message="the server could not find the requested "
                                                                            "resource"),
     "no S3 settings, and this cluster has no DebugDownload resource"),
], ids=["admission-policy", "rbac", "no-crd"])
def test_a_refused_request_is_one_line_saying_what_to_ask_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: Exception, words: str) -> None:
    obj = capture(pods=[pod_entry("api-1", write_bundle(tmp_path / "s"))])
    use(monkeypatch, Operator({f"{CAPTURES}/cap-1": obj}, refuse=refusal))
    res = CliRunner().invoke(cli, ["download", "cap-1", "-d", str(tmp_path / "out")])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1, res.output
    assert words in res.stderr and "Traceback" not in res.stderr


def test_no_answer_in_time_names_the_operators_switch_and_the_request_is_deleted() -> None:
    kube = Operator()
    clock = iter(float(t) for t in range(100))
    slept: list[float] = []
    request = download_requests.DownloadRequest(kube, "team", "cap-1", wait_seconds=3,  # type: ignore[arg-type]
                                                 clock=lambda: next(clock), sleep=slept.append)
    ref = fetching.BundleRef("team", "cap-1", "api-1", "k", "s3://b/k", "a" * 64, 1)
    with pytest.raises(errors.ConfigError) as err, request:
        request.source_for(ref)
    assert str(err.value).startswith(f"no answer from the debugcap operator to debugdownload/{NAME} within 3s: is it "
                                     "running, with presigned downloads on (DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS (the "
                                     "chart value operator.presignedDownloads))? Or download with your own S3 "
                                     "settings: set DEBUGCAP_S3_ENDPOINT")
    assert slept == [download_requests.POLL_SECONDS] * 2 and kube.deleted == [f"{DOWNLOADS}/{NAME}"]


def test_the_answer_is_read_once_it_comes_and_a_refusal_is_the_operators_words() -> None:
    answers = iter([{}, {}, {"phase": "Failed", "message": "the bundle of pod api-1 has not reached S3"}])
    kube = Operator(answer=lambda made: {})
    kube.get_json = lambda path, query=(): {"metadata": {"name": NAME}, "status": next(answers)}  # type: ignore[method-assign]
    request = download_requests.DownloadRequest(kube, "team", "cap-1", sleep=lambda _s: None)  # type: ignore[arg-type]
    ref = fetching.BundleRef("team", "cap-1", "api-1", "k", "s3://b/k", "a" * 64, 1)
    with pytest.raises(errors.ConfigError) as err:
        request.source_for(ref)
    assert str(err.value) == f"the operator refused debugdownload/{NAME}: the bundle of pod api-1 has not reached S3"


def link(url: str, *, minutes: float = 5) -> fetching.Link:
    return fetching.Link(pod="api-1", key="k", url=url, sha256="a" * 64, size=1,
                         expires_at=datetime.now(UTC) + timedelta(minutes=minutes), request=NAME)


REF = fetching.BundleRef("team", "cap-1", "api-1", "k", "s3://b/k", "a" * 64, 1)


def test_an_expired_url_asks_to_run_again_and_an_unreachable_store_says_it_must_be_reachable(
        tmp_path: Path, store: Served) -> None:
    old = fetching.PresignedSource(link(f"http://127.0.0.1:{store.port}/debugcap/k?{SIGNATURE}", minutes=-1))
    with pytest.raises(errors.StorageError, match="expired at .*; run the command again to ask the operator for a new"):
        old.fetch(REF, tmp_path / "b")
    assert store.gets == []  # not even tried
    store.status, store.body = 403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    now = iter([datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=6)])
    lapsed = fetching.PresignedSource(link(f"http://127.0.0.1:{store.port}/debugcap/k?{SIGNATURE}"),
                                      now=lambda: next(now))
    with pytest.raises(errors.StorageError, match="expired at"):
        lapsed.fetch(REF, tmp_path / "b")
    refused = fetching.PresignedSource(link(f"http://127.0.0.1:{store.port}/debugcap/k?{SIGNATURE}"))
    with pytest.raises(errors.StorageError) as err:
        refused.fetch(REF, tmp_path / "b")
    assert f"http://127.0.0.1:{store.port} refused the presigned URL for pod api-1: HTTP 403 AccessDenied" \
        in str(err.value) and SIGNATURE not in str(err.value)
    away = fetching.PresignedSource(link(f"http://127.0.0.1:9/debugcap/k?{SIGNATURE}"))
    with pytest.raises(errors.StorageError) as err:
        away.fetch(REF, tmp_path / "b")
    assert str(err.value).startswith("cannot reach http://127.0.0.1:9, the S3 endpoint the operator's presigned URL "
                                     "names (")
    assert "it must be reachable from this machine" in str(err.value) and "operator.presignedEndpoint" in str(err.value)


def test_a_url_for_another_bundle_than_the_capture_lists_is_not_used(tmp_path: Path) -> None:
    other = fetching.PresignedSource(fetching.Link(pod="api-1", key="k", url="http://x/k", sha256="b" * 64, size=1,
                                                   expires_at=datetime.now(UTC) + timedelta(minutes=5), request=NAME))
    with pytest.raises(errors.StorageError, match="answered for another bundle"):
        other.fetch(REF, tmp_path / "b")


def test_a_transfer_cut_short_asks_to_run_again_and_is_not_called_tampering(tmp_path: Path, store: Served) -> None:
    store.files["/debugcap/k"] = b"0123456789"
    store.cut = 100000
    cut = fetching.PresignedSource(link(f"http://127.0.0.1:{store.port}/debugcap/k?{SIGNATURE}"))
    with pytest.raises(errors.StorageError, match=r"ended after 10 of 100000 bytes \(the connection was cut short\); "
                                                  "run the command again"):
        cut.fetch(REF, tmp_path / "b")


def test_a_destination_that_cannot_be_written_is_one_line_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Served) -> None:
    obj = two_pods(tmp_path, store)
    use(monkeypatch, Operator({f"{CAPTURES}/cap-1": obj}, answer=ready(store.port, obj)))
    name = fetching.bundle_refs(obj)[0].file_name
    (tmp_path / "out" / name).mkdir(parents=True)  # a directory where the bundle goes
    res = CliRunner().invoke(cli, ["download", "cap-1", "--pod", "api-1", "-d", str(tmp_path / "out")])
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert f"cannot write pod api-1's bundle into {tmp_path / 'out'}" in res.stderr and "download -d DIR" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [name]  # no .sha256, no work directory
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    res = CliRunner().invoke(cli, ["report", "cap-1", "--pod", "api-1"])
    assert res.exit_code == 1 and "Traceback" not in res.stderr and "XDG_CACHE_HOME" in res.stderr, res.stderr


def test_a_chunked_body_cut_short_is_one_line_too(tmp_path: Path) -> None:
    import http.client

    class Cut:
        headers: dict[str, str] = {}

        def __enter__(self) -> Cut:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def read(self, _: int) -> bytes:
            raise http.client.IncompleteRead(b"partial", 100)

    cut = fetching.PresignedSource(link(f"http://127.0.0.1:9/debugcap/k?{SIGNATURE}"),
                                   opener=lambda url, timeout: Cut())
    with pytest.raises(errors.StorageError, match=r"broke off \(IncompleteRead\); run the command again"):
        cut.fetch(REF, tmp_path / "b")


def test_a_request_made_before_the_policy_was_in_force_is_made_again_once_by_itself() -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    not_yet = {"phase": "Failed", "message": "this request was made before the admission policy", "retryAfter": later}
    ready_status = {"phase": "Ready", "expiresAt": expires(), "urls": [
        {"pod": "api-1", "key": "k", "sha256": "a" * 64, "sizeBytes": 1, "url": f"http://s3/k?{SIGNATURE}"}]}
    answers = iter([not_yet, ready_status])
    kube = Operator()
    kube.get_json = lambda path, query=(): {"metadata": {"name": NAME}, "status": next(answers)}  # type: ignore[method-assign]
    slept: list[float] = []
    request = download_requests.DownloadRequest(kube, "team", "cap-1", sleep=slept.append)  # type: ignore[arg-type]
    source = request.source_for(REF)
    assert isinstance(source, fetching.PresignedSource) and source.link.key == "k"
    assert len(kube.posted) == 2 and kube.deleted == [f"{DOWNLOADS}/{NAME}"]  # the first one deleted
    assert slept == [15.0]  # until retryAfter (and a second for clock skew), never longer than 15 s
    at_6s = datetime(2026, 12, 1, 10, 0, 6, tzinfo=UTC)
    assert download_requests._seconds_until("2026-12-01T10:00:10Z", lambda: at_6s) == 5.0  # noqa: SLF001
    # Refused so again: said, not asked a third time.
    answers = iter([not_yet, not_yet])
    kube2 = Operator()
    kube2.get_json = lambda path, query=(): {"metadata": {"name": NAME}, "status": next(answers)}  # type: ignore[method-assign]
    again = download_requests.DownloadRequest(kube2, "team", "cap-1", sleep=lambda _s: None)  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match="made before the admission policy"):
        again.source_for(REF)
    assert len(kube2.posted) == 2
