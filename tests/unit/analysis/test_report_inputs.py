"""What ``report`` reads besides profiles: a bundle whose only goroutine dump is debug=1, and the
execution trace's summary in the text and HTML reports.

Cases: the goroutine section comes from ``goroutine-debug1.txt`` when the debug=2 dump is absent,
with the dump's own total; the report of a bundle with a real goapp trace has a trace section
(JSON, text and HTML) with the GOMAXPROCS and scheduler latency the trace reader found.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from debugcap.analysis import report, traces
from debugcap.analysis.rendering import html, text
from debugcap.bundle import layout

from .test_report import STEM, _record, write_manifest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _bundle(tmp_path: Path, files: dict[str, Path]) -> Path:
    stem = tmp_path / STEM
    for rel, src in files.items():
        (stem / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, stem / rel)
    write_manifest(stem, [_record("pprof-goroutine", "ok", files=tuple(files))])
    return stem


def test_a_debug1_dump_alone_gives_the_goroutine_section(tmp_path: Path) -> None:
    dump = FIXTURES / "goapp-dumps" / "goroutine-debug1.txt"
    stem = _bundle(tmp_path, {layout.PPROF_GOROUTINE_DEBUG1: dump})
    rep = report.build(stem)
    first = dump.read_text().splitlines()[0]
    assert rep.goroutines is not None, rep.problems
    assert first == f"goroutine profile: total {rep.goroutines.total}"
    assert rep.goroutines.total > 0 and rep.goroutines.groups
    assert "Goroutines:" in text.render_report(rep)


def test_the_trace_summary_is_a_section_of_the_report(tmp_path: Path) -> None:
    trace = FIXTURES / "goapp-trace" / "trace.out"
    stem = _bundle(tmp_path, {layout.TRACE: trace})
    rep = report.build(stem)
    assert rep.trace is not None, rep.problems
    expected = traces.load(trace).summary
    assert rep.trace.gomaxprocs == expected.gomaxprocs and rep.trace.events == expected.events
    assert rep.as_dict()["trace"]["gomaxprocs"] == expected.gomaxprocs
    page = text.render_report(rep)
    assert "Execution trace:" in page and "scheduler latency" in page and "GOMAXPROCS" in page
    assert "<h2>Execution trace</h2>" in html.render_report(rep, [])


def test_a_trace_over_the_report_limit_is_left_to_the_trace_command(tmp_path: Path, monkeypatch) -> None:
    trace = FIXTURES / "goapp-trace" / "trace.out"
    monkeypatch.setattr(traces, "REPORT_TRACE_LIMIT", trace.stat().st_size - 1)
    rep = report.build(_bundle(tmp_path, {layout.TRACE: trace}))
    assert rep.trace is None and not rep.problems and not rep.hints
    assert any("kubectl debugcap trace" in n and layout.TRACE in n for n in rep.notes), rep.notes
    # A fact about the reading, not the evidence: no finding (the operator lists findings per pod).
    assert not [f for f in rep.findings if layout.TRACE in f.message], rep.findings
    assert "Notes:" in text.render_report(rep)
    # Told to read no trace at all (the operator's limit 0): nothing to say.
    silent = report.build(_bundle(tmp_path / "silent", {layout.TRACE: trace}), trace_limit=0)
    assert silent.trace is None and not silent.notes and not silent.hints


def test_passes_on_several_threads_leave_the_cyclic_collector_as_they_found_it() -> None:
    """The interleaving that left it off for good: a second pass begins while the first runs (it
    sees the collector off) and ends after it (so it must not be the one that decides)."""
    import gc

    assert gc.isenabled()
    first, second = traces._no_cyclic_gc(), traces._no_cyclic_gc()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second pass still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with traces._no_cyclic_gc():
            pass
        assert not gc.isenabled()  # off before: stays off
    finally:
        gc.enable()
