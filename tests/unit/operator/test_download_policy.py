"""The admission policy behind presigned downloads, as shipped: the plain manifest and the chart's
template are the same objects, and they check what docs/captures.md says they check.

Cases: the chart's template, its Helm directives and labels set aside, equals
deploy/admission/debugcap-downloads.yaml (names aside); the policy matches only the creation of
DebugDownloads and asks the API server's authorizer whether the requester may get the DebugCapture
named, denying otherwise with a 403; its name is the operator's default; a DebugDownload's spec
cannot change after that check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from debugcap import resources
from debugcap.operator.config import DebugcapConfig

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "deploy" / "admission" / "debugcap-downloads.yaml"
TEMPLATE = REPO / "charts" / "debugcap" / "templates" / "download-policy.yaml"
CRD = REPO / "crds" / "debugcap.io_debugdownloads.yaml"


def template_objects() -> list[dict[str, Any]]:
    """The template's objects with its directives removed: the comment, the if/end, the name
    variable (as the manifest's name) and the labels (Helm's own)."""
    text = re.sub(r"\{\{- /\*.*?\*/ -\}\}\n", "", TEMPLATE.read_text(), flags=re.DOTALL)
    lines = [line for line in text.splitlines()
             if not re.match(r"\s*\{\{-? (if|end|\$name :=)", line)
             and "labels:" not in line and "debugcap.labels" not in line]
    return list(yaml.safe_load_all("\n".join(lines).replace("{{ $name }}", resources.DOWNLOAD_POLICY)))


def test_the_chart_renders_the_manifests_objects() -> None:
    assert template_objects() == list(yaml.safe_load_all(MANIFEST.read_text()))


def test_only_who_may_get_the_capture_may_ask_for_its_urls() -> None:
    policy, binding = yaml.safe_load_all(MANIFEST.read_text())
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == resources.DOWNLOAD_POLICY
    assert DebugcapConfig().download_policy == resources.DOWNLOAD_POLICY
    assert binding["spec"] == {"policyName": resources.DOWNLOAD_POLICY, "validationActions": ["Deny"]}
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [{"apiGroups": ["debugcap.io"], "apiVersions": ["*"],
                                                          "operations": ["CREATE"], "resources": ["debugdownloads"]}]
    [check] = spec["validations"]
    assert " ".join(check["expression"].split()) == (
        "authorizer.group('debugcap.io').resource('debugcaptures').namespace(request.namespace) "
        ".name(object.spec.capture).check('get').allowed()")
    assert check["reason"] == "Forbidden" and "you may not get debugcaptures" in check["messageExpression"]


def test_a_downloads_spec_cannot_change_after_admission() -> None:
    crd = yaml.safe_load(CRD.read_text())
    [version] = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [{"rule": "self == oldSelf",
                                                 "message": "spec is immutable; create another DebugDownload"}]
    assert spec["required"] == ["capture"] and crd["spec"]["names"]["plural"] == resources.DOWNLOADS
    # Not in the debugcap category: `kubectl get debugcap` would fail for users who may not list them.
    assert "categories" not in crd["spec"]["names"]
