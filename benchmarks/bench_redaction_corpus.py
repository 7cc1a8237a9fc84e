"""Redaction recall and false positives on the seeded corpus (issue 16), before and after.

Runs tests/unit/bundle/redaction_corpus.py through the current redactor and, side by side,
through the redactor of a base commit (``git show <base>:debugcap/bundle/redact.py`` and its
``environment.py``, loaded as modules). Prints recall and false-positive rate per kind, overall,
JSON/YAML documents that no longer parse, and MET/NOT MET against the goals (recall >= 99%,
false positives <= 1%, documents parse). Nothing here is timed.

    .venv/bin/python benchmarks/bench_redaction_corpus.py [--base COMMIT] [--examples N]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "bundle"))

import redaction_corpus as corpus  # noqa: E402

from debugcap.bundle import environment, redact  # noqa: E402

# The commit before issue 16's redaction work.
DEFAULT_BASE = "ade1458c0a04aa7289f7d4cdaba92b7b1f831b9f"
RECALL_GOAL = 0.99
FP_GOAL = 0.01


def load_old(base: str, tmp: Path) -> tuple[ModuleType, Any]:
    """The base commit's redact and environment modules, the latter importing the former."""
    names = {"redact": "debugcap_old_redact", "environment": "debugcap_old_environment"}
    modules: dict[str, ModuleType] = {}
    for short, name in names.items():
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{base}:debugcap/bundle/{short}.py"],
                              check=True, capture_output=True, text=True).stdout
        text = text.replace("from debugcap.bundle.redact import", f"from {names['redact']} import")
        path = tmp / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[short] = module
    return modules["redact"], modules["environment"].filter_environment


def measure(redact_module: ModuleType, filter_env: Any) -> dict[str, Any]:
    secrets, harmless = corpus.build()
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind: [bad, total]
    missed: dict[str, list[str]] = defaultdict(list)
    broken: list[str] = []
    for case in secrets + harmless:
        out, _ = corpus.redact_case(case, redact_module, filter_env)
        bad = (case.secret in out) if case.secret is not None else not corpus.kept_unchanged(case, out)
        key = ("secret " if case.secret is not None else "look-alike ") + case.kind
        per_kind[key][1] += 1
        if bad:
            per_kind[key][0] += 1
            missed[key].append(case.text.replace("\n", "\\n")[:160])
        if case.parse and not corpus.parses(case, out):
            broken.append(f"{case.kind}: {out[:120]!r}")
    missed_total = sum(v[0] for k, v in per_kind.items() if k.startswith("secret "))
    fp_total = sum(v[0] for k, v in per_kind.items() if k.startswith("look-alike "))
    return {"per_kind": per_kind, "missed": missed, "broken": broken,
            "recall": 1 - missed_total / len(secrets), "fp": fp_total / len(harmless),
            "secrets": len(secrets), "harmless": len(harmless), "missed_total": missed_total, "fp_total": fp_total}


def _rate(bad: int, total: int, secret: bool) -> str:
    value = (1 - bad / total) if secret else bad / total
    return f"{value:7.1%} ({bad}/{total} {'missed' if secret else 'masked'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="commit whose redactor is 'before'")
    parser.add_argument("--examples", type=int, default=2, help="failing examples printed per kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = measure(*load_old(args.base, Path(tmp)))
    new = measure(redact, environment.filter_environment)
    print(f"corpus: {new['secrets']} secrets, {new['harmless']} look-alikes (seed {corpus.SEED})")
    print(f"{'kind':42} {'before (' + args.base[:7] + ')':>30}  {'after':>30}")
    for key in sorted(new["per_kind"]):
        secret = key.startswith("secret ")
        label = "recall" if secret else "false pos."
        print(f"{key:42} {label:>10} {_rate(*old['per_kind'][key], secret):>19}  "
              f"{_rate(*new['per_kind'][key], secret):>30}")
    for name, result in (("before", old), ("after", new)):
        recall_ok = result["recall"] >= RECALL_GOAL
        fp_ok = result["fp"] <= FP_GOAL
        parse_ok = not result["broken"]
        print(f"{name:6}: recall {result['recall']:.1%} ({result['missed_total']} of {result['secrets']} survive) "
              f"{'MET' if recall_ok else 'NOT MET'}; false positives {result['fp']:.1%} ({result['fp_total']} of "
              f"{result['harmless']}) {'MET' if fp_ok else 'NOT MET'}; documents broken by masking "
              f"{len(result['broken'])} {'MET' if parse_ok else 'NOT MET'}")
    for key, examples in sorted(new["missed"].items()):
        for example in examples[: args.examples]:
            print(f"  after, {key}: {example}")
    for example in new["broken"][: args.examples]:
        print(f"  after, broken document: {example}")
    return 0 if new["recall"] >= RECALL_GOAL and new["fp"] <= FP_GOAL and not new["broken"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
