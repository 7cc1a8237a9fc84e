"""What a Prometheus text page (``/metrics``) reveals about the Go runtime that serves it.

Callers: the ``metrics`` collector (:mod:`debugcap.collectors.metrics`), which notes these facts
for the bundle manifest's ``runtime`` map. Only the series client_golang's Go collector exports,
each straight from the runtime (``runtime.Version()``, runtime/metrics), are read:

- ``go_info{version="go1.26.8"}``: ``goVersion``
- ``go_sched_gomaxprocs_threads`` (``/sched/gomaxprocs:threads``): ``GOMAXPROCS``
- ``go_gc_gomemlimit_bytes`` (``/gc/gomemlimit:bytes``): ``GOMEMLIMIT``, in bytes, or ``off``
  for ``math.MaxInt64`` (no limit, Go's default)

``GODEBUG`` is not among them: the runtime exports only counts of non-default behaviour
(``/godebug/non-default-behavior/<name>:events``), never the setting, so it is not guessed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

# name, optional {labels}, value, optional timestamp (text exposition format 0.0.4).
_SAMPLE = re.compile(rb"^(go_info|go_sched_gomaxprocs_threads|go_gc_gomemlimit_bytes)(\{[^}]*\})?[ \t]+(\S+)")
_VERSION_LABEL = re.compile(rb'(?:^|[{,])\s*version="((?:[^"\\]|\\.)*)"')
# math.MaxInt64 written as a float64 (client_golang prints 9.223372036854776e+18).
_NO_LIMIT: Final = float(2**63 - 1)


# A release (go1.26.8, go1.26.8-X:goroutineleakprofile) or a development build, which says
# "devel go1.27-4f1a2b3 Tue Jun 4 10:00:00 2026 +0000": printable ASCII, bounded.
_GO_VERSION = re.compile(rb"(devel )?go[0-9][0-9A-Za-z.+:,_ -]{0,100}")


def runtime_facts(lines: Iterable[bytes]) -> dict[str, str]:
    """``goVersion``, ``GOMAXPROCS``, ``GOMEMLIMIT`` as far as the page's lines show them."""
    facts: dict[str, str] = {}
    for line in lines:
        if not line.startswith(b"go_"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, labels, raw = m.group(1), m.group(2) or b"", m.group(3)
        try:
            value = float(raw)
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        if name == b"go_info":
            v = _VERSION_LABEL.search(labels)
            # Only what a Go version looks like (go1.26.8, go1.26.8-X:goroutineleakprofile,
            # devel go1.27-abc): the label comes from the pod and goes into the manifest and report.
            if v and _GO_VERSION.fullmatch(v.group(1)):
                facts.setdefault("goVersion", v.group(1).decode())
        elif name == b"go_sched_gomaxprocs_threads" and value >= 1:
            facts.setdefault("GOMAXPROCS", str(int(value)))
        elif name == b"go_gc_gomemlimit_bytes" and value >= 0:
            facts.setdefault("GOMEMLIMIT", "off" if value >= _NO_LIMIT else str(int(value)))
    return facts
