"""What a DebugCapture's ``spec.template`` names: a built-in template, else a DebugCaptureTemplate.

:mod:`~debugcap.operator.captures` expands the template of each capture (in a thread) and
:mod:`~debugcap.operator.capture_templates` checks each DebugCaptureTemplate with
:func:`template_document`, so both read a template object the same way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from debugcap import errors, hints, resources, templates
from debugcap.collectors import COLLECTORS
from debugcap.kube.client import Kube, group_path
from debugcap.operator.requests import CaptureRequest, camel_parameter


def builtin_template_names() -> list[str]:
    return [t.name for t in templates.list_templates()]


def expand_template(kube: Kube, request: CaptureRequest) -> templates.ExpandedTemplate:
    """A built-in template, else the cluster-scoped DebugCaptureTemplate of that name.

    Built-in names win: a cluster admin cannot silently change what ``go-profile`` means for
    every namespace by creating a DebugCaptureTemplate called ``go-profile``.
    """
    builtin = builtin_template_names()
    try:
        if request.template in builtin:
            return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS)
        body = _read_template_object(kube, request.template, builtin)
        with tempfile.TemporaryDirectory(prefix="debugcap-template-") as tmp:
            document = template_document(request.template, body.get("spec") or {})
            (Path(tmp) / f"{request.template}.yaml").write_text(template_yaml(document), encoding="utf-8")
            return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS,
                                    directory=Path(tmp))
    except errors.ConfigError as exc:
        raise errors.ConfigError(_field_for_template_error(str(exc), request)) from exc


def template_document(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A DebugCaptureTemplate spec as the YAML template format :func:`templates.parse_template` reads."""
    document: dict[str, Any] = {"name": name, "description": spec.get("description", ""),
                                "parameters": dict(spec.get("parameters") or {}), "steps": []}
    for step in spec.get("steps") or []:
        entry: dict[str, Any] = {"collector": step.get("collector")}
        if step.get("params"):
            entry["params"] = dict(step["params"])
        if step.get("window"):
            entry["window"] = step["window"]
        document["steps"].append(entry)
    return document


def template_yaml(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document))


def _read_template_object(kube: Kube, name: str, builtin: list[str]) -> Mapping[str, Any]:
    try:
        body: Any = kube.get_json(group_path(resources.GROUP, resources.VERSION, resources.TEMPLATES, name=name))
        return dict(body)
    except errors.NotFoundError as exc:
        raise errors.ConfigError(
            f'spec.template: unknown template "{name}"; built-in templates: {", ".join(builtin)}; '
            f"{hints.list_cluster_templates()}") from exc
    except errors.KubeError as exc:
        raise errors.ConfigError(f'spec.template: cannot read DebugCaptureTemplate "{name}": {exc}') from exc


def _field_for_template_error(message: str, request: CaptureRequest) -> str:
    if message.startswith("spec."):
        return message
    for snake in request.template_parameters:
        if f'"{snake}"' in message:
            return f"spec.parameters.{camel_parameter(snake)}: {message}"
    return f"spec.template: {message}"
