"""Prometheus metrics of the operator, served on ``/metrics`` when a port is configured.

Updated by :mod:`~debugcap.operator.captures` and :mod:`~debugcap.operator.pod_scheduling`.
Module-level because prometheus_client registers each metric once per process; :func:`serve` is
idempotent for the same reason (tests start several operators, one after another, in one process).
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

CAPTURES = Counter("debugcap_captures_total", "DebugCaptures finished, by final phase.", ["phase"])
POD_CAPTURES = Counter("debugcap_pod_captures_total", "Pods captured, by phase.", ["phase"])
DURATION = Histogram("debugcap_capture_duration_seconds", "Wall time of one DebugCapture, start to end.",
                     buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
UPLOADED_BYTES = Counter("debugcap_uploaded_bytes_total", "Bytes of bundles stored in the object store.")
UPLOAD_RETRIES = Counter("debugcap_upload_retries_total", "Upload attempts retried after a transient S3 error.")
RUNNING = Gauge("debugcap_captures_running", "Pods being captured right now.")

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
