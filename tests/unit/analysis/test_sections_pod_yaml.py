"""The pod YAML read with libyaml's parser (issue 17: the pure-Python one was 4-6 ms of operator
CPU per pod), and read the same as the pure-Python safe loader reads it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from debugcap.analysis import sections
from debugcap.analysis.bundle_reading import BundleReader, Reading
from debugcap.bundle import manifest

CAPTURED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
# As the pod-yaml collector writes a testbed pod (trimmed), limits and redaction's unquoted mask added.
POD_YAML = """apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: '2026-12-05T09:55:43Z'
  labels: {app: bench, part: '0'}
  name: bench-01
  namespace: bench-sweep
spec:
  automountServiceAccountToken: ***REDACTED***
  containers:
  - image: debugcap.test/goapp:dev
    name: app
    resources:
      limits: {cpu: 1500m, memory: 128Mi}
  - name: sidecar
    resources: {}
  tolerations:
  - {effect: NoExecute, key: node.kubernetes.io/not-ready, operator: Exists, tolerationSeconds: 300}
status:
  containerStatuses:
  - name: app
    ready: true
    restartCount: 0
    state:
      running:
        startedAt: '2026-12-05T09:55:45Z'
  phase: Running
"""


def _reading(tmp_path: Path, pod_yaml: str) -> Reading:
    stem = tmp_path / "bench-sweep_bench-01_20261205T100000Z"
    (stem / "k8s").mkdir(parents=True)
    (stem / "k8s/pod.yaml").write_text(pod_yaml)
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="c1", template="debug-full"),
        target=manifest.TargetInfo(namespace="bench-sweep", pod="bench-01", container="app"),
        started_at=CAPTURED, finished_at=CAPTURED)
    (stem / "manifest.json").write_text(manifest.Manifest.build(fields, files={}).to_json())
    return Reading(BundleReader(stem))


def test_the_pod_yaml_is_parsed_by_libyaml(tmp_path: Path, pure_python_yaml_loads: list[object]) -> None:
    container = sections.container(_reading(tmp_path, POD_YAML), "app", CAPTURED)
    assert container is not None and container.cpu_limit == 1.5
    assert pure_python_yaml_loads == []


@pytest.mark.parametrize("pod_yaml", [
    POD_YAML,
    POD_YAML.replace("'2026-12-05T09:55:45Z'", "2026-12-05T09:55:45Z"),  # a YAML timestamp, unquoted
    POD_YAML.replace("name: app\n    ready", "name: other\n    ready"),
    "spec:\n  containers:\n  - name: app\nstatus: {}\n",
    "- not\n- a pod\n",
])
def test_libyaml_and_the_pure_python_loader_read_the_same_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pod_yaml: str
) -> None:
    fast = sections.container(_reading(tmp_path / "c", pod_yaml), "app", CAPTURED)
    monkeypatch.setattr(sections, "_YAML_LOADER", yaml.SafeLoader)
    assert sections.container(_reading(tmp_path / "py", pod_yaml), "app", CAPTURED) == fast


def test_invalid_pod_yaml_is_a_problem_line_with_libyaml(tmp_path: Path) -> None:
    reading = _reading(tmp_path, "spec: [unclosed\n")
    assert sections.container(reading, "app", CAPTURED) is None
    assert [p for p in reading.problems if "k8s/pod.yaml: not valid YAML:" in p]


def test_a_pod_yaml_nesting_too_deeply_is_a_problem_line_with_either_loader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "spec: " + "[" * 5000 + "]" * 5000 + "\n"
    reading = _reading(tmp_path / "c", hostile)
    assert sections.container(reading, "app", CAPTURED) is None and reading.problems  # libyaml: a YAMLError
    monkeypatch.setattr(sections, "_YAML_LOADER", yaml.SafeLoader)  # a PyYAML wheel without libyaml
    reading = _reading(tmp_path / "py", hostile)
    assert sections.container(reading, "app", CAPTURED) is None
    assert [p for p in reading.problems if "nests too deeply" in p]
