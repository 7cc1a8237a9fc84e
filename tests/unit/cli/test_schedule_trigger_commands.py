"""`schedule` and `trigger` nouns on a fake API: what they send, what they print, and their usage errors.

run-now makes the capture the operator's timer makes for a run (labels, owner), so the schedule
counts it; suspend and resume write spec.suspend only when it changes; describe shows the
schedule's next run and last run, and the trigger's conditions, firings and signals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from debugcap import errors
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import schedules, triggers
from debugcap.kubectl_plugin.options import KubeFlags

API = "/apis/debugcap.io/v1alpha1/namespaces/shop"
SCHEDULE = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugSchedule",
            "metadata": {"name": "nightly", "namespace": "shop", "uid": "u-1",
                         "creationTimestamp": "2026-12-01T00:00:00Z"},
            "spec": {"schedule": "0 3 * * *", "suspend": False,
                     "captureTemplate": {"metadata": {"labels": {"team": "shop"}},
                                         "spec": {"target": {"pod": "api-1"}, "template": "go-heap"}}},
            "status": {"lastScheduleTime": "2026-12-04T03:00:00Z",
                       "lastRun": {"capture": "nightly-1", "phase": "Completed", "pods": 1, "healthy": 1,
                                   "trend": [{"pod": "api-1", "goroutines": 120, "goroutinesChange": 20,
                                              "heapInuse": 1000, "heapInuseChange": -50}]}}}
TRIGGER = {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugTrigger",
           "metadata": {"name": "pre-oom", "namespace": "shop", "uid": "u-2",
                        "creationTimestamp": "2026-12-04T00:00:00Z"},
           "spec": {"target": {"selector": {"matchLabels": {"app": "api"}}},
                    "when": {"memoryPercentOfLimit": 80, "restarted": True}, "suspend": True},
           "status": {"pods": 3, "firedTotal": 2, "conditions": [{"type": "Ready", "status": "True",
                                                                  "reason": "Watching"}],
                      "firings": [{"time": "2026-12-04T11:00:00Z", "pod": "api-1", "reason": "restarted",
                                   "capture": "pre-oom-restarted-1", "value": "OOMKilled"}],
                      "signals": [{"pod": "api-2", "memoryPercentOfLimit": 61.25, "goroutines": 40}]}}


@dataclass
class Api:
    """The API server: objects by path; records every request."""

    objects: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    default_namespace: str = "shop"

    def get_json(self, path: str, query: Any = ()) -> Any:
        self.requests.append(("GET", path, list(query)))
        if path not in self.objects:
            raise errors.NotFoundError(f"cannot get {path}", status=404, api_message="not found")
        return self.objects[path]

    def post_json(self, path: str, body: Any) -> Any:
        self.requests.append(("POST", path, body))
        return body

    def merge_patch(self, path: str, body: Any) -> Any:
        self.requests.append(("PATCH", path, body))
        return body

    def close(self) -> None:
        pass

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api({f"{API}/debugschedules/nightly": SCHEDULE, f"{API}/debugtriggers/pre-oom": TRIGGER,
                f"{API}/debugschedules": {"items": [SCHEDULE]}, f"{API}/debugtriggers": {"items": [TRIGGER]},
                f"{API}/debugcaptures": {"items": []}, "/api/v1/namespaces/shop/events": {"items": []}})
    monkeypatch.setattr(KubeFlags, "load", lambda self: fake)
    return fake


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_schedule_create_prints_the_schedule_it_would_make_without_a_cluster(tmp_path: Any) -> None:
    res = invoke("schedule", "create", "nightly", "deployment/api", "--schedule", "0 3 * * *", "-t", "go-profile",
                 "-p", "cpu_seconds=10", "--capture-label", "team=shop", "--ttl", "7d", "--time-zone", "Europe/Berlin",
                 "--concurrency-policy", "Replace", "-n", "shop", "--dry-run=client", "-o", "yaml",
                 "--kubeconfig", str(tmp_path / "missing"))
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout) == {
        "apiVersion": "debugcap.io/v1alpha1", "kind": "DebugSchedule",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "concurrencyPolicy": "Replace",
                 "captureTemplate": {"metadata": {"labels": {"team": "shop"}},
                                     "spec": {"target": {"workload": {"kind": "Deployment", "name": "api"}},
                                              "template": "go-profile", "parameters": {"cpuSeconds": 10},
                                              "ttl": "7d"}}}}


@pytest.mark.parametrize(("args", "says"), [
    (["--schedule", "every night", "pod/a"], "--schedule"),
    (["--schedule", "0 3 * * *", "--time-zone", "Mars/Olympus", "pod/a"], "--time-zone"),
    (["--schedule", "0 3 * * *"], "give exactly one target"),
    (["--schedule", "0 3 * * *", "pod/a", "-p", "nope=1"], "not a DebugCapture parameter"),
], ids=["cron", "zone", "no-target", "param"])
def test_schedule_create_refuses_bad_flags_before_reading_the_kubeconfig(args: list[str], says: str,
                                                                        tmp_path: Any) -> None:
    res = invoke("schedule", "create", "nightly", *args, "--kubeconfig", str(tmp_path / "missing"))
    assert res.exit_code == 2 and says in res.stderr and "credentials" not in res.stderr, res.output


def test_schedule_create_posts_it(api: Api) -> None:
    res = invoke("schedule", "create", "nightly", "pod/api-1", "--schedule", "*/5 * * * *", "--suspend")
    assert res.exit_code == 0, res.output
    [(verb, path, body)] = api.writes()
    assert (verb, path) == ("POST", f"{API}/debugschedules") and body["spec"]["suspend"] is True
    assert res.stdout == "debugschedule.debugcap.io/nightly created\n"


def test_run_now_makes_a_run_owned_and_labelled_as_the_operators(api: Api) -> None:
    res = invoke("schedule", "run-now", "nightly", "--name", "nightly-by-hand")
    assert res.exit_code == 0, res.output
    [(verb, path, body)] = api.writes()
    assert (verb, path) == ("POST", f"{API}/debugcaptures")
    assert body["metadata"]["name"] == "nightly-by-hand" and body["metadata"]["namespace"] == "shop"
    assert body["metadata"]["labels"] == {"team": "shop", "debugcap.io/schedule": "nightly"}
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("DebugSchedule", "nightly", "u-1",
                                                                                 True)
    assert body["spec"] == {"target": {"pod": "api-1"}, "template": "go-heap"}
    assert res.stdout == "debugcapture.debugcap.io/nightly-by-hand created\n"


def test_run_now_names_the_capture_after_the_schedule_by_default(api: Api) -> None:
    res = invoke("schedule", "run-now", "nightly")
    assert res.exit_code == 0, res.output
    assert api.writes()[0][2]["metadata"]["name"].startswith("nightly-manual-")


def test_run_now_of_a_missing_schedule_says_how_to_list_them(api: Api) -> None:
    res = invoke("schedule", "run-now", "weekly")
    assert res.exit_code == 1 and api.writes() == []
    assert res.stderr == ('Error: debugschedule "weekly" not found in namespace "shop"; list them with: '
                          "kubectl debugcap schedule get -n shop\n")


def test_suspend_and_resume_write_spec_suspend_only_when_it_changes(api: Api) -> None:
    res = invoke("schedule", "suspend", "nightly")
    assert res.exit_code == 0 and res.stdout == "debugschedule.debugcap.io/nightly suspended\n"
    assert api.writes() == [("PATCH", f"{API}/debugschedules/nightly", {"spec": {"suspend": True}})]
    res = invoke("trigger", "suspend", "pre-oom")
    assert res.stdout == "debugtrigger.debugcap.io/pre-oom already suspended\n" and len(api.writes()) == 1
    res = invoke("trigger", "resume", "pre-oom")
    assert res.stdout == "debugtrigger.debugcap.io/pre-oom resumed\n"
    assert api.writes()[-1] == ("PATCH", f"{API}/debugtriggers/pre-oom", {"spec": {"suspend": False}})
    assert invoke("trigger", "resume").exit_code == 2


def test_get_prints_schedules_and_triggers_through_the_one_printer(api: Api) -> None:
    table = invoke("schedule", "get").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "SCHEDULE", "SUSPEND", "LAST"] and table[1].startswith("nightly ")
    assert invoke("trigger", "get", "-o", "name").stdout == "debugtrigger.debugcap.io/pre-oom\n"
    assert "MESSAGE" in invoke("trigger", "get", "-o", "wide").stdout.splitlines()[0]
    assert invoke("schedule", "get", "-A", "nightly").exit_code == 2


def test_schedule_describe_shows_the_next_run_the_last_run_and_its_trend() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    text = "\n".join(schedules.describe(SCHEDULE, [], [], now))
    assert "Next Run:           2026-12-05T03:00:00Z" in text
    assert "Last Schedule:      2026-12-04T03:00:00Z (9h ago)" in text
    assert "Last Run:           nightly-1 (Completed)" in text and "+20" in text and "-50" in text
    assert "Target:           pod/api-1" in text
    assert "Events:             <none>" in text
    assert text.endswith("next: kubectl debugcap schedule run-now nightly -n shop")


def test_trigger_describe_shows_conditions_firings_and_signals() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    text = "\n".join(triggers.describe(TRIGGER, [], None, now))
    assert "Fires When:         memory >= 80% of the limit or the container restarted" in text
    assert "Target:             pods with app=api" in text
    assert "60m" in text and "pre-oom-restarted-1" in text and "OOMKilled" in text
    assert "61.2" in text or "61.3" in text
    assert "you may not list events" in text
    assert text.endswith("next: kubectl debugcap trigger resume pre-oom -n shop")


@pytest.mark.parametrize("noun", ["schedule", "trigger"])
def test_describe_without_rights_to_list_captures_notes_it_and_goes_on(api: Api, noun: str) -> None:

    def get_json(path: str, query: Any = ()) -> Any:
        if path == f"{API}/debugcaptures":
            raise errors.ForbiddenError("no", status=403, reason="Forbidden")
        return Api.get_json(api, path, query)

    api.get_json = get_json  # type: ignore[method-assign]
    res = invoke(noun, "describe", "nightly" if noun == "schedule" else "pre-oom")
    assert res.exit_code == 0, res.output
    assert "Captures:           <not shown: you may not list debugcaptures in this namespace>" in res.stdout


def test_schedule_create_dry_run_without_a_namespace_or_kubeconfig_uses_default(tmp_path: Any) -> None:
    res = invoke("schedule", "create", "nightly", "pod/api-1", "--schedule", "0 3 * * *", "--dry-run=client",
                 "-o", "yaml", "--kubeconfig", str(tmp_path / "missing"))
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["metadata"] == {"name": "nightly", "namespace": "default"}
