"""Fetching the Go runtime's endpoints: every answer is checked before it is trusted.

Driven through a stand-in of the port-forward pool (``get(path, sink, *, timeout, max_bytes)``)
answering with responses recorded from the fixture app.
Cases: a valid profile is stored and ok; an HTTP error status (pprof's own 500 "already in
use") is a failure whose body is kept under errors/<collector>.txt; pprof's 404 adds how to
serve pprof; a 404 where the endpoint is optional is a skip storing nothing; a body that is not a
profile, not a trace or not JSON is stored but partial; a body cut at the output cap is partial
naming the cap; a timeout of the pool is an error that stores nothing; the request's time budget
adds the profile's seconds and the grace, and its byte budget is the output cap.
"""

from __future__ import annotations

import pytest

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base, fetching
from debugcap.collectors.fetching import Body

HEAP = "/debug/pprof/heap"


def test_valid_profile_is_stored_and_ok(bundle, pprof_port, data) -> None:
    pprof_port.serve(HEAP, "heap.pb.gz")
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_HEAP,))
    assert bundle.files == {layout.PPROF_HEAP: data("go/heap.pb.gz")}


def test_http_error_status_is_a_failure_with_the_body_kept_under_errors(bundle, pprof_port, data) -> None:
    url = "/debug/pprof/profile?seconds=1"
    pprof_port.serve(url, "cpu-busy.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-cpu", url, layout.PPROF_CPU, Body.PROFILE,
                            seconds=1)
    assert result.status is base.Status.FAILED
    assert result.message == (f"{url} answered HTTP 500: Could not enable CPU profiling: cpu profiling already "
                              "in use")
    assert result.files == (layout.error_path("pprof-cpu"),)
    assert bundle.files == {layout.error_path("pprof-cpu"): data("go/cpu-busy.txt")}


def test_a_busy_profiler_is_asked_again_until_it_is_free(bundle, pprof_port, data, fetch_clock) -> None:
    url = "/debug/pprof/profile?seconds=1"
    pprof_port.serve_first(url, "cpu-busy.txt", "cpu-busy.txt")  # e.g. a capture cut at its deadline
    pprof_port.serve(url, "cpu.pb.gz")
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-cpu", url, layout.PPROF_CPU, Body.PROFILE,
                            seconds=1)
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_CPU,))
    assert bundle.files == {layout.PPROF_CPU: data("go/cpu.pb.gz")}  # no error body left behind
    assert [g[0] for g in pprof_port.gets] == [url] * 3
    assert fetch_clock.slept == [fetching.BUSY_POLL_SECONDS] * 2


