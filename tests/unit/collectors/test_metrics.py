"""``metrics``: the Prometheus page, when the program serves one on its pprof port.

Cases: ``/metrics`` is stored under metrics/prometheus.txt; ``path`` picks another page; a
program without it (404) is a skip that stores nothing and names the path and port.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.metrics import MetricsCollector


def test_metrics_page_is_stored_under_the_metrics_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/metrics", "metrics.txt")
    result = MetricsCollector().collect(bundle.context(http=pprof_port))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.METRICS_PROMETHEUS,))
    assert bundle.files == {layout.METRICS_PROMETHEUS: data("go/metrics.txt")}


def test_path_param_picks_the_page(bundle, pprof_port, data) -> None:
    pprof_port.serve("/internal/metrics", "metrics.txt")
    result = MetricsCollector().collect(bundle.context(http=pprof_port, params={"path": "/internal/metrics"}))
    assert result.status is base.Status.OK
    assert [path for path, _t, _c in pprof_port.gets] == ["/internal/metrics"]


def test_missing_page_is_a_skip_naming_path_and_port(bundle, pprof_port) -> None:
    pprof_port.serve("/prometheus", "no-such-page.txt")
    result = MetricsCollector().collect(bundle.context(http=pprof_port, params={"path": "/prometheus"}))
    assert result == base.CollectorResult(base.Status.SKIPPED, "the pod serves no /prometheus on port 6060")
    assert bundle.files == {}


def test_runtime_facts_are_noted_from_client_golang_series(bundle, pprof_port, data) -> None:
    """goapp recorded with GOMAXPROCS=2 GOMEMLIMIT=512MiB (data/record_go_diagnostics.sh)."""
    pprof_port.serve("/metrics", "metrics-runtime.txt")
    ctx = bundle.context(http=pprof_port)
    assert MetricsCollector().collect(ctx).status is base.Status.OK
    assert bundle.files == {layout.METRICS_PROMETHEUS: data("go/metrics-runtime.txt")}
    assert ctx.facts["GOMAXPROCS"] == "2" and ctx.facts["GOMEMLIMIT"] == str(512 << 20)
    assert ctx.facts["goVersion"].startswith("go1.26") and ctx.added == [layout.METRICS_PROMETHEUS]


def test_a_page_without_go_series_notes_nothing(bundle, pprof_port) -> None:
    pprof_port.serve("/metrics", "metrics.txt")  # goapp's own series only
    ctx = bundle.context(http=pprof_port)
    MetricsCollector().collect(ctx)
    assert ctx.facts == {}
