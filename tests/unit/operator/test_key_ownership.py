"""Which S3 keys a DebugCapture owns: the operator deletes and adopts only those.

Cases: :func:`delivering.key_refusal` accepts the capture's own keys (with its ``<name>_<uid>``
directory, and the older layout for its namespace and the pod it targets) and refuses, with the
key and why: ``..``, another namespace, another cluster, a namespace that only starts like its own
(``team-evil`` vs ``team``), URL-encoded and absolute keys, empty and non-string values, another
capture's directory, a pod other than the entry's or the spec's, a bundle name that disagrees with
its prefix, a sidecar, an object outside the layout. The operator's new keys carry the capture's
directory. The delete handler deletes the capture's own bundle and leaves a forged status's keys
(another namespace's bundle, ``backups/prod/db.dump``) in place with a Warning Event naming each;
an orphaned capture's forged ``uploadKey`` is neither adopted nor deleted (even when it is not a
bundle) and its pod's Event says why.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import operator_fakes
import pytest

from debugcap import delivering
from debugcap.operator import captures, capturing, recovery, runtime
from debugcap.operator.config import DebugcapConfig
from debugcap.storage import base, local, spool

UID = "0b9c6f1e-7d1a-4c55-9a39-2f8e2b7c1d10"
OTHER_UID = "5e0f3a2b-1111-4c55-9a39-2f8e2b7c1d10"
CAPTURE = delivering.Capture("cap", UID)
OWNER = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE)
BUNDLE = "team_api-1_20261201T101500Z.tar.gz"
OWN = f"debugcap/testbed/team/api-1/2026/12/01/cap_{UID}/{BUNDLE}"
LEGACY = f"debugcap/testbed/team/api-1/2026/12/01/{BUNDLE}"
FOREIGN = f"debugcap/testbed/prod/api-1/2026/12/01/cap_{OTHER_UID}/prod_api-1_20261201T101500Z.tar.gz"
UNRELATED = "backups/prod/db.dump"


@pytest.mark.parametrize("key", [OWN, LEGACY], ids=["capture-dir", "older-layout"])
def test_the_captures_own_keys_belong_to_it(key: str) -> None:
    assert delivering.key_refusal(key, OWNER, "api-1") is None
    targeted = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, target_pod="api-1")
    assert delivering.key_refusal(key, targeted, "api-1") is None


def test_without_a_prefix_the_cluster_heads_the_key() -> None:
    owner = delivering.KeyOwner("", "testbed", "team", CAPTURE)
    assert delivering.key_refusal(OWN.removeprefix("debugcap/"), owner, "api-1") is None
    assert delivering.key_refusal(OWN, owner, "api-1") is not None


@pytest.mark.parametrize(("key", "why"), [
    (f"debugcap/testbed/team/../prod/api-1/2026/12/01/cap_{UID}/{BUNDLE}", "not a valid object key"),
    (f"debugcap/testbed/team/api-1/../../../../{UNRELATED}", "not a valid object key"),
    (FOREIGN, "not under this capture's prefix 'debugcap/testbed/team/'"),
    (f"debugcap/prod-cluster/team/api-1/2026/12/01/cap_{UID}/{BUNDLE}", "not under this capture's prefix"),
    (f"debugcap/testbed/team-evil/api-1/2026/12/01/cap_{UID}/team-evil_api-1_20261201T101500Z.tar.gz",
     "not under this capture's prefix 'debugcap/testbed/team/'"),
    (f"debugcap/testbed/teamx/api-1/2026/12/01/{BUNDLE}", "not under this capture's prefix"),
    (f"debugcap/testbed/team/%2e%2e/prod/api-1/2026/12/01/{BUNDLE}", "not a valid object key"),
    (f"debugcap%2Ftestbed%2Fteam%2Fapi-1/2026/12/01/{BUNDLE}", "not a valid object key"),
    (f"/{OWN}", "not a valid object key"),
    (f"{OWN}.sha256", "not a valid object key"),
    (f"debugcap/testbed/team/api-1/2026/12/01/cap_{UID}/{BUNDLE}\n", "not a valid object key"),
    ("", "empty or not a string"),
    (None, "empty or not a string"),
    (42, "empty or not a string"),
    (UNRELATED, "not under this capture's prefix"),
    ("debugcap/testbed/team/db.dump", "does not have the layout"),
    (f"debugcap/testbed/team/api-1/2026/12/01/x/y/{BUNDLE}", "does not have the layout"),
    ("debugcap/testbed/team/api-1/2026/12/01/cap_x/db.dump", "does not end in a bundle name"),
    (f"debugcap/testbed/team/api-1/2026/12/01/cap_{OTHER_UID}/{BUNDLE}", "belongs to another capture"),
    (f"debugcap/testbed/team/api-1/2026/12/01/other_{UID}/{BUNDLE}", "belongs to another capture"),
    (f"debugcap/testbed/team/api-1/2026/12/01/cap_{UID}/prod_api-1_20261201T101500Z.tar.gz",
     "another namespace, pod or day"),
    (f"debugcap/testbed/team/api-1/2026/12/02/cap_{UID}/{BUNDLE}", "another namespace, pod or day"),
    (f"debugcap/testbed/team/api-2/2026/12/01/{BUNDLE}", "another namespace, pod or day"),
    (f"debugcap/testbed/team/api-2/2026/12/01/cap_{UID}/team_api-2_20261201T101500Z.tar.gz",
     "not under the pod 'api-1' it is listed for"),
], ids=["dotdot-to-other-ns", "dotdot-out", "other-namespace", "other-cluster", "prefix-trick", "prefix-trick-2",
        "url-encoded-dotdot", "url-encoded-slash", "absolute", "sidecar", "newline", "empty", "none", "number",
        "unrelated-object", "too-short", "too-long", "not-a-bundle", "other-uid", "other-name",
        "bundle-of-other-ns", "other-day", "pod-vs-bundle-name", "other-pods-entry"])
def test_a_key_that_is_not_the_captures_is_refused_with_the_key_and_why(key: Any, why: str) -> None:
    refusal = delivering.key_refusal(key, OWNER, "api-1")
    assert refusal is not None and why in refusal
    assert repr(key)[:40] in refusal  # names the key, control characters escaped
    assert "\n" not in refusal


def test_the_older_layout_belongs_only_to_the_pod_the_spec_targets() -> None:
    other_pod = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, target_pod="api-2")
    refusal = delivering.key_refusal(LEGACY, other_pod, "api-1")
    assert refusal is not None and "not the pod 'api-2' this capture targets" in refusal
    # With the capture's own directory the UID ties the key to it, whatever the spec says now.
    assert delivering.key_refusal(OWN, other_pod, "api-1") is None
    unparsed = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, target_pod="")
    assert delivering.key_refusal(LEGACY, unparsed, "api-1") is not None


def test_the_operators_keys_carry_the_captures_directory_and_belong_to_it(tmp_path: Path) -> None:
    store = delivering.Store(local.LocalBackend(tmp_path / "s"), "debugcap", "testbed", spool.Spool(tmp_path / "p"))
    planned = capturing.planned_key(store, "team", "api-1", operator_fakes.WHEN, CAPTURE)
    assert planned == OWN
    steps: Any = capturing.PodSteps(kube=None, bundles=store, namespace="team", capture_name="cap",  # type: ignore[arg-type]
                                    request=None, template=None, work_dir=tmp_path, probe_seconds=0,  # type: ignore[arg-type]
                                    settings=None, capture_uid=UID)  # type: ignore[arg-type]
    assert steps.planned_key("api-1", operator_fakes.WHEN) == OWN
    assert capturing.planned_key(store, "team", "api-1", operator_fakes.WHEN) == LEGACY  # the plugin's layout


# --- the handler paths ------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> delivering.Store:
    return delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                            spool.Spool(tmp_path / "spool"))


def _put(store: delivering.Store, key: str, path: Path) -> None:
    store.backend.put(key=key, path=path, sha256=base.file_sha256(path)[0])


def _body(pods: list[dict[str, Any]], spec: dict[str, Any] | None = None, phase: str = "Completed") -> kopf.Body:
    return kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                      "metadata": {"name": "cap", "namespace": "team", "uid": UID},
                      "spec": spec if spec is not None else {"target": {"pod": "api-1"}},
                      "status": {"phase": phase, "pods": pods}})


def _posted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda _obj, **kw: posted.append(kw))  # kopf posts only in its loop
    return posted


def test_deleting_a_capture_deletes_its_own_bundle_and_leaves_forged_keys_in_place(
        store: delivering.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    bundle = operator_fakes.write_bundle(tmp_path / "out")
    for key in (OWN, FOREIGN, UNRELATED):
        _put(store, key, bundle.path)
    # A status anyone allowed to patch debugcaptures/status may write.
    body = _body([{"name": "api-1", "phase": "Completed", "bundle": {"key": OWN}},
                  {"name": "api-1", "phase": "Completed", "bundle": {"key": FOREIGN}},
                  {"name": "db", "phase": "PartiallyFailed", "uploadKey": UNRELATED},
                  {"name": "x", "phase": "PartiallyFailed", "uploadKey": "../../../etc/passwd"}])
    posted = _posted(monkeypatch)
    rt = runtime.Runtime(config=DebugcapConfig(work_dir=tmp_path), kube=None, store=store,  # type: ignore[arg-type]
                         executor=None, pods=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        handler: Any = captures.delete_capture_bundles  # kopf's decorator types it as kopf calls it
        asyncio.run(handler(body=body, status=body.status, memo=kopf.Memo(runtime=rt),
                            logger=logging.getLogger("test")))
    assert not store.backend.exists(key=OWN)
    assert store.backend.exists(key=FOREIGN) and store.backend.exists(key=UNRELATED)
    assert [kw["reason"] for kw in posted] == [captures.KEY_REFUSED] * 3
    assert all(kw["type"] == "Warning" and "left in place" in kw["message"] for kw in posted)
    assert FOREIGN in posted[0]["message"] and "not under this capture's prefix" in posted[0]["message"]
    assert UNRELATED in posted[1]["message"] and "status.pods['db']" in posted[1]["message"]
    assert "../../../etc/passwd" in posted[2]["message"]
    assert sum(UNRELATED in r.getMessage() for r in caplog.records) == 1


def test_an_orphans_forged_upload_key_is_neither_adopted_nor_deleted(store: delivering.Store,
                                                                     tmp_path: Path) -> None:
    bundle = operator_fakes.write_bundle(tmp_path / "out")
    _put(store, FOREIGN, bundle.path)  # a verifying bundle: adopting it would list it as this capture's
    garbage = tmp_path / "db.dump"
    garbage.write_bytes(b"not a bundle")  # adopting it would find it damaged and delete it
    _put(store, UNRELATED, garbage)
    for key in (FOREIGN, UNRELATED):
        entry = {"name": "api-1", "phase": "Running", "uploadKey": key, "container": "app"}
        result = recovery.adopt_upload(store, entry, tmp_path / "work", owner=OWNER)
        assert (result.phase, result.key, result.upload_key, result.uri) == ("Failed", "", "", "")
        assert key in result.message and "left in place, not adopted" in result.message
        assert store.backend.exists(key=key)
    own = {"name": "api-1", "phase": "Running", "uploadKey": OWN}
    _put(store, OWN, bundle.path)
    assert recovery.adopt_upload(store, own, tmp_path / "work", owner=OWNER).key == OWN


def test_closing_an_orphan_reports_the_refused_key_in_its_pods_event_and_status(
        store: delivering.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from debugcap.operator.status_writing import StatusWriter

    _put(store, UNRELATED, operator_fakes.write_bundle(tmp_path / "out").path)
    body = _body([{"name": "api-1", "phase": "Running", "uploadKey": UNRELATED}], phase="Running")
    posted = _posted(monkeypatch)
    written: list[dict[str, Any]] = []

    async def send(status: dict[str, Any]) -> bool:
        written.append(status)
        return False

    monkeypatch.setattr(captures, "status_writer", lambda _rt, _body: StatusWriter(send, interval=0.0))
    rt: Any = SimpleNamespace(kube=operator_fakes.FakeKube(), store=store, config=DebugcapConfig(work_dir=tmp_path))
    asyncio.run(captures._close_orphan(rt, body, logging.getLogger("test")))
    [pod] = written[-1]["pods"]
    assert pod["phase"] == "Failed" and UNRELATED in pod["message"] and "uploadKey" not in pod
    failed = [kw for kw in posted if kw["reason"] == "PodCaptureFailed"]
    assert len(failed) == 1 and UNRELATED in failed[0]["message"] and "not adopted" in failed[0]["message"]
    assert store.backend.exists(key=UNRELATED)


def test_a_bundle_name_with_no_real_time_is_refused_not_a_crash() -> None:
    # Month 13 and hour 25 have digits where a time goes: a patched status must not stop deletion.
    for stamp in ("20261301T101500Z", "20261201T251500Z"):
        key = f"debugcap/testbed/team/api-1/2026/12/01/cap_{UID}/team_api-1_{stamp}.tar.gz"
        why = delivering.key_refusal(key, OWNER, "api-1")
        assert why is not None and "does not end in a bundle name" in why
    status = {"pods": [{"name": "api-1", "bundle": {"key": OWN}},
                       {"name": "api-1", "bundle": {"key": OWN.replace("20261201T1015", "20261301T1015")}}]}
    keys, refused = captures.owned_keys(status, OWNER)
    assert OWN in keys and len(refused) == 1


def test_a_long_capture_name_keeps_the_key_directory_a_file_name_a_disk_takes() -> None:
    long = delivering.Capture("c" * 253, UID)
    assert len(long.directory) == 63 + 1 + len(UID) <= 255
    owner = delivering.KeyOwner("debugcap", "testbed", "team", long)
    assert delivering.key_refusal(f"debugcap/testbed/team/api-1/2026/12/01/{long.directory}/{BUNDLE}", owner,
                                  "api-1") is None


def test_an_older_layout_key_belongs_only_if_made_while_the_capture_ran() -> None:
    from datetime import UTC, datetime, timedelta

    made = datetime(2026, 12, 1, 10, 14, tzinfo=UTC)  # the bundle of LEGACY is of 10:15
    owner = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, created=made)
    assert delivering.key_refusal(LEGACY, owner, "api-1") is None
    later = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, created=made + timedelta(hours=1))
    why = delivering.key_refusal(LEGACY, later, "api-1")  # a CLI upload of the namespace, an hour earlier
    assert why is not None and "was not made while this capture ran" in why
    stale = delivering.KeyOwner("debugcap", "testbed", "team", CAPTURE, created=made - timedelta(days=3))
    assert delivering.key_refusal(LEGACY, stale, "api-1") is not None
    assert delivering.key_refusal(OWN, later, "api-1") is None  # the capture's own directory: no window