def test_a_profiler_busy_for_longer_than_the_retries_is_a_failure(bundle, pprof_port, fetch_clock) -> None:
    url = "/debug/pprof/trace?seconds=1"
    pprof_port.serve(url, "trace-busy.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "trace", url, layout.TRACE, Body.TRACE, seconds=1)
    assert result.status is base.Status.FAILED and "execution tracer already enabled" in result.message
    assert sum(fetch_clock.slept) >= fetching.BUSY_RETRY_SECONDS
    assert len(pprof_port.gets) == len(fetch_clock.slept) + 1


def test_an_instant_endpoint_is_not_retried(bundle, pprof_port, fetch_clock) -> None:
    url = "/debug/pprof/heap"
    pprof_port.serve(url, "cpu-busy.txt")  # a 500 with the same words, from an endpoint that has no window
    fetching.fetch(bundle.context(http=pprof_port), "pprof-heap", url, layout.PPROF_HEAP, Body.PROFILE)
    assert len(pprof_port.gets) == 1 and fetch_clock.slept == []


def test_pprof_404_says_how_to_serve_pprof(bundle, pprof_port) -> None:
    url = "/debug/pprof/nosuch"
    pprof_port.serve(url, "no-such-profile.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-heap", url, layout.PPROF_HEAP, Body.PROFILE)
    assert result.status is base.Status.FAILED
    assert result.message.startswith(f"{url} answered HTTP 404: Unknown profile; the program does not serve {url} "
                                     "on port 6060")
    assert 'import _ "net/http/pprof"' in result.message
    assert set(bundle.files) == {layout.error_path("pprof-heap")}


def test_404_of_an_optional_endpoint_is_a_skip_that_stores_nothing(bundle, pprof_port) -> None:
    pprof_port.serve("/prometheus", "no-such-page.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "metrics", "/prometheus", layout.METRICS_PROMETHEUS,
                            Body.TEXT, missing_is_skip=True)
    assert result == base.CollectorResult(base.Status.SKIPPED, "the pod serves no /prometheus on port 6060")
    assert bundle.files == {}


def test_body_that_is_not_a_profile_is_stored_but_partial(bundle, pprof_port, data) -> None:
    # e.g. a proxy or another program on the port answering 200 with text
    pprof_port.serve(HEAP, "goroutine-debug1.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert result.status is base.Status.PARTIAL
    assert result.message.startswith(f"{HEAP}: not a valid profile: ")
    assert bundle.files == {layout.PPROF_HEAP: data("go/goroutine-debug1.txt")}


def test_body_without_trace_header_is_partial(bundle, pprof_port) -> None:
    url = "/debug/pprof/trace?seconds=1"
    pprof_port.serve(url, "heap.pb.gz")
    result = fetching.fetch(bundle.context(http=pprof_port), "trace", url, layout.TRACE, Body.TRACE, seconds=1)
    assert result.status is base.Status.PARTIAL
    assert "not a Go execution trace" in result.message
    assert layout.TRACE in bundle.files


def test_body_that_is_not_json_is_partial(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/vars", "metrics.txt")
    result = fetching.fetch(bundle.context(http=pprof_port), "expvar", "/debug/vars", layout.METRICS_EXPVAR,
                            Body.JSON)
    assert result.status is base.Status.PARTIAL and "/debug/vars: not valid JSON: " in result.message


def test_gzip_where_text_was_asked_for_is_kept_but_partial(bundle, pprof_port, data) -> None:
    url = "/debug/pprof/goroutine?debug=1"
    pprof_port.serve(url, "heap.pb.gz")  # gzip bytes, as a pod sending Content-Encoding: gzip unasked
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-goroutine", url,
                            layout.PPROF_GOROUTINE_DEBUG1, Body.TEXT)
    assert result.status is base.Status.PARTIAL
    assert result.message.startswith(f"{url}: gzip-compressed bytes where text was asked for")
    assert bundle.files[layout.PPROF_GOROUTINE_DEBUG1] == data("go/heap.pb.gz")


def test_text_body_cut_at_the_output_cap_is_partial_and_keeps_the_head(bundle, pprof_port, data) -> None:
    url = "/debug/pprof/goroutine?debug=2"
    pprof_port.serve(url, "goroutine-debug2.txt")
    ctx = bundle.context(http=pprof_port, output_cap_bytes=1024)
    result = fetching.fetch(ctx, "pprof-goroutine", url, layout.PPROF_GOROUTINE_DEBUG2, Body.TEXT)
    assert result == base.CollectorResult(base.Status.PARTIAL, f"{url}: cut at 1024 bytes",
                                          (layout.PPROF_GOROUTINE_DEBUG2,))
    assert bundle.files[layout.PPROF_GOROUTINE_DEBUG2] == data("go/goroutine-debug2.txt")[:1024]


def test_profile_cut_at_the_output_cap_is_kept_and_partial(bundle, pprof_port, data) -> None:
    pprof_port.serve(HEAP, "heap.pb.gz")
    result = fetching.fetch(bundle.context(http=pprof_port, output_cap_bytes=200), "pprof-heap", HEAP,
                            layout.PPROF_HEAP, Body.PROFILE)
    assert result.status is base.Status.PARTIAL
    assert bundle.files == {layout.PPROF_HEAP: data("go/heap.pb.gz")[:200]}


def test_timeout_of_the_pool_is_an_error_that_stores_nothing(bundle, pprof_port) -> None:
    timeout = errors.CollectorError(f"GET {HEAP} from port 6060 did not finish within 30s; raise the timeout")
    pprof_port.fail(HEAP, timeout)
    with pytest.raises(errors.CollectorError) as raised:
        fetching.fetch(bundle.context(http=pprof_port), "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert raised.value is timeout
    assert bundle.files == {}


def test_time_budget_adds_seconds_and_grace_and_byte_budget_is_the_output_cap(bundle, pprof_port) -> None:
    url = "/debug/pprof/profile?seconds=10"
    pprof_port.serve(url, "cpu.pb.gz")
    pprof_port.serve(HEAP, "heap.pb.gz")
    ctx = bundle.context(http=pprof_port, http_timeout_seconds=30, profile_grace_seconds=15, output_cap_bytes=4096)
    fetching.fetch(ctx, "pprof-cpu", url, layout.PPROF_CPU, Body.PROFILE, seconds=10)
    fetching.fetch(ctx, "pprof-heap", HEAP, layout.PPROF_HEAP, Body.PROFILE)
    assert pprof_port.gets == [(url, 55, 4096), (HEAP, 30, 4096)]


def test_a_secret_in_an_error_body_never_reaches_the_message(bundle, pprof_port) -> None:
    """The message goes to the manifest, the DebugCapture's status and its Events."""
    from .conftest import Response

    token = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJhZG1pbiJ9" + ".c2lnbmF0dXJlLXZhbHVl"
    url = "/debug/pprof/profile?seconds=1"
    pprof_port.responses[url] = Response(500, {}, f"upstream said no: Authorization: Bearer {token}".encode())
    result = fetching.fetch(bundle.context(http=pprof_port), "pprof-cpu", url, layout.PPROF_CPU, Body.PROFILE,
                            seconds=1)
    assert result.status is base.Status.FAILED and "answered HTTP 500: upstream said no" in result.message
    assert token not in result.message and "REDACTED" in result.message
