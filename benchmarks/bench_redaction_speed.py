"""Redaction speed on log-like text, and each detector's time on 1 MiB adversarial lines (issue 16).

Usage: .venv/bin/python benchmarks/bench_redaction_speed.py [--mb 64] [--repeat 5] [--base COMMIT]
                                                            [--adversarial-only] [--no-native]

Log-like text: realistic Go service logs generated deterministically (seeded): zap JSON lines, klog
lines and logfmt lines, with the harmless words of the secret vocabulary at the rates a service
prints them (token_ttl, cache_key, auth_method, URLs, "session started") and one real secret every
~2000 lines. It is redacted through LineRedactor in 1 MiB chunks, as BundleWriter feeds it:
min/median/max MB/s over ``--repeat`` runs, for this tree and (``--base``) side by side for the
redactor of an earlier commit, loaded from git. ``--no-native`` hides google-re2 so the pure-Python
prefilter is measured (the output is the same either way; the benchmark checks that too).

Adversarial: each detector's ``find`` over a 1 MiB line of each shape of
tests/unit/bundle/test_redaction_speed_paths.py (long runs of name characters, of '=', quotes,
base64, 'a:' ...): the slowest shape per detector, and the whole LineRedactor on each line. A
quadratic pattern would take minutes here; a linear one takes milliseconds to a second.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "bundle"))

MB = 1000 * 1000
_PATHS = ["/api/v1/orders", "/api/v1/users", "/healthz", "/metrics", "/api/v2/carts", "/api/v1/payments"]
_MSGS = ["request completed", "cache refresh", "reconciling", "upstream call", "batch flushed", "query done",
         "retrying request", "connection reused", "span exported", "worker idle"]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("0123456789abcdef", k=n))


def _json_line(rng: random.Random, i: int) -> str:
    status = rng.choice([200, 200, 200, 201, 204, 304, 404, 500])
    return (
        f'{{"level":"info","ts":"2026-11-23T16:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",'
        f'"caller":"server/handler.go:{100 + i % 400}","msg":"{rng.choice(_MSGS)}","method":"GET",'
        f'"path":"{rng.choice(_PATHS)}/{rng.randint(1, 99999)}","status":{status},'
        f'"duration_ms":{rng.random() * 100:.3f},"request_id":"{_hex(rng, 16)}","bytes":{rng.randint(0, 65536)}}}'
    )


def _klog_line(rng: random.Random, i: int) -> str:
    return (
        f'I1123 16:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000000:06d}       1 controller.go:{100 + i % 300}] '
        f'"{rng.choice(_MSGS).capitalize()}" object="shop/orders-{_hex(rng, 5)}" generation={rng.randint(1, 99)} '
        f'queue_depth={rng.randint(0, 40)}'
    )


def _logfmt_line(rng: random.Random, i: int) -> str:
    return (
        f'time=2026-11-23T16:{i // 60 % 60:02d}:{i % 60:02d}Z level={rng.choice(["info", "info", "debug", "warn"])} '
        f'msg="{rng.choice(_MSGS)}" component=worker items={rng.randint(0, 500)} '
        f'latency={rng.randint(1, 900)}ms trace_id={_hex(rng, 32)}'
    )


# Harmless lines that carry the secret vocabulary (the prefilter lets them through to the detectors).
_VOCAB = [
    'time=2026-11-23T16:00:00Z level=info msg="token refreshed" token_ttl=300 expires_in=3600',
    'time=2026-11-23T16:00:00Z level=debug msg="cache hit" cache_key=orders:{n} keys=12',
    '{{"level":"info","msg":"login","auth_method":"oidc","session_id":"{h}","user":"u{n}"}}',
    'I1123 16:00:00.000000       1 client.go:88] "Calling upstream" url="http://inventory.shop.svc:8080/v1/items/{n}"',
    'time=2026-11-23T16:00:00Z level=info msg="session started" user=u{n} remote=10.1.2.3:5555',
    '{{"level":"info","msg":"signing request","key_id":"k{n}","alg":"RS256"}}',
]
_SECRETS = [
    'time=2026-11-23T16:00:00Z level=debug msg="db connect" dsn="postgres://app:{h}@db.shop.svc:5432/app"',
    '{{"level":"debug","msg":"outgoing","headers":{{"Authorization":"Bearer {h}{h}"}}}}',
    'time=2026-11-23T16:00:00Z level=debug msg="config" api_key={h}{h} region=eu-west-1',
    'I1123 16:00:00.000000       1 auth.go:12] "Token issued" token="ghp_{h}{h}abcd"',
]


def generate(size: int, seed: int = 16, vocabulary: float = 0.05) -> bytes:
    """``size`` bytes of log-like text (whole lines), the same for the same seed; ``vocabulary``:
    the share of lines holding words of the secret vocabulary (harmless ones, and the secrets)."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    i = 0
    while total < size:
        roll = rng.random()
        if roll < 0.0005:
            line = rng.choice(_SECRETS).format(h=_hex(rng, 20), n=i)
        elif roll < vocabulary:
            line = rng.choice(_VOCAB).format(h=_hex(rng, 16), n=i)
        else:
            line = (_json_line, _klog_line, _logfmt_line)[i % 3](rng, i)
        lines.append(line)
        total += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()[:size]


