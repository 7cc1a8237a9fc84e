"""Runtime facts from a Prometheus page: only client_golang's Go series, read as they are written."""

from __future__ import annotations

from debugcap.formats import prometheus


def _facts(text: str) -> dict[str, str]:
    return prometheus.runtime_facts(text.encode().splitlines(keepends=True))


def test_client_golang_series() -> None:
    page = """# HELP go_info Information about the Go environment.
# TYPE go_info gauge
go_info{version="go1.25.3"} 1
go_sched_gomaxprocs_threads 8
go_gc_gomemlimit_bytes 9.223372036854776e+18
go_goroutines 42
"""
    assert _facts(page) == {"goVersion": "go1.25.3", "GOMAXPROCS": "8", "GOMEMLIMIT": "off"}


def test_a_limit_in_bytes_labels_and_timestamps() -> None:
    page = ('go_info{job="api",version="go1.26.8-X:goroutineleakprofile"} 1 1733300000000\n'
            "go_gc_gomemlimit_bytes 5.36870912e+08\n")
    assert _facts(page) == {"goVersion": "go1.26.8-X:goroutineleakprofile", "GOMEMLIMIT": "536870912"}


def test_nothing_is_guessed() -> None:
    page = ('goapp_build_info{goversion="go1.26.8"} 1\ngo_info{} 1\ngo_sched_gomaxprocs_threads NaN\n'
            "go_godebug_non_default_behavior_http2client_events_total 3\n")
    assert _facts(page) == {}


def test_the_first_value_wins() -> None:
    assert _facts("go_sched_gomaxprocs_threads 2\ngo_sched_gomaxprocs_threads 4\n") == {"GOMAXPROCS": "2"}


def test_a_version_label_that_is_not_a_go_version_is_not_a_fact() -> None:
    hostile = [b'go_info{version="go1.26.8\\x1b[2J' + b"A" * 5000 + b'"} 1\n',
               b'go_info{version="<script>alert(1)</script>"} 1\n']
    for line in hostile:
        assert "goVersion" not in prometheus.runtime_facts([line])
    assert prometheus.runtime_facts([b"go_info{version=\"go1.26.8-X:goroutineleakprofile\"} 1\n"]) == \
        {"goVersion": "go1.26.8-X:goroutineleakprofile"}
    devel = "devel go1.27-4f1a2b3 Tue Jun 4 10:00:00 2026 +0000"
    assert prometheus.runtime_facts([f'go_info{{version="{devel}"}} 1\n'.encode()]) == {"goVersion": devel}
