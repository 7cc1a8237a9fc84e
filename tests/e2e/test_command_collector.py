"""An admin's template step runs its fixed command in the pod; bad steps are refused with the fix."""

from __future__ import annotations

import tarfile
from pathlib import Path

from debugcap import capture, templates
from debugcap.collectors import COLLECTORS
from debugcap.kube.client import Kube

from .conftest import GoappPod

TEMPLATE = """
name: admin-extra
description: an admin's extra evidence
parameters:
  label: {type: str, default: "x"}
steps:
  - collector: command
    params: {name: loadavg, argv: [cat, /proc/loadavg]}
  - collector: command
    params: {name: injected, argv: "${label}"}
"""


def test_command_step_output_lands_in_custom_and_string_argv_is_refused(
    goapp_pod: GoappPod, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    pod = goapp_pod()
    target = capture.resolve_target(kube, namespace, pod.metadata.name)
    template = templates.parse_template(TEMPLATE, source="test")
    templates.check_collectors(template, COLLECTORS)
    # A capture's parameter reaching a command must never become a command line.
    expanded = templates.expand("admin-extra", {"label": "rm -rf /"}, collectors=COLLECTORS,
                                directory=_dir_with(tmp_path, TEMPLATE))
    outcome = capture.capture(kube, target, expanded, out_dir=tmp_path, capture_name="admin")
    by_name = {(r.name, r.files): r for r in outcome.records}
    ok = [r for (name, _), r in by_name.items() if name == "command" and r.status == "ok"]
    refused = [r for (name, _), r in by_name.items() if name == "command" and r.status == "failed"]
    assert len(ok) == 1 and ok[0].files == ("custom/loadavg.txt",)
    assert len(refused) == 1 and "params.argv" in refused[0].message
    with tarfile.open(outcome.bundle.path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("custom/loadavg.txt"))
        loadavg = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert len(loadavg.split()) == 5


def _dir_with(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "templates"
    d.mkdir()
    (d / "admin-extra.yaml").write_text(text)
    return d
