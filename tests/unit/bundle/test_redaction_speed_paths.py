"""The fast paths of redaction give the output of the plain one (issue 16), and every detector
gives the right output on 1 MiB adversarial lines.

LineRedactor shows the detectors only the lines the RE2 prefilter picks (redact_prefilter), reads
gates with RE2, and the name=value detectors skip to the first name word of a window. Each is
checked here against the plain path (no prefilter, gates read by Python's re), byte for byte and
record for record, on the corpus, on log-like text and on random mixtures of both; and each
detector's trigger against what it finds. Nothing here is timed: benchmarks/bench_redaction_speed.py
prints how long each detector takes on these lines.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debugcap.bundle import redact, redact_prefilter
from debugcap.bundle import redact_detectors as detectors

from . import redaction_corpus as corpus

SECRETS, HARMLESS = corpus.build()
TEXTS = [case.text for case in SECRETS + HARMLESS]
_UNIQUE = sorted({id(d): d for d in (*detectors.TEXT_DETECTORS, *detectors.VALUE_DETECTORS)}.values(),
                 key=lambda d: (d.name, d.trigger or ""))


def adversarial_lines(n: int) -> list[tuple[bytes, bytes]]:
    """(shape, line of ``n`` bytes): long runs of what a pattern's prefix accepts, with no end
    where it wants one (shared with benchmarks/bench_redaction_speed.py)."""
    pem = b"-----BEGIN PRIVATE " + b"KEY-----"
    units = [
        b"a", b"A1", b"a-", b"a.", b"a_", b"a=", b"=", b"a: ", b"a:", b'"a":', b'"', b"'", b"\\", b'"\\', b" ",
        b"\t", b"-", b"--a ", b"-p", b"-a ", b"-u a:", b"x://", b"x://:", b"a:a@", b"@", b"eyJ", b"eyJaaaaaaaa.",
        b"AKIA", b"ghp_", b"xoxb-", b"SK0", b"hvs.", b"SG.", b"whsec_", b"sk_live_", b"password=", b"password ",
        b"token=", b"token ", b"a_token=", b"key: ", b'"token":"', b"--token ", b'"--token", "',
        b"machine a ", b"login a ", b"bearer ", b"authorization: basic ", b"name:", b'"name":"a",', b"{",
        b'{"', b"[", b"%3D", b"mysql -p", b"redis-cli -a ", b"sshpass -p ", pem, b"code=", b"<a>", b"<password>a",
        b"vault login ", b"a:=", b"a=>", b"docker login -p ", b"QUJDRGVmZ2g0NTY3", b"hooks.slack.com/",
    ]
    lines = [(unit, (unit * (n // len(unit) + 1))[:n]) for unit in units]
    return lines + [(pem + b"A...", pem + b"A" * n)]


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain path: no line prefilter, gates read by Python's re."""
    monkeypatch.setattr(redact, "_TEXT_PREFILTER", None)
    monkeypatch.setattr(redact_prefilter, "gate_search", lambda gate: gate)


def _redact(data: bytes, file: str = "logs/app.log", chunk: int = 1 << 20,
            block: int = 256 * 1024) -> tuple[bytes, list[object], dict[str, dict[str, int]]]:
    report = redact.RedactionReport(max_records_per_file=10**9)
    redactor = redact.LineRedactor(file, report, block_size=block)
    out = [redactor.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)] + [redactor.close()]
    return b"".join(out), list(report.records), report.counts_dict()


def _both(monkeypatch: pytest.MonkeyPatch, data: bytes, **kwargs: object) -> None:
    fast = _redact(data, **kwargs)  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        _plain(m)
        plain = _redact(data, **kwargs)  # type: ignore[arg-type]
    assert fast[0] == plain[0]
    assert fast[1:] == plain[1:]


