"""``pprof-cpu``: a CPU profile over N seconds.

Cases: the profile of ``/debug/pprof/profile?seconds=N`` (default 30) is stored under
pprof/cpu.pb.gz with a time budget of N seconds plus the grace; a profile already running in the
process (pprof's 500) fails with Go's own words kept under errors/pprof-cpu.txt.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.pprof_cpu import CpuProfileCollector


def test_cpu_profile_is_stored_under_the_pprof_path(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/profile?seconds=1", "cpu.pb.gz")
    ctx = bundle.context(http=pprof_port, params={"seconds": 1}, http_timeout_seconds=30, profile_grace_seconds=15)
    result = CpuProfileCollector().collect(ctx)
    assert result == base.CollectorResult(base.Status.OK, "", (layout.PPROF_CPU,))
    assert bundle.files == {layout.PPROF_CPU: data("go/cpu.pb.gz")}
    assert [(path, timeout) for path, timeout, _cap in pprof_port.gets] == [("/debug/pprof/profile?seconds=1", 46)]


def test_default_window_is_30_seconds(bundle, pprof_port) -> None:
    pprof_port.serve("/debug/pprof/profile?seconds=30", "cpu.pb.gz")
    assert CpuProfileCollector().collect(bundle.context(http=pprof_port)).status is base.Status.OK


def test_profile_already_running_fails_with_gos_words_kept(bundle, pprof_port, data) -> None:
    pprof_port.serve("/debug/pprof/profile?seconds=1", "cpu-busy.txt")
    result = CpuProfileCollector().collect(bundle.context(http=pprof_port, params={"seconds": 1}))
    assert result.status is base.Status.FAILED
    assert "cpu profiling already in use" in result.message
    assert bundle.files == {layout.error_path("pprof-cpu"): data("go/cpu-busy.txt")}
