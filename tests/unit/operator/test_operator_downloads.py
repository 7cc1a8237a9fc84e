"""DebugDownload: which bundles a request gets URLs for, the words when it gets none, expiry, the
admission policy the operator insists on, and the status written (never a URL in a log).

Cases: a request for a capture signs each stored bundle (one pod's with spec.pod) with the
operator's S3 credentials, for the time left until expiresAt and at the endpoint users reach;
an unknown capture, an unknown pod, a capture still running, a bundle still in the spool, a
capture that stored nothing, a bundle of another store and a store in a directory are each a
Failed status naming the fix; no policy or binding (or one that only warns) refuses every
request; the daemon deletes an expired request at once and a live one at its expiresAt; the
settings' bounds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kopf
import pytest
import yaml
from operator_fakes import FakeKube, not_found

from debugcap import delivering, errors
from debugcap.operator import download_links, downloads, runtime
from debugcap.operator.config import DebugcapConfig
from debugcap.settings import S3Settings
from debugcap.storage import local, spool
from debugcap.storage.s3 import S3Backend

NS = "team"
CAPTURE = "/apis/debugcap.io/v1alpha1/namespaces/team/debugcaptures/cap-1"
POLICY = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/debugcap-downloads"
BINDING = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/debugcap-downloads"
DOWNLOAD = "/apis/debugcap.io/v1alpha1/namespaces/team/debugdownloads/cap-1-x7k2p"
KEY = "debugcap/testbed/team/{pod}/2026/12/01/team_{pod}_20261201T101500Z.tar.gz"
NOW = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)


def entry(pod: str, phase: str = "Completed", *, bucket: str = "debugcap", stored: bool = True) -> dict[str, Any]:
    key = KEY.format(pod=pod)
    if not stored:
        return {"name": pod, "phase": phase, "uploadKey": key}
    return {"name": pod, "phase": phase,
            "bundle": {"uri": f"s3://{bucket}/{key}", "key": key, "sha256": pod[-1] * 64, "sizeBytes": 1234}}


def capture(phase: str = "Completed", pods: list[dict[str, Any]] | None = None, message: str = "") -> dict[str, Any]:
    return {"metadata": {"name": "cap-1", "namespace": NS, "uid": "u-1"},
            "spec": {"target": {"selector": {"matchLabels": {"app": "api"}}}, "template": "go-heap"},
            "status": {"phase": phase, "message": message, "pods": [entry("api-1"), entry("api-2")] if pods is None
                       else pods}}


def shipped_policy(created: str = "2026-11-01T00:00:00Z") -> tuple[dict[str, Any], dict[str, Any]]:
    """deploy/admission's policy and binding, as the API server returns them (creationTimestamp,
    and the binding's matchResources defaulted to match everything)."""
    policy, binding = yaml.safe_load_all((Path(__file__).resolve().parents[3] / "deploy" / "admission" /
                                          "debugcap-downloads.yaml").read_text())
    for obj in (policy, binding):
        obj["metadata"]["creationTimestamp"] = created
    binding["spec"]["matchResources"] = {"namespaceSelector": {}, "objectSelector": {}, "matchPolicy": "Equivalent"}
    return policy, binding


def policy_answers(**extra: Any) -> dict[str, Any]:
    policy, binding = shipped_policy()
    return {POLICY: policy, BINDING: binding, **extra}


def s3_store() -> delivering.Store:
    settings = S3Settings(endpoint="minio.debugcap:9000", bucket="debugcap", access_key="AKIDEXAMPLE",
                          secret_key="wJalrXUtnFEMI", region="us-east-1", secure=False)
    return delivering.Store(S3Backend(settings), "debugcap", "testbed", spool.Spool(Path("/nonexistent")))


def runtime_with(kube: FakeKube, store: delivering.Store | None = None, **config: Any) -> runtime.Runtime:
    return runtime.Runtime(config=DebugcapConfig(**config), kube=kube, store=store or s3_store(),  # type: ignore[arg-type]
                           executor=None, pods=None)  # type: ignore[arg-type]


def expires() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)


# --- the pure parts ---------------------------------------------------------------------------------


def test_a_request_names_a_capture_and_maybe_a_pod() -> None:
    assert download_links.parse_request({"capture": "cap-1"}) == download_links.DownloadRequest("cap-1")
    assert download_links.parse_request({"capture": "cap-1", "pod": "api-2"}).pod == "api-2"
    with pytest.raises(errors.ConfigError, match="spec.capture is empty"):
        download_links.parse_request({})