def _log_text(seed: int, lines: int) -> bytes:
    """Log lines of the three usual shapes with corpus texts among them, as a capture meets them."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(lines):
        roll = rng.random()
        if roll < 0.15:
            out.append(rng.choice(TEXTS))
        elif roll < 0.4:
            out.append(f'{{"level":"info","msg":"request","path":"/api/v1/{i}","status":200,"req":"{i:x}"}}')
        elif roll < 0.7:
            out.append(f'time=2026-11-23T16:00:00Z level=info msg="cache refresh" items={i} latency={i % 90}ms')
        else:
            out.append(f'I1123 16:00:00.000000       1 controller.go:{i}] "Reconciling" object="shop/orders-{i}"')
    return ("\n".join(out) + "\n").encode()


def test_re2_is_there_and_the_prefilter_is_on() -> None:
    # Without google-re2 everything still works, at the speed of before; CI has it (a dependency).
    assert redact._TEXT_PREFILTER is not None
    assert all(d.trigger for d in detectors.TEXT_DETECTORS)


def test_the_prefilter_keeps_trigger_lines_and_the_line_after_each() -> None:
    assert redact._TEXT_PREFILTER is not None
    text = b"a=1\nb=2\nx password=1\nc=3\nd=4\ne=5\nf token\n"
    runs = redact._TEXT_PREFILTER.candidates(text)
    assert [text[s:e] for s, e in runs] == [b"x password=1\nc=3\n", b"f token\n"]
    assert redact._TEXT_PREFILTER.candidates(b"a=1\nb=2\n") == []
    # Adjacent trigger lines make one run; a trigger on the last line without a break ends at the end.
    assert redact._TEXT_PREFILTER.candidates(b"key\nkey\nz\nq\nkey") == [(0, 10), (12, 15)]


def test_put_back_puts_each_run_back_in_its_place() -> None:
    data = b"a\nb1\nc\nd2\ne"
    runs = [(2, 5), (7, 11)]
    assert redact_prefilter.put_back(data, runs, b"B***\nD***\ne") == b"a\nB***\nc\nD***\ne"


@pytest.mark.parametrize("case", SECRETS + HARMLESS, ids=lambda c: c.kind)
def test_each_detector_finds_only_on_its_trigger_lines(case: corpus.Case) -> None:
    """The promise the prefilter rests on, with Python's re and with RE2."""
    import re2

    data = case.text.encode()
    lowered = data.lower()
    lines = lowered.split(b"\n")
    for detector in detectors.TEXT_DETECTORS:
        assert detector.trigger is not None
        triggers = (re.compile(detector.trigger.encode()), re2.compile(detector.trigger.encode()))
        # As the redactor runs it: a gated detector over the lines of its gate (and the next).
        windows = [(0, len(data))] if detector.gate is None else redact._gated_lines(detector.gate, lowered)
        for start, _ in (span for low, high in windows for span in detector.find(data, low, high)):
            line = data.count(b"\n", 0, start)
            for trigger in triggers:
                assert any(trigger.search(lines[i]) for i in (line, line - 1) if i >= 0), (detector.name, case.text)


@pytest.mark.parametrize("file", ["logs/app.log", "k8s/pod.yaml", "metrics/expvar.json", "proc/ps.txt"])
def test_the_corpus_comes_out_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch, file: str) -> None:
    data = ("\n".join(TEXTS) + "\n").encode()
    _both(monkeypatch, data, file=file)
    # Small blocks: read-only context and cuts at every size of line.
    _both(monkeypatch, data, file=file, chunk=4096, block=8192)


@pytest.mark.parametrize("seed", range(4))
def test_log_like_text_comes_out_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    data = _log_text(seed, 6000)
    _both(monkeypatch, data, chunk=65536 + seed * 977, block=65536)


_FRAGMENTS = st.sampled_from(
    [t[:80] for t in TEXTS[::7]] + [
        "password=", "token", " ", "\n", "- name: DB_PASSWORD\n  value: hunter2x\n", '"--password",\n  "pw1"',
        "--code abc123def456ghi789jkl", "code=", "key", "=", ":", '"', "'", "{", "}", ",", "msg=", "a",
        "Authorization: Bearer abcdefgh12345", "x://u:p@h", "<password>pw</password>", "-u user:pw",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40), st.integers(min_value=64, max_value=4096))
