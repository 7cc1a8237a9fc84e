"""``logs``: the container's log, and the previous instance's after a restart.

Cases: the log streamed from .../pods/NAME/log (container, tailLines, timestamps) is stored
verbatim under logs/<container>.log and the response is released; ``lines`` sets tailLines
(default: the settings' log_lines); a restarted container's previous log goes to
logs/<container>.previous.log, unless ``previous: false``; a log larger than one read chunk is
kept whole; a previous log the API cannot give keeps the current one and is partial.
"""

from __future__ import annotations

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base, logs
from debugcap.collectors.logs import LogsCollector

LOG = "/api/v1/namespaces/prod/pods/api-7d9f8c6b5-x2x4q/log"
RESTARTED = base.Target(namespace="prod", pod="api-7d9f8c6b5-x2x4q", container="app", node="worker-1",
                        restart_count=1)


def test_log_is_stored_verbatim_under_the_logs_path(bundle, api, data) -> None:
    api.serve_text(LOG, "kube/goapp.log")
    result = LogsCollector().collect(bundle.context(kube=api, log_lines=1000))
    assert result == base.CollectorResult(base.Status.OK, "", ("logs/app.log",))
    assert layout.log_path("app") == "logs/app.log"
    assert bundle.files == {"logs/app.log": data("kube/goapp.log")}
    assert api.calls == [("get", LOG, (("container", "app"), ("tailLines", "1000"), ("previous", "false"),
                                       ("timestamps", "true"), ("limitBytes", str((64 << 20) + 1))))]
    assert [r.released for r in api.responses] == [True]


def test_lines_param_sets_tail_lines(bundle, api) -> None:
    api.serve_text(LOG, "kube/goapp.log")
    LogsCollector().collect(bundle.context(kube=api, params={"lines": 50}))
    assert ("tailLines", "50") in api.calls[0][2]


def test_restarted_container_also_gets_its_previous_log(bundle, api, data) -> None:
    api.serve_text(LOG, "kube/goapp.log")
    result = LogsCollector().collect(bundle.context(kube=api, target=RESTARTED))
    assert result == base.CollectorResult(base.Status.OK, "", ("logs/app.log", "logs/app.previous.log"))
    assert bundle.files["logs/app.previous.log"] == data("kube/goapp.log")
    assert [dict(call[2])["previous"] for call in api.calls] == ["false", "true"]


def test_previous_false_leaves_the_previous_log_out(bundle, api) -> None:
    api.serve_text(LOG, "kube/goapp.log")
    LogsCollector().collect(bundle.context(kube=api, target=RESTARTED, params={"previous": False}))
    assert set(bundle.files) == {"logs/app.log"}


def test_log_larger_than_one_chunk_is_kept_whole(bundle, api, data, monkeypatch) -> None:
    monkeypatch.setattr(logs, "CHUNK", 100)
    api.serve_text(LOG, "kube/goapp.log")
    LogsCollector().collect(bundle.context(kube=api))
    assert bundle.files["logs/app.log"] == data("kube/goapp.log")


def test_previous_log_the_api_cannot_give_keeps_the_current_one(bundle, api, data) -> None:
    class OnlyCurrent:
        def get(self, path, query, *, timeout=None):  # type: ignore[no-untyped-def]
            if ("previous", "true") in query:
                raise errors.InvalidError('previous terminated container "app" in pod "api-7d9f8c6b5-x2x4q" not '
                                          "found", status=400, reason="BadRequest")
            return api.get(path, query, timeout=timeout)

    api.serve_text(LOG, "kube/goapp.log")
    result = LogsCollector().collect(bundle.context(kube=OnlyCurrent(), target=RESTARTED))
    assert result.status is base.Status.PARTIAL
    assert result.message.startswith("previous container's logs of container app: ")
    assert 'previous terminated container "app"' in result.message
    assert bundle.files == {"logs/app.log": data("kube/goapp.log")}


def test_api_error_is_a_failure_storing_nothing(bundle, api) -> None:
    api.fail(LOG, errors.ForbiddenError('cannot get pods/log "api-7d9f8c6b5-x2x4q": forbidden', status=403))
    result = LogsCollector().collect(bundle.context(kube=api))
    assert result.status is base.Status.FAILED and result.message.startswith("logs of container app: ")
    assert bundle.files == {}