def test_every_stored_bundle_or_the_one_pod_asked_for_is_signed() -> None:
    every = download_links.bundles_to_sign(capture(), download_links.DownloadRequest("cap-1"), NS)
    assert [(b.pod, b.key, b.size) for b in every] == [("api-1", KEY.format(pod="api-1"), 1234),
                                                      ("api-2", KEY.format(pod="api-2"), 1234)]
    # A pod that failed is left out of "every"; its bundle-less entry is not an error then.
    partial = capture("PartiallyFailed", [entry("api-1"), {"name": "api-2", "phase": "Failed"}])
    assert [b.pod for b in download_links.bundles_to_sign(partial, download_links.DownloadRequest("cap-1"), NS)] \
        == ["api-1"]
    [one] = download_links.bundles_to_sign(capture(), download_links.DownloadRequest("cap-1", "api-2"), NS)
    assert one.pod == "api-2" and one.sha256 == "2" * 64


@pytest.mark.parametrize(("obj", "pod", "words"), [
    (None, None, 'debugcapture "cap-1" not found in namespace "team"; list them with: kubectl debugcap get -n team'),
    (capture(), "api-9", 'debugcapture "cap-1" has no pod "api-9" (spec.pod); its pods: api-1, api-2'),
    (capture("Running", [{"name": "api-1", "phase": "Running", "uploadKey": "k"}]), None,
     'debugcapture "cap-1" has no bundle yet (it is Running); ask again once it has ended: '
     "kubectl debugcap logs cap-1 -n team -f"),
    (capture("Completed", [entry("api-1", stored=False)]), None,
     "the bundle of pod api-1 has not reached S3: it waits in the operator's spool until S3 answers again; "
     "ask again later"),
    (capture("Failed", [{"name": "api-1", "phase": "Failed"}], message="port 6060 closed"), None,
     'debugcapture "cap-1" stored no bundle (it is Failed: port 6060 closed); see: '
     "kubectl debugcap describe cap-1 -n team"),
], ids=["unknown-capture", "unknown-pod", "running", "spooled", "nothing-stored"])
def test_nothing_to_sign_says_why_and_what_to_do(obj: dict[str, Any] | None, pod: str | None, words: str) -> None:
    with pytest.raises(errors.ConfigError) as err:
        download_links.bundles_to_sign(obj, download_links.DownloadRequest("cap-1", pod), NS)
    assert str(err.value) == words


def test_a_bundle_of_another_store_is_not_signed_by_this_one() -> None:
    bundles = download_links.bundles_to_sign(capture(pods=[entry("api-1", bucket="old")]),
                                             download_links.DownloadRequest("cap-1"), NS)
    with pytest.raises(errors.ConfigError, match=r"is at s3://old/.*, not in the operator's store \(s3://debugcap"):
        download_links.check_stored_in(bundles, lambda key: f"s3://debugcap/{key}", "s3://debugcap at http://m:9000")


def test_urls_expire_with_their_request_never_after_it() -> None:
    end = download_links.expires_at(NOW, timedelta(minutes=5))
    assert end == NOW + timedelta(minutes=5)
    # Signed for what is left, in whole seconds down: the URL dies no later than the object.
    assert download_links.signing_ttl(end, NOW + timedelta(seconds=1, microseconds=300_000)) == timedelta(
        minutes=4, seconds=58)
    with pytest.raises(errors.ConfigError, match="expired at 2026-12-01T10:25:00Z before it was answered"):
        download_links.signing_ttl(end, end - timedelta(milliseconds=500))
    assert download_links.seconds_left({"expiresAt": "2026-12-01T10:25:00Z"}, NOW) == 300
    assert download_links.seconds_left({"expiresAt": "2026-12-01T10:15:00Z"}, NOW) == -300


def test_the_statuses_carry_the_urls_with_what_the_capture_says_of_each_bundle() -> None:
    bundles = download_links.bundles_to_sign(capture(), download_links.DownloadRequest("cap-1"), NS)
    ready = download_links.ready_status(bundles, ["https://s/1", "https://s/2"], NOW)
    assert ready == {"phase": "Ready", "expiresAt": "2026-12-01T10:20:00Z",
                     "message": "2 URL(s), for pod api-1, api-2, valid until 2026-12-01T10:20:00Z",
                     "urls": [{"pod": "api-1", "key": KEY.format(pod="api-1"), "url": "https://s/1",
                               "sha256": "1" * 64, "sizeBytes": 1234},
                              {"pod": "api-2", "key": KEY.format(pod="api-2"), "url": "https://s/2",
                               "sha256": "2" * 64, "sizeBytes": 1234}]}
    # A refusal expires too, so the operator deletes it as well.
    assert download_links.failed_status("no", NOW) == {"phase": "Failed", "message": "no",
                                                       "expiresAt": "2026-12-01T10:20:00Z"}