def test_random_mixtures_come_out_the_same_on_both_paths(parts: list[str], block: int) -> None:
    data = "".join(parts).encode()
    with pytest.MonkeyPatch.context() as m:
        _both(m, data, chunk=block // 2 + 1, block=block)


@pytest.mark.parametrize("detector", _UNIQUE, ids=lambda d: d.name)
def test_every_detector_is_right_on_1_mib_adversarial_lines(detector: detectors.Detector) -> None:
    # Completion plus what it finds: spans in order, inside the line, apart, holding no line
    # break, and no mask on a run of name characters, blanks or separators alone.
    harmless = {b"a", b"A1", b"a-", b"a.", b"a_", b"=", b" ", b"\t", b"-", b"{", b"[", b"@", b"\\"}
    for shape, line in adversarial_lines(1 << 20):
        spans = list(detector.find(line, 0, len(line)))
        assert spans == sorted(spans)
        assert all(0 <= s < e <= len(line) for s, e in spans)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))
        if shape in harmless:
            assert not spans, (detector.name, shape)


def test_the_line_redactor_is_the_same_on_both_paths_for_adversarial_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole path (prefilter, gates, blocks, PEM state, forced cuts of a line over 1 MiB).
    for shape, line in adversarial_lines(1 << 18):
        fast = _redact(line + b"\n" + line)
        with monkeypatch.context() as m:
            _plain(m)
            plain = _redact(line + b"\n" + line)
        assert fast == plain, shape
        assert fast[0].count(b"\n") == 1, shape


_OWN_RUNS = [d for d in detectors.TEXT_DETECTORS if d.gate is None]


@pytest.mark.parametrize("detector", _OWN_RUNS, ids=lambda d: d.name)
def test_a_detector_without_a_gate_finds_the_same_in_its_own_trigger_runs(detector: detectors.Detector) -> None:
    """Inside the candidate lines such a detector reads only its own trigger's runs: every match
    starts on a line holding its trigger and ends there or on the next line, so the matches are
    those over the whole text (on the corpus, log-like text and the adversarial lines)."""
    assert detector.trigger is not None
    own = redact_prefilter.LinePrefilter.of_trigger(detector.trigger)
    assert own is not None
    texts = [("\n".join(TEXTS) + "\n").encode(), _log_text(7, 3000)]
    texts += [line + b"\n" + line for _, line in adversarial_lines(1 << 14)]
    for data in texts:
        lowered = data.lower()
        whole = list(detector.find(data, 0, len(data)))
        runs = own.candidates(lowered)
        assert [span for low, high in runs for span in detector.find(data, low, high)] == whole, detector.name


def test_the_direct_re2_search_finds_what_python_re_finds() -> None:
    trigger = "|".join(f"(?:{d.trigger})" for d in detectors.TEXT_DETECTORS if d.trigger)
    searcher = redact_prefilter._compile(trigger.encode())
    assert isinstance(searcher, redact_prefilter._DirectSearcher)
    plain = re.compile(trigger.encode())
    text = _log_text(3, 2000).lower()
    for pos in (*range(0, len(text), 997), len(text), len(text) + 5):
        fast, slow = searcher.search(text, pos), plain.search(text, min(pos, len(text)))
        assert (fast and (fast.start(), fast.end())) == (slow and slow.span()), pos


@pytest.mark.parametrize("line", [
    b"url=ftp://\xffuser:pw12345@db.internal/x",  # not UTF-8 in the user name: RE2's UTF-8 mode missed it
    b"<password>a\xffb</password>",
    b"X \xc3\xa9 Authorization: Bearer AbCdEf0123456789",
    b"FTP://USER:PW12345@HOST and TOKEN_SECRET=Zq8w1x2c3v4b5n6m",
])
def test_bytes_that_are_not_utf8_or_lowercase_come_out_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, line: bytes
) -> None:
    _both(monkeypatch, b"a=1\n" * 50 + line + b"\n" + b"b=2\n" * 50)
    assert _redact(line + b"\n")[0] != line + b"\n"