def load_redact(commit: str | None, tmp: Path) -> ModuleType:
    """debugcap.bundle.redact of this tree, or of ``commit`` (with its redact_detectors)."""
    if commit is None:
        from debugcap.bundle import redact

        return redact
    for short in ("redact_detectors", "redact"):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:debugcap/bundle/{short}.py"],
                              check=True, capture_output=True, text=True).stdout
        text = text.replace("from debugcap.bundle import redact_detectors as detectors",
                            "import bench_base_redact_detectors as detectors")
        path = tmp / f"bench_base_{short}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"bench_base_{short}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"bench_base_{short}"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_base_redact"]


def redact_once(redact: ModuleType, data: bytes) -> tuple[float, bytes, int]:
    report = redact.RedactionReport()
    redactor = redact.LineRedactor("logs/app.log", report)
    view = memoryview(data)
    out: list[bytes] = []
    start = time.perf_counter()
    for pos in range(0, len(data), 1 << 20):
        out.append(redactor.feed(bytes(view[pos : pos + (1 << 20)])))
    out.append(redactor.close())
    wall = time.perf_counter() - start
    return wall, b"".join(out), sum(sum(c.values()) for c in report.counts.values())


def speed(args: argparse.Namespace) -> None:
    data = generate(args.mb * MB, vocabulary=args.vocabulary)
    lines = data.count(b"\n")
    print(f"log-like text: {len(data) / MB:.0f} MB, {lines} lines, {args.vocabulary:.1%} with secret vocabulary")
    variants: list[tuple[str, ModuleType]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.base:
            variants.append((f"redactor at {args.base[:10]}", load_redact(args.base, Path(tmp))))
        variants.append(("this tree", load_redact(None, Path(tmp))))
        outputs: dict[str, bytes] = {}
        print(f"{'variant':<28} {'min MB/s':>9} {'median':>9} {'max':>9} {'redactions':>11}")
        for name, module in variants:
            runs = [redact_once(module, data) for _ in range(args.repeat)]
            rates = sorted(len(data) / MB / wall for wall, _, _ in runs)
            outputs[name] = runs[0][1]
            print(f"{name:<28} {rates[0]:>9.1f} {statistics.median(rates):>9.1f} {rates[-1]:>9.1f} "
                  f"{runs[0][2]:>11}", flush=True)
        if len(set(outputs.values())) > 1:
            print("NOTE: outputs differ between variants (expected only if detectors changed)")
        else:
            print("outputs identical across variants")


def adversarial(size: int) -> None:
    from debugcap.bundle import redact
    from debugcap.bundle import redact_detectors as detectors
    from tests.unit.bundle.test_redaction_speed_paths import adversarial_lines

    lines = adversarial_lines(size)
    print(f"\nadversarial lines: {len(lines)} shapes of {size / (1 << 20):.0f} MiB; time of each detector's find")
    print(f"{'detector':<22} {'total s':>8} {'slowest s':>10}  slowest shape")
    unique = {id(d): d for d in (*detectors.TEXT_DETECTORS, *detectors.VALUE_DETECTORS)}.values()
    for detector in sorted(unique, key=lambda d: d.name):
        times = []
        for shape, line in lines:
            start = time.perf_counter()
            for _ in detector.find(line, 0, len(line)):
                pass
            times.append((time.perf_counter() - start, shape))
        worst = max(times)
        print(f"{detector.name:<22} {sum(t for t, _ in times):>8.3f} {worst[0]:>10.3f}  {worst[1]!r}", flush=True)
    times = []
    for shape, line in lines:
        start = time.perf_counter()
        redactor = redact.LineRedactor("logs/app.log", redact.RedactionReport())
        redactor.feed(line + b"\n")
        redactor.close()
        times.append((time.perf_counter() - start, shape))
    worst = max(times)
    print(f"{'LineRedactor (all)':<22} {sum(t for t, _ in times):>8.3f} {worst[0]:>10.3f}  {worst[1]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=64, help="size of the log-like text in MB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vocabulary", type=float, default=0.05,
                        help="share of lines with words of the secret vocabulary (token_ttl, cache_key, ...)")
    parser.add_argument("--base", help="also measure the redactor of this commit, side by side")
    parser.add_argument("--adversarial-only", action="store_true")
    parser.add_argument("--adversarial-mib", type=int, default=1)
    parser.add_argument("--no-native", action="store_true", help="hide google-re2: the pure-Python prefilter")
    args = parser.parse_args()
    if args.no_native:
        sys.modules["re2"] = None  # type: ignore[assignment]
    if not args.adversarial_only:
        speed(args)
    adversarial(args.adversarial_mib << 20)


if __name__ == "__main__":
    main()
