"""Prometheus metrics of the operator, served on ``/metrics`` when a port is configured.

Updated by :mod:`~debugcap.operator.captures` and :mod:`~debugcap.operator.pod_scheduling`.
Module-level because prometheus_client registers each metric once per process; :func:`serve` is
idempotent for the same reason (tests start several operators, one after another, in one process).

The per-pod health gauges (:data:`POD_HEALTH`) are bounded: a pod's series go when the capture
that last set them is deleted (its ttl, or a schedule's history pruning), and at most
:data:`POD_SERIES_LIMIT` pods have series; past that the least recently updated pod's are dropped
and counted in ``debugcap_pod_health_series_evicted_total``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final

from prometheus_client import Counter, Gauge, Histogram, start_http_server

CAPTURES = Counter("debugcap_captures_total", "DebugCaptures finished, by final phase.", ["phase"])
POD_CAPTURES = Counter("debugcap_pod_captures_total", "Pods captured, by phase.", ["phase"])
DURATION = Histogram("debugcap_capture_duration_seconds", "Wall time of one DebugCapture, start to end.",
                     buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
UPLOADED_BYTES = Counter("debugcap_uploaded_bytes_total", "Bytes of bundles stored in the object store.")
UPLOAD_RETRIES = Counter("debugcap_upload_retries_total", "Upload attempts retried after a transient S3 error.")
RUNNING = Gauge("debugcap_captures_running", "Pods being captured right now.")
ABANDONED = Counter("debugcap_pod_captures_abandoned_total", "Pod captures still running past their deadline and "
                    "its grace, given up on: their connections closed, the pod Failed, what they return later dropped.")
LINGERING = Gauge("debugcap_pod_captures_lingering", "Pod collection threads still running after their pod's "
                  "deadline gave its concurrency slot back (writing a partial bundle, or abandoned and stuck); "
                  "at DEBUGCAP_OPERATOR_LINGERING_CAPTURES new captures wait.")
TRIGGER_FIRINGS = Counter("debugcap_trigger_firings_total", "DebugCaptures fired by DebugTriggers, by signal.",
                          ["namespace", "trigger", "reason"])
TRIGGER_SUPPRESSED = Counter("debugcap_trigger_firings_suppressed_total", "Firings a limit held back "
                             "(cooldown, maxCapturesPerHour, triggeredCaptures), by signal and limit.",
                             ["namespace", "trigger", "reason", "limit"])
TRIGGER_READ_ERRORS = Counter("debugcap_trigger_read_errors_total", "Pod signals a DebugTrigger check could "
                              "not read.", ["namespace", "trigger"])

# Pods with health series at once: 6 gauges each, so at most 6,000 series however many pods are
# swept. A judgement call: a sweep of a large cluster's Go pods fits, and a Prometheus scrape of
# that size stays cheap.
POD_SERIES_LIMIT: Final = 1000
POD_LABELS: Final = ("namespace", "pod", "workload", "kind")  # kind: the workload's (Deployment, Pod...)
POD_HEALTHY = Gauge("debugcap_pod_healthy", "1 when the pod's latest capture had no finding that makes a pod "
                    "unhealthy, 0 when it had one (docs/health.md).", POD_LABELS)
POD_SEVERITY = Gauge("debugcap_pod_finding_severity", "Severity of the most serious finding in the pod's latest "
                     "capture (high from 80, medium from 55); 0 without findings; absent when it could not "
                     "be analysed.", POD_LABELS)
POD_READINGS: Final = {
    "goroutines": Gauge("debugcap_pod_goroutines", "Goroutines in the pod's latest capture.", POD_LABELS),
    "heapInuseBytes": Gauge("debugcap_pod_heap_inuse_bytes", "Heap in use in the pod's latest capture "
                            "(memstats HeapInuse, else the heap profile's in-use total).", POD_LABELS),
    "gcCycles": Gauge("debugcap_pod_gc_cycles", "Completed GC cycles (memstats NumGC) at the pod's latest "
                      "capture.", POD_LABELS),
    "cpuShare": Gauge("debugcap_pod_cpu_share", "CPU used during the pod's latest CPU profile, in cores.",
                      POD_LABELS),
    # The longest recent pause, not PauseTotalNs: a total since the process started grows with its
    # uptime and says nothing sampled once a capture; one long pause is what a latency alert wants.
    # A 7th gauge per pod: at most 7,000 series within POD_SERIES_LIMIT.
    "gcPauseMaxSeconds": Gauge("debugcap_pod_gc_pause_seconds", "Longest GC stop-the-world pause of the "
                               "last GC cycles (memstats PauseNs: up to the last 256) at the pod's latest "
                               "capture, in seconds.", POD_LABELS),
}
POD_SERIES_EVICTED = Counter("debugcap_pod_health_series_evicted_total", "Pods whose health series were dropped "
                             "to stay within the limit of pods with series.")


class PodHealthSeries:
    """The health gauges of each pod and which capture set them; see the module docstring."""

    def __init__(self, limit: int = POD_SERIES_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        # (namespace, pod) -> (label values, capture), least recently updated first
        self._pods: OrderedDict[tuple[str, str], tuple[tuple[str, ...], str]] = OrderedDict()

    def record(self, namespace: str, pod: str, *, workload: str, kind: str, capture: str, healthy: bool | None,
               severity: int, readings: Mapping[str, int | float]) -> None:
        labels = (namespace, pod, workload, kind)
        with self._lock:
            old = self._pods.pop((namespace, pod), None)
            if old is not None and old[0] != labels:
                self._remove(old[0])
            while len(self._pods) >= self.limit:
                _key, (evicted, _capture) = self._pods.popitem(last=False)
                self._remove(evicted)
                POD_SERIES_EVICTED.inc()
            self._pods[(namespace, pod)] = (labels, capture)
            if healthy is None:  # not analysed: an older verdict, or a 0 ("no findings"), would pass
                _drop(POD_HEALTHY, labels)  # for this capture's and silence an alert on it
                _drop(POD_SEVERITY, labels)
            else:
                POD_HEALTHY.labels(*labels).set(1 if healthy else 0)
                POD_SEVERITY.labels(*labels).set(severity)
            for name, gauge in POD_READINGS.items():
                if name in readings:
                    gauge.labels(*labels).set(readings[name])
                else:
                    _drop(gauge, labels)

    def forget_capture(self, namespace: str, capture: str) -> None:
        """Drop the series the deleted ``capture`` set last (not those a later capture replaced)."""
        with self._lock:
            for key, (labels, source) in list(self._pods.items()):
                if key[0] == namespace and source == capture:
                    del self._pods[key]
                    self._remove(labels)

    def pods(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._pods)

    @staticmethod
    def _remove(labels: tuple[str, ...]) -> None:
        for gauge in (POD_HEALTHY, POD_SEVERITY, *POD_READINGS.values()):
            _drop(gauge, labels)


def _drop(gauge: Gauge, labels: tuple[str, ...]) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:  # labels never set: prometheus-client before 0.22 raises, later ones do not
        pass


POD_HEALTH = PodHealthSeries()

_served: set[int] = set()
_lock = threading.Lock()


class _RetryCounter(logging.Handler):
    """Counts the S3 backend's "retrying" warnings: the backend reports retries only by logging
    them, and this keeps the metric without a hook in the storage layer."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING and "retrying" in str(record.msg):
            UPLOAD_RETRIES.inc()


_retry_counter = _RetryCounter()


def serve(port: int) -> None:
    """Start the ``/metrics`` HTTP server on ``port`` once per process; 0 means off."""
    with _lock:
        storage_logger = logging.getLogger("debugcap.storage.s3")
        if _retry_counter not in storage_logger.handlers:
            storage_logger.addHandler(_retry_counter)
        if port and port not in _served:
            start_http_server(port)
            _served.add(port)
