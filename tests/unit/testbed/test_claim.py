"""One testbed per machine: `up` refuses to start over another clone's live testbed, and says where it is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testbed import cluster, layout


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    run = tmp_path / "run"
    monkeypatch.setattr(layout, "RUN", run)
    monkeypatch.setattr(cluster, "OWNER", run / "owner")
    mine = tmp_path / "mine" / ".testbed"
    monkeypatch.setattr(cluster, "P", layout.Paths(root=mine))
    other = tmp_path / "other" / ".testbed"
    (other / "pids").mkdir(parents=True)
    run.mkdir()
    (run / "owner").write_text(f"{other}\n")
    return mine, other


def test_refuses_while_another_clones_testbed_runs(places: tuple[Path, Path]) -> None:
    _, other = places
    (other / "pids" / "kube-apiserver.pid").write_text(str(os.getpid()))
    with pytest.raises(cluster.TestbedError, match=f"cd {other.parent} && python -m testbed down"):
        cluster._claim()


def test_takes_over_when_the_other_testbed_is_dead(places: tuple[Path, Path]) -> None:
    mine, other = places
    dead = subprocess.Popen(["true"])
    dead.wait()
    (other / "pids" / "kube-apiserver.pid").write_text(str(dead.pid))
    cluster._claim()
    assert cluster.OWNER.read_text().strip() == str(mine)
