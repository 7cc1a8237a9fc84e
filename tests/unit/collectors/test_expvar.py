"""``expvar``: /debug/vars (memstats and the program's own vars).

Cases: the JSON is stored under metrics/expvar.json; a program without expvar (404) is a skip
storing nothing; a non-JSON answer is kept but partial.
"""

from __future__ import annotations

import json

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.expvar import ExpvarCollector


def test_expvar_json_is_stored_under_the_metrics_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/vars", "vars.json")
    result = ExpvarCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.METRICS_EXPVAR,))
    assert bundle.files == {layout.METRICS_EXPVAR: data("go/vars.json")}
    assert "HeapInuse" in json.loads(bundle.files[layout.METRICS_EXPVAR])["memstats"]


def test_program_without_expvar_is_a_skip(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/vars", "no-such-page.txt")
    result = ExpvarCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.SKIPPED, "the pod serves no /debug/vars on port 6060")
    assert bundle.files == {}


def test_answer_that_is_not_json_is_kept_but_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/vars", "metrics.txt")
    result = ExpvarCollector().collect(bundle.context(http=pprof_port))
    assert result.status is base.Status.PARTIAL and "not valid JSON" in result.message
    assert bundle.files == {layout.METRICS_EXPVAR: data("go/metrics.txt")}
