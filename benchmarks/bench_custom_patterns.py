r"""What admin redaction patterns cost (debugcap.bundle.redact_custom).

Prints, as min/median/max MB/s over a few runs (asserts nothing): the line redactor over ~25 MB of
log-like text with the built-in detectors only, then with 1 and 10 custom patterns; each set of
custom patterns' own RE2 passes alone; RE2 on ``(a+)+b`` over 1 MiB of ``a`` (which Python's
``re`` would not finish); and ``acme=(?P<secret>\w+)(?:;[^\n]*sig=\w+)?`` over lines of
``acme=x;`` of 64 KiB to 1 MiB, CPU seconds per size (a finditer over the whole line re-read the
rest of it after each match: ~100 s at 1 MiB; the bounded windows keep it linear, so the seconds
grow as the size does).

Run: .venv/bin/python benchmarks/bench_custom_patterns.py
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence

from debugcap.bundle import redact, redact_custom, redact_detectors

TOKEN = "acme_" + "Q7x9" * 8
WORDS = ("GET POST /api/v1/orders user=42 status=200 latency_ms=12 cache_key=abc trace_id=7f3a "
         "region=eu-west-1 ok").split()
PIECE = 1 << 20


def corpus(lines: int = 200_000) -> bytes:
    rng = random.Random(1)
    out = []
    for i in range(lines):
        line = " ".join(rng.choice(WORDS) for _ in range(12))
        out.append(line + (f" {TOKEN}" if i % 1000 == 0 else ""))
    return ("\n".join(out) + "\n").encode()


def rates(data: bytes, run: Callable[[], object], times: int) -> str:
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    mbs = [len(data) / 1e6 / s for s in seconds]
    return f"MB/s min {min(mbs):.1f} median {statistics.median(mbs):.1f} max {max(mbs):.1f}"


def redactor(data: bytes, extra: Sequence[redact_detectors.Detector]) -> Callable[[], object]:
    pieces = [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    return lambda: b"".join(redact.redact_stream(pieces, "logs/app.log", redact.RedactionReport(), extra))


def main() -> None:
    data = corpus()
    acme = [("acme-token", "acme_[A-Za-z0-9]{32}")]
    sets = {
        "built-in only": (),
        "1 pattern": redact_custom.compile_patterns(acme, where="bench"),
        "10 patterns": redact_custom.compile_patterns(
            [(f"p{i}", f"tok{i}_[A-Za-z0-9]{{32}}") for i in range(9)] + acme, where="bench"),
    }
    print(f"input {len(data) / 1e6:.1f} MB")
    for name, extra in sets.items():
        print(f"redactor, {name:14} {rates(data, redactor(data, extra), 3)}")
    for name, extra in list(sets.items())[1:]:
        def passes(extra: Sequence[redact_detectors.Detector] = extra) -> int:
            return sum(1 for d in extra for _ in d.find(data, 0, len(data)))
        print(f"RE2 passes alone, {name:11} {rates(data, passes, 5)}")
    line = b"a" * (1 << 20)
    [nested] = redact_custom.compile_patterns([("nested", "(?:a+)+b")], where="bench")
    start = time.perf_counter()
    found = list(nested.find(line, 0, len(line)))
    print(f"(a+)+b over 1 MiB of 'a': {time.perf_counter() - start:.4f} s, {len(found)} matches")
    optional = redact_custom.compile_patterns([("sig", "acme=(?P<secret>\\w+)(?:;[^\\n]*sig=\\w+)?")], where="bench")
    for kib in (64, 256, 1024):
        line = b"acme=x;" * (kib * 1024 // 7) + b"\n"
        pieces = [line[i : i + 65536] for i in range(0, len(line), 65536)]
        cpu = []
        for _ in range(3):
            start = time.process_time()
            b"".join(redact.redact_stream(pieces, "logs/app.log", redact.RedactionReport(), optional))
            cpu.append(time.process_time() - start)
        print(f"optional tail over a {kib:4} KiB line of 'acme=x;': CPU s min {min(cpu):.2f} "
              f"median {statistics.median(cpu):.2f} max {max(cpu):.2f}")


if __name__ == "__main__":
    main()
