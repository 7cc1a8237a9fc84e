"""Templates as data: the shipped templates, expansion, and the errors users see.

Cases: every shipped template loads and only uses known collectors; defaults match the
documented ones; go-heap takes the heap first and nothing that lasts or runs in the container;
go-vitals takes only quick GETs;
overrides are typed (strings from -p are parsed); unknown templates, parameters and collectors,
wrong types and out-of-range values name the template, the parameter and the valid choices;
broken template files are refused at load time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugcap import templates
from debugcap.errors import ConfigError

COLLECTORS = frozenset(
    {
        "ps", "open-files", "sockets", "disk", "proc-status", "fd-count", "resolv-conf", "environment",
        "deleted-files", "pprof-cpu", "pprof-heap", "pprof-allocs", "pprof-goroutine", "pprof-block",
        "pprof-mutex", "pprof-threadcreate", "trace", "expvar", "metrics", "logs", "pod-yaml", "events",
        "node-conditions", "go-leak-snapshots", "pprof-goroutineleak", "flight-recorder",
    }
)  # fmt: skip
GO_ENDPOINTS = {
    "pprof-cpu", "pprof-heap", "pprof-allocs", "pprof-goroutine", "pprof-block", "pprof-mutex",
    "pprof-threadcreate", "trace", "expvar", "metrics", "pprof-goroutineleak", "flight-recorder",
}  # fmt: skip


def test_shipped_templates_load_and_use_known_collectors() -> None:
    names = [t.name for t in templates.list_templates()]
    assert names == ["debug-full", "disk-usage", "go-heap", "go-leak", "go-profile", "go-vitals", "network-trace"]
    for template in templates.list_templates():
        templates.check_collectors(template, COLLECTORS)
        assert template.description


def test_debug_full_uses_every_one_shot_collector_and_documented_defaults() -> None:
    expanded = templates.expand("debug-full", {}, collectors=COLLECTORS)
    assert set(expanded.collectors) == COLLECTORS - {"go-leak-snapshots"}
    assert expanded.parameters["cpu_seconds"] == 30 and expanded.parameters["trace_seconds"] == 5
    steps = {s.collector: s for s in expanded.steps}
    assert steps["pprof-cpu"].params == {"seconds": 30}
    assert {s.collector for s in expanded.steps if s.window == "profile"} == {
        "pprof-cpu",
        "pprof-goroutine",
        "trace",
    }


def test_go_vitals_is_a_light_sweep_of_quick_gets_that_the_sweep_trend_can_read() -> None:
    # Only quick GETs of the pprof port: no window (nothing lasts), no command in the container,
    # no read through the API server; and what the trend compares: a goroutine dump with the
    # total (debug=1), memstats for the heap in use.
    expanded = templates.expand("go-vitals", {}, collectors=COLLECTORS)
    assert [s.collector for s in expanded.steps] == ["pprof-goroutine", "pprof-heap", "expvar", "metrics"]
    assert set(expanded.collectors) <= GO_ENDPOINTS - {"pprof-cpu", "trace", "flight-recorder"}
    assert not any(s.window for s in expanded.steps)
    steps = {s.collector: s for s in expanded.steps}
    assert steps["pprof-goroutine"].params == {"formats": ["debug1"]}
    assert steps["pprof-heap"].params == {"gc": False}


def test_go_profile_covers_every_go_endpoint() -> None:
    assert set(templates.expand("go-profile").collectors) == GO_ENDPOINTS


def test_templates_with_a_trace_step_take_no_second_trace_for_the_flight_recorder() -> None:
    for name in ("debug-full", "go-profile"):
        steps = {s.collector: s for s in templates.expand(name).steps}
        assert "trace" in steps and steps["flight-recorder"].params == {"path": "", "fallback_seconds": 0}
        assert steps["flight-recorder"].window is None  # its snapshot is of the seconds before the capture
    custom = templates.expand("debug-full", {"flight_recorder_path": "/internal/fr"})
    assert {s.collector: s for s in custom.steps}["flight-recorder"].params["path"] == "/internal/fr"


def test_network_trace_and_disk_usage_contents() -> None:
    network = templates.expand("network-trace")
    assert network.collectors == ("sockets", "resolv-conf", "pprof-goroutine", "trace")
    assert network.steps[0].params == {"state_counts": True}
    disk = templates.expand("disk-usage")
    assert disk.collectors == ("disk", "deleted-files")
    assert disk.steps[0].params == {"inodes": True, "du_top": 20, "du_path": "/"}


def test_go_heap_takes_the_heap_first_and_nothing_that_lasts_or_runs_in_the_container() -> None:
    """The DebugTrigger's template for memory and restart signals: the heap before an OOM kill, the
    dead container's logs and exit reason after one."""
    heap = templates.expand("go-heap", {"log_lines": "50"})
    assert heap.collectors == ("pprof-heap", "pprof-goroutine", "expvar", "metrics", "logs", "pod-yaml")
    steps = {s.collector: s for s in heap.steps}
    assert steps["pprof-heap"].params == {"gc": False}  # no full GC of a heap near its limit first
    assert steps["pprof-goroutine"].params == {"formats": ["proto", "debug1"]}  # no slow debug=2 dump
    assert steps["logs"].params == {"lines": 50, "previous": True}
    assert all(s.window is None and not s.params.get("seconds") for s in heap.steps)
    assert "memory and restart" in heap.description


