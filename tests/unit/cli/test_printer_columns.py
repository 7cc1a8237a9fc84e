"""The one printer of `get`: the CRDs' additionalPrinterColumns evaluated as the API server evaluates
them (JSONPath, cell types, ages), laid out as kubectl's tabwriter lays them out, and -o name/json/yaml."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap.kubectl_plugin import columns, jsonpath
from debugcap.kubectl_plugin.options import print_objects, table_lines

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _stamp(ago: timedelta) -> str:
    return f"{NOW - ago:%Y-%m-%dT%H:%M:%SZ}"


CAPTURE: dict[str, Any] = {
    "metadata": {"name": "api-heap", "namespace": "shop", "creationTimestamp": _stamp(timedelta(hours=3))},
    "spec": {"template": "go-heap", "target": {"pod": "api-1"}, "firing": {"reason": "memoryPercentOfLimit"}},
    "status": {"phase": "Completed", "startTime": _stamp(timedelta(minutes=5, seconds=30)),
               "expiresAt": _stamp(-timedelta(days=1)), "message": "1 of 1 pods captured\nsecond line",
               "summary": {"unhealthy": 1, "findings": 3},
               "conditions": [{"type": "Healthy", "status": "False"}, {"type": "Ready", "status": "True"}]}}
SCHEDULE: dict[str, Any] = {
    "metadata": {"name": "nightly", "namespace": "shop", "creationTimestamp": _stamp(timedelta(days=9))},
    "spec": {"schedule": "0 3 * * *", "suspend": False},
    "status": {"lastScheduleTime": _stamp(timedelta(hours=9)), "lastRun": {"capture": "nightly-1", "healthy": 2,
                                                                           "unhealthy": 0}}}
TRIGGER: dict[str, Any] = {
    "metadata": {"name": "pre-oom", "namespace": "shop", "creationTimestamp": _stamp(timedelta(seconds=42))},
    "spec": {"suspend": True},
    "status": {"pods": 10, "firedTotal": 20, "conditions": [{"type": "Ready", "status": "True"}]}}


def _cells(resource: columns.Resource, obj: dict[str, Any], *, wide: bool = True) -> dict[str, str]:
    shown = resource.columns()
    return dict(zip(columns.header(shown, wide=wide), columns.row(obj, shown, wide=wide, now=NOW), strict=True))


def test_the_packaged_crds_are_the_repositorys() -> None:
    for path in (REPO / "crds").glob("*.yaml"):
        plural = path.name.removeprefix("debugcap.io_").removesuffix(".yaml")
        assert columns.crd(plural) == yaml.safe_load(path.read_text()), path.name


def test_every_crd_column_parses_in_the_jsonpath_dialect() -> None:
    for resource in (columns.CAPTURES, columns.SCHEDULES, columns.TRIGGERS, columns.TEMPLATES):
        assert resource.columns(), resource.plural
        for column in resource.columns():
            assert column.path.steps, column.json_path


def test_a_capture_row_evaluates_filters_integers_dates_and_cuts_multiline_text() -> None:
    cells = _cells(columns.CAPTURES, CAPTURE)
    assert cells == {"NAME": "api-heap", "PHASE": "Completed", "HEALTHY": "False", "UNHEALTHY": "1",
                     "TEMPLATE": "go-heap", "FIRED BY": "memoryPercentOfLimit", "POD": "api-1",
                     "STARTED": "5m30s", "READY": "True", "FINDINGS": "3", "EXPIRES": "<invalid>",
                     "MESSAGE": "1 of 1 pods captured\nsecond line", "AGE": "3h"}
    # Wide columns only with -o wide; a date in the future is "<invalid>", as HumanDuration says.
    assert "READY" not in _cells(columns.CAPTURES, CAPTURE, wide=False)


def test_schedule_and_trigger_rows_follow_their_crds() -> None:
    assert _cells(columns.SCHEDULES, SCHEDULE) == {
        "NAME": "nightly", "SCHEDULE": "0 3 * * *", "SUSPEND": "false", "LAST SCHEDULE": "9h",
        "LAST RUN": "nightly-1", "HEALTHY": "2", "UNHEALTHY": "0", "LAST SUCCESS": "", "MESSAGE": "", "AGE": "9d"}
    assert _cells(columns.TRIGGERS, TRIGGER) == {
        "NAME": "pre-oom", "SUSPEND": "true", "READY": "True", "PODS": "10", "LAST FIRED": "", "FIRED": "20",
        "MESSAGE": "", "AGE": "42s"}


@pytest.mark.parametrize(("kind", "value", "cell"), [
    ("integer", 3, "3"), ("integer", 3.9, "3"), ("integer", "3", ""), ("integer", True, ""),
    ("number", 2, "2"), ("number", 2.5, "2.5"), ("boolean", False, "false"), ("boolean", "true", ""),
    ("string", {"b": 1, "a": [1]}, '{"a":[1],"b":1}'), ("string", 7, "7"), ("string", None, ""),
    ("date", "yesterday", "<invalid>"), ("date", 5, ""),
], ids=lambda v: str(v))
def test_cells_take_only_values_of_their_type_as_the_table_convertor_does(kind: str, value: Any, cell: str) -> None:
    column = columns.Column("X", kind, ".v")
    assert columns.cell({"v": value}, column, NOW) == cell


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (599, "9m59s"),
    (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (730 * 86400, "2y"), (731 * 86400, "2y1d"),
    (8 * 365 * 86400, "8y"),
])
def test_ages_are_apimachinerys_human_duration(seconds: int, text: str) -> None:
    assert columns.human_duration(seconds) == text


def test_jsonpath_reads_the_subset_columns_use() -> None:
    doc = {"a": {"b.c": 1, "list": [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "z"}]}, "n": [1, 2, 3, 4]}
    cases = {
        ".a.list[?(@.k==\"y\")].v": [2], ".a.list[?(@.k!='y')].k": ["x", "z"], ".a.list[?(@.v)].k": ["x", "y"],
        ".a.list[?(@.v>=2)].k": ["y"], ".a.list[*].k": ["x", "y", "z"], ".a.list[-1].k": ["z"],
        ".n[1:3]": [2, 3], ".n[0,3]": [1, 4], "..v": [1, 2], ".a['b.c']": [1], ".a.b\\.c": [1],
        "{.a.missing.deeper}": [], ".n[9]": [], ".a.*": [1, doc["a"]["list"]], "$.n[::2]": [1, 3],
    }
    for path, want in cases.items():
        assert jsonpath.parse(path).find(doc) == want, path


@pytest.mark.parametrize("path", [".a[", ".a[?(@.x==y)]", ".a[foo]", ".a b", ".a[1:2:3:4]"])
def test_jsonpath_refuses_what_it_cannot_read(path: str) -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.parse(path)


def test_tables_are_laid_out_as_kubectls_tabwriter() -> None:
    # Padding 3, minimum width 6, the last column unpadded; a cell stops at its first line break.
    assert table_lines([["A", "LONGER", "Z"], ["bb", "c", "multi\nline"]]) == [
        "A     LONGER   Z", "bb    c        multi..."]


def test_print_objects_gives_every_output_one_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    def printed(output: str, items: list[dict[str, Any]], **kw: Any) -> tuple[str, str]:
        print_objects(items, output, columns.SCHEDULES, now=NOW, **kw)
        got = capsys.readouterr()
        return got.out, got.err

    out, _ = printed("table", [SCHEDULE], listing=True, namespace="shop")
    assert out.splitlines()[0].split()[:3] == ["NAME", "SCHEDULE", "SUSPEND"]
    assert "LAST SUCCESS" not in out and "LAST SUCCESS" in printed("wide", [SCHEDULE], listing=True)[0]
    everywhere = printed("table", [SCHEDULE], listing=True, namespace=None)[0].splitlines()
    assert everywhere[0].startswith("NAMESPACE   NAME") and everywhere[1].startswith("shop        nightly")
    assert printed("name", [SCHEDULE, TRIGGER], listing=True)[0] == \
        "debugschedule.debugcap.io/nightly\ndebugschedule.debugcap.io/pre-oom\n"
    assert json.loads(printed("json", [SCHEDULE], listing=False)[0]) == SCHEDULE
    assert yaml.safe_load(printed("yaml", [SCHEDULE], listing=True)[0]) == {"apiVersion": "v1", "kind": "List",
                                                                             "items": [SCHEDULE]}
    assert printed("table", [], listing=True, namespace="shop") == ("", "No resources found in shop namespace.\n")
    assert printed("json", [], listing=True)[0].startswith("{")  # an empty List, as kubectl prints one


def test_templates_is_a_table_too_and_a_name_shows_one_in_full() -> None:
    from click.testing import CliRunner

    from debugcap.kubectl_plugin.cli import cli

    table = CliRunner().invoke(cli, ["templates"]).stdout.splitlines()
    assert table[0].split() == ["NAME", "PARAMETERS", "DESCRIPTION"]
    leak = next(line for line in table if line.startswith("go-leak "))
    assert "snapshots=3,interval_seconds=60" in leak and leak.endswith("Leak hunting")
    assert CliRunner().invoke(cli, ["templates", "-o", "wide"]).stdout.split()[2] == "COLLECTORS"
    full = CliRunner().invoke(cli, ["templates", "go-leak"]).stdout
    assert "snapshots = 3" in full and "collectors:" in full
    assert json.loads(CliRunner().invoke(cli, ["templates", "go-leak", "-o", "json"]).stdout)["name"] == "go-leak"
    unknown = CliRunner().invoke(cli, ["templates", "go-nope"])
    assert unknown.exit_code == 2 and "go-leak" in unknown.stderr
