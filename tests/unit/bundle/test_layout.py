"""Bundle names, member paths and object keys.

Cases: bundle name format and UTC conversion; naive datetimes rejected; parse is the inverse;
unsafe member paths rejected; snapshot numbering; object key layout and prefix handling.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from debugcap.bundle import layout
from debugcap.errors import BundleError

WHEN = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)


def test_bundle_name_is_namespace_pod_and_utc_timestamp() -> None:
    assert layout.bundle_name("prod", "api-1", WHEN) == "prod_api-1_20261123T160005Z.tar.gz"


def test_bundle_name_converts_other_zones_to_utc() -> None:
    cet = WHEN.astimezone(timezone(timedelta(hours=1)))
    assert layout.bundle_name("prod", "api-1", cet) == "prod_api-1_20261123T160005Z.tar.gz"


def test_naive_datetime_is_rejected_with_a_fix() -> None:
    with pytest.raises(BundleError, match="no time zone.*datetime.now\\(UTC\\)"):
        layout.bundle_name("prod", "api-1", datetime(2026, 1, 1))


def test_parse_bundle_name_inverts_bundle_name() -> None:
    name = layout.bundle_name("kube-system", "coredns-5d78c9869d-abcde", WHEN)
    assert layout.parse_bundle_name(name) == ("kube-system", "coredns-5d78c9869d-abcde", WHEN)


@pytest.mark.parametrize(
    "namespace", ["Prod", "prod_x", "", "-prod"], ids=["upper", "underscore", "empty", "dash"]
)
def test_invalid_kubernetes_names_are_rejected(namespace: str) -> None:
    with pytest.raises(BundleError, match="DNS-1123"):
        layout.bundle_name(namespace, "api-1", WHEN)


def test_stem_and_member_names() -> None:
    name = layout.bundle_name("prod", "api-1", WHEN)
    stem = layout.stem(name)
    assert stem == "prod_api-1_20261123T160005Z"
    assert layout.member_name(stem, layout.PPROF_CPU) == f"{stem}/pprof/cpu.pb.gz"
    assert layout.checksum_name(name) == name + ".sha256"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a b", "a\\b", "a\nb", ""],
    ids=[
        "absolute",
        "parent",
        "nested-parent",
        "empty-segment",
        "dot",
        "space",
        "backslash",
        "newline",
        "empty",
    ],
)
def test_unsafe_member_paths_are_rejected(path: str) -> None:
    with pytest.raises(BundleError, match="not allowed"):
        layout.check_path(path)


def test_documented_paths() -> None:
    assert layout.PPROF_CPU == "pprof/cpu.pb.gz"
    assert layout.log_path("app") == "logs/app.log"
    assert layout.log_path("app", previous=True) == "logs/app.previous.log"
    assert layout.error_path("pprof-cpu") == "errors/pprof-cpu.txt"
    assert layout.snapshot_path(0, "heap.pb.gz") == "pprof/snapshots/00/heap.pb.gz"
    assert layout.snapshot_path(12, "goroutine-debug2.txt") == "pprof/snapshots/12/goroutine-debug2.txt"


@pytest.mark.parametrize("index", [-1, layout.MAX_SNAPSHOTS], ids=["negative", "too-many"])
def test_snapshot_index_out_of_range(index: int) -> None:
    with pytest.raises(BundleError, match="out of range"):
        layout.snapshot_path(index, "heap.pb.gz")


def test_binary_members_are_profiles_and_traces() -> None:
    assert layout.is_binary(layout.PPROF_HEAP) and layout.is_binary(layout.TRACE)
    assert not layout.is_binary(layout.PPROF_GOROUTINE_DEBUG2)
    assert not layout.is_binary(layout.PROC_PS)


def test_object_key_groups_by_cluster_namespace_pod_and_day() -> None:
    name = layout.bundle_name("prod", "api-1", WHEN)
    key = layout.object_key("debugcap", "eu-1", "prod", "api-1", WHEN, name)
    assert key == f"debugcap/eu-1/prod/api-1/2026/11/23/{name}"


def test_object_key_with_nested_and_empty_prefix() -> None:
    name = layout.bundle_name("prod", "api-1", WHEN)
    assert layout.object_key("debug/team-a", "c", "prod", "api-1", WHEN, name).startswith("debug/team-a/c/")
    assert layout.object_key("", "c", "prod", "api-1", WHEN, name).startswith("c/prod/")


@pytest.mark.parametrize("prefix", ["a//b", "../x", "with space"], ids=["empty-segment", "parent", "space"])
def test_object_key_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(BundleError, match="object key"):
        layout.object_key(prefix, "c", "prod", "api-1", WHEN, layout.bundle_name("prod", "api-1", WHEN))


def test_a_command_step_name_that_escapes_custom_is_refused() -> None:
    with pytest.raises(BundleError):
        layout.custom_path("../../etc/passwd")
