"""Redaction measured on the seeded corpus (issue 16): recall, false positives, documents that
still parse, reports without values, and every detector linear on adversarial lines.

The corpus (redaction_corpus.py) holds FAKE secrets and harmless look-alikes in the channels a
capture writes; benchmarks/bench_redaction_corpus.py prints the same figures per kind, beside
those of the redactor before issue 16. Nothing here is timed: the adversarial lines only have to
complete (a quadratic pattern on 1 MiB would not, in any reasonable time).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from debugcap.bundle import environment, profile_masking, redact
from debugcap.bundle import redact_detectors as detectors

from . import redaction_corpus as corpus

RECALL_GOAL = 0.99
FP_GOAL = 0.01
SECRETS, HARMLESS = corpus.build()


def _failures(cases: list[corpus.Case], failed: list[corpus.Case]) -> str:
    by_kind: dict[str, list[str]] = defaultdict(list)
    for case in failed:
        by_kind[case.kind].append(case.text.replace("\n", "\\n")[:200])
    totals: dict[str, int] = defaultdict(int)
    for case in cases:
        totals[case.kind] += 1
    return "\n".join(
        f"  {kind}: {len(texts)} of {totals[kind]}, e.g. {texts[0]}" for kind, texts in sorted(by_kind.items())
    )


def test_the_corpus_is_big_enough_and_varied() -> None:
    assert len(SECRETS) >= 200 and len(HARMLESS) >= 200
    assert len({c.kind for c in SECRETS}) >= 20
    assert {c.channel for c in SECRETS} >= {"log", "ps", "env", "pod-yaml", "expvar", "metrics", "pprof-label"}
    assert corpus.build() == (SECRETS, HARMLESS), "the corpus must be deterministic"


def test_recall_is_at_least_99_percent() -> None:
    missed = [c for c in SECRETS if c.secret in corpus.redact_case(c, redact, environment.filter_environment)[0]]
    recall = 1 - len(missed) / len(SECRETS)
    assert recall >= RECALL_GOAL, f"recall {recall:.1%}; secrets that survive, per kind:\n{_failures(SECRETS, missed)}"


def test_false_positives_are_at_most_1_percent() -> None:
    masked = [
        c for c in HARMLESS
        if not corpus.kept_unchanged(c, corpus.redact_case(c, redact, environment.filter_environment)[0])
    ]
    rate = len(masked) / len(HARMLESS)
    assert rate <= FP_GOAL, f"false positives {rate:.1%}; look-alikes changed, per kind:\n{_failures(HARMLESS, masked)}"


def test_masked_json_and_yaml_documents_still_parse() -> None:
    documents = [c for c in SECRETS + HARMLESS if c.parse]
    assert len(documents) >= 50
    broken = [c for c in documents if not corpus.parses(c, corpus.redact_case(c, redact,
                                                                             environment.filter_environment)[0])]
    assert not broken, f"documents that no longer parse:\n{_failures(documents, broken)}"


def test_the_report_never_contains_a_value() -> None:
    for case in SECRETS:
        out, report = corpus.redact_case(case, redact, environment.filter_environment)
        assert case.secret is not None
        if case.channel != "env" or redact.MASK_TEXT in out:
            # (A variable outside the allowlist is dropped, which is not a redaction.)
            assert report.records, f"{case.kind}: masked without a record"
        assert case.secret not in repr(report.records) + repr(report.counts_dict()), case.kind
        assert all(r.redactor and r.file for r in report.records)


def _adversarial(n: int) -> list[bytes]:
    """Lines built to make a backtracking pattern rescan: long runs of what a pattern's prefix
    accepts, with no end where it wants one."""
    pem = b"-----BEGIN PRIVATE " + b"KEY-----"
    units = [
        b"a", b"A1", b"a-", b"a.", b"a_", b"a=", b"a: ", b'"a":', b'"', b"'", b"\\", b'"\\', b" ", b"\t", b"-",
        b"--a ", b"-p", b"-a ", b"-u a:", b"x://", b"x://:", b"a:a@", b"@", b"eyJ", b"eyJaaaaaaaa.", b"AKIA",
        b"ghp_", b"xoxb-", b"SK0", b"hvs.", b"SG.", b"whsec_", b"sk_live_", b"password=", b"password ",
        b"machine a ", b"login a ", b"bearer ", b"authorization: basic ", b"- name: a\n", b"name:", b"{",
        b'{"', b"[", b"%3D", b"mysql -p", b"redis-cli -a ", b"sshpass -p ", pem, b"code=",
        b"<a>", b"<password>a", b"vault login ", b"a:=", b"a=>", b"docker login -p ",
    ]
    return [(unit * (n // len(unit) + 1))[:n] for unit in units] + [pem + b"A" * n]


@pytest.mark.parametrize("detector", sorted({*detectors.TEXT_DETECTORS, *detectors.VALUE_DETECTORS},
                                            key=lambda d: (d.name, id(d))), ids=lambda d: d.name)
def test_every_detector_completes_on_a_1_mib_adversarial_line(detector: detectors.Detector) -> None:
    # Completion is the assertion; how long it takes is measured by the benchmark, not here.
    for line in _adversarial(1 << 20):
        for _ in detector.find(line, 0, len(line)):
            pass


def test_the_line_redactor_completes_on_adversarial_lines() -> None:
    # The whole path (hints, gates, blocks, PEM state); 256 KiB keeps the suite quick.
    for line in _adversarial(1 << 18):
        redactor = redact.LineRedactor("logs/app.log", redact.RedactionReport())
        assert redactor.feed(line + b"\n") + redactor.close()


def _string_table(strings: list[bytes]) -> bytes:
    """A protobuf of pprof's Profile holding only its string_table (field 6)."""
    out = bytearray()
    for text in strings:
        out += b"\x32"
        size = len(text)
        while size >= 0x80:
            out.append(size & 0x7F | 0x80)
            size >>= 7
        out.append(size)
        out += text
    return bytes(out)


def test_pprof_label_secrets_are_masked_inside_a_profile_same_length() -> None:
    # The corpus' pprof-label channel calls mask_same_length on one string; here the whole walk.
    labels = [c for c in SECRETS if c.channel == "pprof-label"]
    harmless = [c for c in HARMLESS if c.channel == "pprof-label"]
    strings = [b"", b"label-key"] + [c.text.encode() for c in labels + harmless]
    raw = _string_table(strings)
    report = redact.RedactionReport()
    out = b"".join(profile_masking.mask_profile([raw], "pprof/cpu.pb.gz", report))
    assert len(out) == len(raw)
    assert not [c.kind for c in labels if c.secret and c.secret.encode() in out]
    assert all(c.text.encode() in out for c in harmless)
    assert len(report.records) >= len(labels)