# --- signing, with the policy check -----------------------------------------------------------------


def test_a_request_is_answered_with_urls_signed_for_the_time_left_at_the_endpoint_users_reach() -> None:
    kube = FakeKube(policy_answers(**{CAPTURE: capture()}))
    rt = runtime_with(kube, presigned_endpoint="https://s3.example.com")
    end = expires()
    answer = downloads.sign(rt, NS, {"capture": "cap-1", "pod": "api-1"}, end)
    assert answer["phase"] == "Ready" and answer["expiresAt"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    [url] = answer["urls"]
    parts = urlsplit(url["url"])
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "s3.example.com",
                                                        f"/debugcap/{KEY.format(pod='api-1')}")
    assert 298 <= int(query["X-Amz-Expires"][0]) <= 300 and query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert "wJalrXUtnFEMI" not in url["url"]
    # Without a public endpoint, the operator's own.
    answer = downloads.sign(runtime_with(kube), NS, {"capture": "cap-1"}, end)
    assert [urlsplit(u["url"]).netloc for u in answer["urls"]] == ["minio.debugcap:9000"] * 2


@pytest.mark.parametrize(("answers", "words"), [
    ({POLICY: not_found("debugcap-downloads")}, 'the ValidatingAdmissionPolicy "debugcap-downloads" or its binding '
                                                "is not installed"),
    ({BINDING: not_found("debugcap-downloads")}, "is not installed, so nothing checks who may ask"),
    ({POLICY: errors.ForbiddenError("no", status=403, reason="Forbidden")}, "the operator may not read"),
    ({BINDING: {"spec": {"policyName": "debugcap-downloads", "validationActions": ["Warn"]}}},
     "the binding does not deny with the policy"),
], ids=["no-policy", "no-binding", "forbidden", "warn-only"])
def test_without_the_admission_policy_no_url_is_handed_out(answers: dict[str, Any], words: str) -> None:
    kube = FakeKube({**policy_answers(**{CAPTURE: capture()}), **answers})
    answer = downloads.sign(runtime_with(kube), NS, {"capture": "cap-1"}, expires())
    assert answer["phase"] == "Failed" and words in answer["message"] and "urls" not in answer
    assert ("GET", CAPTURE, []) not in kube.calls  # the capture is not even read


def test_a_store_in_a_directory_signs_nothing(tmp_path: Path) -> None:
    store = delivering.Store(local.LocalBackend(tmp_path), "debugcap", "testbed", spool.Spool(tmp_path / "spool"))
    key = KEY.format(pod="api-1")
    pods = [{"name": "api-1", "phase": "Completed",
             "bundle": {"uri": store.backend.uri(key=key), "key": key, "sha256": "1" * 64, "sizeBytes": 1}}]
    kube = FakeKube(policy_answers(**{CAPTURE: capture(pods=pods)}))
    answer = downloads.sign(runtime_with(kube, store), NS, {"capture": "cap-1"}, expires())
    assert answer["phase"] == "Failed"
    assert "not in S3, and only S3 hands out presigned URLs" in answer["message"]
    assert "DEBUGCAP_S3_ENDPOINT" in answer["message"]


def test_an_unknown_capture_is_a_failed_request() -> None:
    kube = FakeKube(policy_answers(**{CAPTURE: not_found("cap-1")}))
    answer = downloads.sign(runtime_with(kube), NS, {"capture": "cap-1"}, expires())
    assert answer["phase"] == "Failed" and answer["message"].startswith('debugcapture "cap-1" not found')


def test_the_answer_goes_to_the_status_subresource_and_a_deleted_request_is_no_error() -> None:
    kube = FakeKube({f"PATCH {DOWNLOAD}/status": lambda body: body})
    downloads.write_status(kube, NS, "cap-1-x7k2p", {"phase": "Failed"})  # type: ignore[arg-type]
    assert kube.calls == [("PATCH", f"{DOWNLOAD}/status", {"status": {"phase": "Failed"}})]
    gone = FakeKube({f"PATCH {DOWNLOAD}/status": not_found("cap-1-x7k2p")})
    downloads.write_status(gone, NS, "cap-1-x7k2p", {"phase": "Failed"})  # type: ignore[arg-type]


# --- the handlers -------------------------------------------------------------------------------------


