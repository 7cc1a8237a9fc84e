"""Rule cpu-hot on a real CPU profile of goapp's hot loop: the application's function, not the leaf.

goapp's ``main.burnCPU`` chains SHA-256 (``crypto/sha256.Sum256``), so pprof's top ranks the
library's leaf ``crypto/internal/fips140/sha256.blockSHANI``; the rule must name main.burnCPU,
keep the leaf as context, and rate it against the CPU the container may use.
"""

from __future__ import annotations

import pytest

from debugcap.analysis.findings import thresholds

from .reports import container, goapp_attribution, kinds, report, the

BAND = thresholds.BANDS["cpu-hot"]


def _burn_cores() -> float:
    att = goapp_attribution("cpu")
    row = next(r for r in att.rows if r.function == "main.burnCPU")
    return row.value / att.duration_ns


def test_the_hot_loop_is_named_by_the_applications_function_with_the_leaf_as_context() -> None:
    f = the(report(attribution={"cpu": goapp_attribution("cpu")}, runtime={"GOMAXPROCS": "2"}), "cpu-hot")
    assert (f.subject, f.leaf) == ("main.burnCPU", "crypto/internal/fips140/sha256.blockSHANI")
    assert f.message.startswith("CPU: main.burnCPU spends ")
    assert "of GOMAXPROCS 2 (via crypto/internal/fips140/sha256.blockSHANI)" in f.message
    assert f.unit == "%" and f.value == pytest.approx(100 * _burn_cores() / 2, abs=0.1)


@pytest.mark.parametrize(("share", "level"), [(10, "low"), (50, "medium"), (90, "high")])
def test_severity_is_the_share_of_the_containers_cpu_limit(share: float, level: str) -> None:
    # The limit that makes burnCPU's measured cores this share of it.
    limit = _burn_cores() / (share / 100)
    f = the(report(attribution={"cpu": goapp_attribution("cpu")}, container=container(cpu=limit),
                   runtime={"GOMAXPROCS": "64"}), "cpu-hot")
    assert f.value == pytest.approx(share, abs=0.1)
    assert (f.level, f.severity) == (level, BAND.severity(share))
    assert "-core limit" in f.message


def test_without_a_limit_or_gomaxprocs_the_finding_is_low_and_says_why() -> None:
    f = the(report(attribution={"cpu": goapp_attribution("cpu")}), "cpu-hot")
    assert f.subject == "main.burnCPU" and f.level == "low" and f.value is None
    assert "(no CPU limit or GOMAXPROCS known)" in f.message


def test_an_idle_cpu_profile_is_not_a_finding() -> None:
    att = goapp_attribution("cpu")
    idle = att.__class__(att.sample_type, att.unit, 0, att.duration_ns, 0, "", ())
    assert kinds(report(attribution={"cpu": idle})) == []
