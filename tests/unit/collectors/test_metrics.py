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