class Stopped:
    """A kopf.DaemonStopped that is never set: wait() records how long it was asked to wait."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    def __bool__(self) -> bool:
        return False

    async def wait(self, delay: float) -> None:
        self.waited.append(delay)


def body(status: dict[str, Any]) -> kopf.Body:
    return kopf.Body({"metadata": {"name": "cap-1-x7k2p", "namespace": NS}, "status": status})


def test_an_expired_request_is_deleted_at_once_and_a_live_one_at_its_expiry() -> None:
    kube = FakeKube({f"DELETE {DOWNLOAD}": None})
    memo = kopf.Memo(runtime=runtime_with(kube))
    logger = logging.getLogger("test")
    past = {"expiresAt": "2020-01-01T00:00:00Z", "phase": "Ready"}
    stopped = Stopped()
    asyncio.run(downloads.expire_download(body=body(past), status=past, stopped=stopped,  # type: ignore[arg-type]
                                          memo=memo, logger=logger))
    assert stopped.waited == [] and kube.calls == [("DELETE", DOWNLOAD, None)]
    soon = {"expiresAt": (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    asyncio.run(downloads.expire_download(body=body(soon), status=soon, stopped=stopped,  # type: ignore[arg-type]
                                          memo=memo, logger=logger))
    assert len(stopped.waited) == 1 and 290 < stopped.waited[0] <= 300 and len(kube.calls) == 2


def test_the_switch_turns_answering_off_but_never_the_clean_up() -> None:
    assert downloads._enabled(memo=kopf.Memo(runtime=runtime_with(FakeKube())))  # noqa: SLF001
    assert not downloads._enabled(memo=kopf.Memo(runtime=runtime_with(FakeKube(), presigned_downloads=False)))  # noqa: SLF001
    assert not downloads._enabled(memo=kopf.Memo())  # noqa: SLF001 - not started yet
    assert downloads._expiring(status={"expiresAt": "2026-12-01T10:20:00Z"})  # noqa: SLF001


def test_the_settings_default_to_on_for_five_minutes_and_bound_the_lifetime() -> None:
    default = DebugcapConfig.from_env({})
    assert (default.presigned_downloads, default.presigned_ttl, default.presigned_endpoint,
            default.download_policy) == (True, timedelta(minutes=5), "", "debugcap-downloads")
    set_ = DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS": "false",
                                    "DEBUGCAP_OPERATOR_PRESIGNED_TTL": "1h",
                                    "DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT": "https://s3.example.com",
                                    "DEBUGCAP_OPERATOR_DOWNLOAD_POLICY": "dc-downloads"})
    assert (set_.presigned_downloads, set_.presigned_ttl, set_.presigned_endpoint, set_.download_policy) == (
        False, timedelta(hours=1), "https://s3.example.com", "dc-downloads")
    for too in ("2h", "5s"):
        with pytest.raises(errors.ConfigError, match="must be between 10s and 1h"):
            DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_PRESIGNED_TTL": too})
    with pytest.raises(errors.ConfigError, match="DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS='maybe' is not true or false"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_PRESIGNED_DOWNLOADS": "maybe"})


def weakened(change: str) -> tuple[dict[str, Any], dict[str, Any]]:
    policy, binding = shipped_policy()
    if change == "expression":
        policy["spec"]["validations"][0]["expression"] = "true"
    elif change == "ignore":
        policy["spec"]["failurePolicy"] = "Ignore"
    elif change == "conditions":
        policy["spec"]["matchConditions"] = [{"name": "some", "expression": "request.namespace == 'a'"}]
    elif change == "update-only":
        policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] = ["UPDATE"]
    elif change == "namespaces":
        binding["spec"]["matchResources"]["namespaceSelector"] = {"matchLabels": {"team": "a"}}
    elif change == "cluster-scope":
        policy["spec"]["matchConstraints"]["resourceRules"][0]["scope"] = "Cluster"
    elif change == "resource-names":
        policy["spec"]["matchConstraints"]["resourceRules"][0]["resourceNames"] = ["x"]
    elif change == "one-version-exact":
        policy["spec"]["matchConstraints"]["matchPolicy"] = "Exact"
        policy["spec"]["matchConstraints"]["resourceRules"][0]["apiVersions"] = ["v1alpha1"]
    elif change == "params":
        policy["spec"]["paramKind"] = {"apiVersion": "v1", "kind": "ConfigMap"}
        binding["spec"]["paramRef"] = {"name": "p", "parameterNotFoundAction": "Allow"}
    return policy, binding


def test_the_shipped_policy_passes_and_each_weakening_is_named() -> None:
    assert download_links.policy_problems(*shipped_policy(), "debugcap-downloads") == []
    defaulted, binding = shipped_policy()  # with what the API server adds to the chart's policy
    defaulted["spec"]["matchConstraints"].update({"matchPolicy": "Equivalent", "namespaceSelector": {},
                                                  "objectSelector": {}})
    defaulted["spec"]["matchConstraints"]["resourceRules"][0]["scope"] = "*"
    assert download_links.policy_problems(defaulted, binding, "debugcap-downloads") == []
    for change, words in [("expression", "does not make the check"), ("ignore", "failurePolicy Ignore"),
                          ("conditions", "matchConditions"), ("update-only", "skips some creations"),
                          ("namespaces", "some namespaces or objects only"),
                          ("cluster-scope", "skips some creations"), ("resource-names", "skips some creations"),
                          ("one-version-exact", "skips some creations"), ("params", "takes parameters")]:
        problems = download_links.policy_problems(*weakened(change), "debugcap-downloads")
        assert len(problems) == 1 and words in problems[0], (change, problems)
    policy, binding = weakened("expression")
    kube = FakeKube({POLICY: policy, BINDING: binding, CAPTURE: capture()})
    answer = downloads.sign(runtime_with(kube), NS, {"capture": "cap-1"}, expires())
    assert answer["phase"] == "Failed" and "do not check every request as shipped" in answer["message"]
    assert ("GET", CAPTURE, []) not in kube.calls


def test_a_request_made_before_the_policy_was_in_force_is_refused() -> None:
    policy, binding = shipped_policy("2026-12-01T10:00:00Z")
    kube = FakeKube({POLICY: policy, BINDING: binding, CAPTURE: capture()})
    rt = runtime_with(kube)
    # The API server loads a new policy within moments; until 10 s after it, a request may have passed unchecked.
    early = downloads.sign(rt, NS, {"capture": "cap-1"}, expires(), datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC))
    assert early["phase"] == "Failed" and "made before the admission policy" in early["message"]
    assert early["retryAfter"] == "2026-12-01T10:00:10Z"  # the plugin asks again from then, by itself
    assert "run the command again" in early["message"] and "urls" not in early
    later = downloads.sign(rt, NS, {"capture": "cap-1"}, expires(), datetime(2026, 12, 1, 10, 0, 10, tzinfo=UTC))
    assert later["phase"] == "Ready"
    # Weakened and fixed again by an apply: created long ago, but changed at 11:00 (its managedFields).
    binding["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Apply", "time": "2026-12-01T11:00:00Z"},
        {"manager": "kube-apiserver", "operation": "Update", "subresource": "status", "time": "2026-12-01T12:00:00Z"}]
    unchecked = downloads.sign(rt, NS, {"capture": "cap-1"}, expires(), datetime(2026, 12, 1, 10, 30, tzinfo=UTC))
    assert unchecked["phase"] == "Failed" and "from 2026-12-01T11:00:10Z" in unchecked["message"]
    after = downloads.sign(rt, NS, {"capture": "cap-1"}, expires(), datetime(2026, 12, 1, 11, 1, tzinfo=UTC))
    assert after["phase"] == "Ready"  # a status write (the API server's type checking) changes nothing


@pytest.mark.parametrize("bad", ["http://[::1", "s3.example.com:99999", "ftp://s3.example.com"])
def test_a_presigned_endpoint_that_cannot_be_signed_for_stops_the_operator_at_start(bad: str) -> None:
    with pytest.raises(errors.ConfigError, match=r"DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT=.* is not an S3 endpoint"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_PRESIGNED_ENDPOINT": bad})


@pytest.mark.parametrize("key", ["backups/prod/db.dump", KEY.format(pod="api-1").replace("/team/", "/other/"),
                                 "debugcap/testbed/team/api-1/../../other/x.tar.gz"])
def test_a_key_the_operator_did_not_store_for_the_capture_is_never_signed(key: str) -> None:
    pods = [{"name": "api-1", "phase": "Completed",
             "bundle": {"uri": f"s3://debugcap/{key}", "key": key, "sha256": "1" * 64, "sizeBytes": 1}}]
    kube = FakeKube(policy_answers(**{CAPTURE: capture(pods=pods)}))
    answer = downloads.sign(runtime_with(kube), NS, {"capture": "cap-1"}, expires())
    assert answer["phase"] == "Failed" and "urls" not in answer
    assert answer["message"].startswith("not signed: key ") and "did not store for it" in answer["message"]