def test_go_leak_defaults_and_typed_overrides() -> None:
    default = templates.expand("go-leak")
    assert default.steps[0].params == {
        "snapshots": 3,
        "interval_seconds": 60,
        "profiles": ["heap", "goroutine"],
        "gc": True,
    }
    assert default.steps[1].collector == "pprof-goroutineleak"
    custom = templates.expand("go-leak", {"snapshots": "5", "interval_seconds": 30})
    assert custom.steps[0].params["snapshots"] == 5 and custom.steps[0].params["interval_seconds"] == 30
    assert custom.parameters == {"snapshots": 5, "interval_seconds": 30}


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("debug-ful", {}, r'unknown template "debug-ful"; did you mean "debug-full"\? available templates: '),
        (
            "debug-full",
            {"cpu_secs": 5},
            r'template "debug-full" has no parameter "cpu_secs"; did you mean "cpu_seconds"\? '
            r"valid parameters: cpu_seconds, du_top, flight_recorder_path, log_lines, trace_seconds",
        ),
        (
            "debug-full",
            {"cpu_seconds": "ten"},
            r'template "debug-full": parameter "cpu_seconds" must be an integer from 1 to 300, got \'ten\'',
        ),
        ("debug-full", {"cpu_seconds": True}, r'parameter "cpu_seconds" must be an integer'),
        ("debug-full", {"cpu_seconds": 2.5}, r'parameter "cpu_seconds" must be an integer'),
        ("go-leak", {"snapshots": 1}, r'"go-leak": parameter "snapshots" must be an integer from 2 to 100'),
        ("disk-usage", {"du_path": 7}, r'parameter "du_path" must be a string'),
    ],
    ids=["no-template", "no-param", "not-a-number", "bool-for-int", "fraction", "below-min", "wrong-type"],
)  # fmt: skip
def test_expansion_errors_name_template_parameter_and_choices(
    name: str, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        templates.expand(name, overrides)


def test_unregistered_collector_is_named_with_the_registry() -> None:
    with pytest.raises(
        ConfigError,
        match=r'step 1 uses collector "disk", which is not registered; .*registered collectors: ps',
    ):
        templates.expand("disk-usage", collectors={"ps"})


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: t\nsteps: []\n", "steps must be a non-empty list"),
        (
            "name: t\nsteps:\n  - collector: ps\n    params: {n: '${missing}'}\n",
            r'refers to "\$\{missing\}", which is not a parameter',
        ),
        (
            "name: t\nparameters:\n  n: {type: duration, default: 1}\nsteps: [{collector: ps}]\n",
            "has type 'duration'; valid types: int, float, bool, str",
        ),
        (
            "name: t\nparameters:\n  n: {type: int, default: 0, min: 1}\nsteps: [{collector: ps}]\n",
            'default of parameter "n" must be an integer of at least 1',
        ),
        ("name: t\nsteps: [{collector: ps, when: always}]\n", r"unknown keys \['when'\]"),
        ("name: other\nsteps: [{collector: ps}]\n", 'declares name "other"'),
        ("name: t\nsteps: [{collector: ps\n", "not valid YAML"),
    ],
    ids=["no-steps", "bad-reference", "bad-type", "bad-default", "unknown-key", "name-mismatch", "bad-yaml"],
)  # fmt: skip
def test_broken_template_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    directory = _write(tmp_path, "t", text)
    with pytest.raises(ConfigError, match=message):
        templates.load_template("t", directory=directory)  # type: ignore[arg-type]


def test_choices_and_bool_parameters(tmp_path: Path) -> None:
    directory = _write(
        tmp_path,
        "t",
        "name: t\nparameters:\n  mode: {type: str, default: fast, choices: [fast, full]}\n"
        "  gc: {type: bool, default: false}\nsteps:\n  - collector: ps\n"
        "    params: {mode: '${mode}', gc: '${gc}'}\n",
    )
    expanded = templates.expand("t", {"gc": "yes", "mode": "full"}, directory=directory)  # type: ignore[arg-type]
    assert expanded.steps[0].params == {"mode": "full", "gc": True}
    with pytest.raises(ConfigError, match='parameter "mode" must be one of fast, full'):
        templates.expand("t", {"mode": "slow"}, directory=directory)  # type: ignore[arg-type]


def test_templates_are_read_by_libyaml(pure_python_yaml_loads: list[object]) -> None:
    """Every capture reads its template: the pure-Python loader cost a sweep ~0.6 ms per pod (issue 17)."""
    text = (Path(templates.__file__).parent / "templates" / "go-vitals.yaml").read_text()
    assert templates.parse_template(text, source="go-vitals.yaml").name == "go-vitals"
    assert pure_python_yaml_loads == []
