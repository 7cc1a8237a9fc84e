"""Every collector debugcap has, registered here and nowhere else.

A template step, a CR spec and the CLI refer to a collector by ``name``; the
engine looks it up in ``COLLECTORS``. Adding a collector: one module, one line
below, one line in the CRD's collector enum, and its unit test.
"""

from __future__ import annotations

from collections.abc import Mapping

from debugcap.collectors import (
    base,
    command,
    deleted_files,
    disk,
    environment,
    events,
    expvar,
    fd_count,
    flight_recorder,
    go_leak_snapshots,
    logs,
    metrics,
    node_conditions,
    open_files,
    pod_yaml,
    pprof_allocs,
    pprof_block,
    pprof_cpu,
    pprof_goroutine,
    pprof_goroutineleak,
    pprof_heap,
    pprof_mutex,
    pprof_threadcreate,
    proc_status,
    ps,
    resolv_conf,
    sockets,
    trace,
)


def _by_name(*classes: type[base.Collector]) -> Mapping[str, type[base.Collector]]:
    registry: dict[str, type[base.Collector]] = {}
    for cls in classes:
        if cls.name in registry:
            raise RuntimeError(f"two collectors are named {cls.name!r}")
        registry[cls.name] = cls
    return registry


COLLECTORS: Mapping[str, type[base.Collector]] = _by_name(
    # Kubernetes API
    pod_yaml.PodYamlCollector, events.EventsCollector, node_conditions.NodeConditionsCollector,
    logs.LogsCollector,
    # exec in the container
    ps.PsCollector, proc_status.ProcStatusCollector, fd_count.FdCountCollector, open_files.OpenFilesCollector,
    sockets.SocketsCollector, resolv_conf.ResolvConfCollector, disk.DiskCollector,
    deleted_files.DeletedFilesCollector, environment.EnvironmentCollector,
    # Go runtime over port-forward
    pprof_cpu.CpuProfileCollector, pprof_goroutine.GoroutinesCollector, trace.TraceCollector,
    pprof_heap.HeapProfileCollector, pprof_allocs.AllocsProfileCollector, pprof_block.BlockProfileCollector,
    pprof_mutex.MutexProfileCollector, pprof_threadcreate.ThreadcreateProfileCollector,
    expvar.ExpvarCollector, metrics.MetricsCollector, go_leak_snapshots.GoLeakSnapshotsCollector,
    pprof_goroutineleak.GoroutineLeakCollector, flight_recorder.FlightRecorderCollector,
    # admin-defined, only through a DebugCaptureTemplate
    command.CommandCollector,
)
