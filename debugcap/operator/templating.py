"""What a DebugCapture's ``spec.template`` names: a built-in template, else a DebugCaptureTemplate.

:mod:`~debugcap.operator.captures` expands the template of each capture (in a thread) and
:mod:`~debugcap.operator.capture_templates` checks each DebugCaptureTemplate with
:func:`template_document`, so both read a template object the same way.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from debugcap import errors, hints, resources, templates
from debugcap.bundle import redact_custom
from debugcap.collectors import COLLECTORS
from debugcap.kube.client import Kube, core_path, group_path
from debugcap.operator.requests import CaptureRequest, camel_parameter, selector_to_string

COMMANDS_LABEL: Final = "debugcap.io/commands"
"""The namespace label that opts a namespace in to templates' ``command`` steps (value ``allowed``)."""
COMMANDS_ALLOWED: Final = "allowed"
COMMAND_COLLECTOR: Final = "command"


def builtin_template_names() -> list[str]:
    return [t.name for t in templates.list_templates()]


def expand_template(kube: Kube, request: CaptureRequest, *,
                    operator_patterns: Sequence[tuple[str, str]] = ()) -> templates.ExpandedTemplate:
    """A built-in template, else the cluster-scoped DebugCaptureTemplate of that name.

    Built-in names win: a cluster admin cannot silently change what ``go-profile`` means for
    every namespace by creating a DebugCaptureTemplate called ``go-profile``. No namespace check:
    a capture's template goes through :func:`expand_for_namespace`.
    """
    builtin = builtin_template_names()
    if request.template in builtin:
        return _expand_builtin(request)
    return _expand_object(request, _read_template_object(kube, request.template, builtin), operator_patterns)


def expand_for_namespace(kube: Kube, request: CaptureRequest, namespace: str, *,
                         command_namespaces: Collection[str] = (),
                         operator_patterns: Sequence[tuple[str, str]] = ()) -> templates.ExpandedTemplate:
    """The template a capture in ``namespace`` runs: :func:`expand_template`, held to who may use it.

    - A DebugCaptureTemplate with ``spec.allowedNamespaces`` or ``spec.namespaceSelector`` serves
      only the namespaces they admit (both set: a namespace must pass both); any other is refused
      with a :class:`~debugcap.errors.ConfigError` naming the template, the namespace and the field.
    - Its ``command`` steps (admin-chosen commands run in the target container) run only in a
      namespace labelled ``debugcap.io/commands=allowed`` or listed in ``command_namespaces``
      (``DEBUGCAP_OPERATOR_COMMAND_NAMESPACES``); elsewhere they are skipped with the reason and the
      fix, and the other steps run (docs/operator.md, "Who can do what").

    Built-in templates have no command step and no restriction: they serve every namespace. The
    namespace is read (``get namespaces``) only when a label decides.
    """
    builtin = builtin_template_names()
    if request.template in builtin:
        return _only_allowed_commands(kube, request.template, expand_template(kube, request), namespace,
                                      command_namespaces)
    body = _read_template_object(kube, request.template, builtin)
    spec = body.get("spec") or {}
    _check_namespace_allowed(kube, request.template, spec, namespace)
    expanded = _expand_object(request, body, operator_patterns)
    return _only_allowed_commands(kube, request.template, expanded, namespace, command_namespaces)


def _expand_builtin(request: CaptureRequest) -> templates.ExpandedTemplate:
    try:
        return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS)
    except errors.ConfigError as exc:
        raise errors.ConfigError(_field_for_template_error(str(exc), request)) from exc


def _expand_object(request: CaptureRequest, body: Mapping[str, Any],
                   operator_patterns: Sequence[tuple[str, str]] = ()) -> templates.ExpandedTemplate:
    try:
        template_patterns(request.template, body.get("spec") or {}, operator_patterns=operator_patterns)
        with tempfile.TemporaryDirectory(prefix="debugcap-template-") as tmp:
            document = template_document(request.template, body.get("spec") or {})
            (Path(tmp) / f"{request.template}.yaml").write_text(template_yaml(document), encoding="utf-8")
            return templates.expand(request.template, request.template_parameters, collectors=COLLECTORS,
                                    directory=Path(tmp))
    except errors.ConfigError as exc:
        raise errors.ConfigError(_field_for_template_error(str(exc), request)) from exc


def _check_namespace_allowed(kube: Kube, name: str, spec: Mapping[str, Any], namespace: str) -> None:
    allowed = spec.get("allowedNamespaces")
    if allowed is not None and namespace not in [str(n) for n in allowed]:
        listed = ", ".join(str(n) for n in allowed) or "none"
        raise errors.ConfigError(
            f'spec.template: DebugCaptureTemplate "{name}" does not serve namespace "{namespace}": its '
            f"spec.allowedNamespaces lists {listed}; a cluster admin adds \"{namespace}\" to "
            f"spec.allowedNamespaces of DebugCaptureTemplate {name}, or the capture names another template")
    selector = spec.get("namespaceSelector")
    if selector is None:
        return
    where = f"DebugCaptureTemplate {name} spec.namespaceSelector"
    try:
        check_namespace_selector(name, spec)
    except errors.ConfigError as exc:
        raise errors.ConfigError(f"spec.template: {exc}") from exc
    try:
        labels = namespace_labels(kube, namespace)
    except errors.KubeError as exc:
        raise errors.ConfigError(
            f'spec.template: DebugCaptureTemplate "{name}" serves only namespaces matching its '
            f'spec.namespaceSelector, and the labels of namespace "{namespace}" cannot be read: {exc}; '
            "the operator needs get on namespaces (the chart's ClusterRole grants it)") from exc
    if not selector_matches(selector, labels, where=where):
        text = requests_selector_text(selector, where)
        raise errors.ConfigError(
            f'spec.template: DebugCaptureTemplate "{name}" does not serve namespace "{namespace}": its '
            f"labels do not match spec.namespaceSelector ({text}); label the namespace to match "
            f"(kubectl label namespace {namespace} ...), or a cluster admin changes spec.namespaceSelector "
            f"of DebugCaptureTemplate {name}")


def _only_allowed_commands(kube: Kube, name: str, template: templates.ExpandedTemplate, namespace: str,
                           command_namespaces: Collection[str]) -> templates.ExpandedTemplate:
    commands = [s for s in template.steps if s.collector == COMMAND_COLLECTOR and not s.skipped]
    if not commands or namespace in command_namespaces:
        return template
    try:
        labels = namespace_labels(kube, namespace)
        why = ""
    except errors.KubeError as exc:
        labels, why = {}, f" (its labels cannot be read: {errors.shorten(str(exc), 200)})"
    if labels.get(COMMANDS_LABEL) == COMMANDS_ALLOWED:
        return template
    reason = (f'template "{name}" runs commands in the container, and namespace "{namespace}" has not opted in'
              f"{why}: someone with patch rights on namespaces (a cluster admin) labels it "
              f"{COMMANDS_LABEL}={COMMANDS_ALLOWED} "
              f"(kubectl label namespace {namespace} {COMMANDS_LABEL}={COMMANDS_ALLOWED}), or the operator "
              "lists it in DEBUGCAP_OPERATOR_COMMAND_NAMESPACES (the chart's operator.commandNamespaces)")
    steps = tuple(dataclasses.replace(s, params={}, window=None, skipped=reason)
                  if s.collector == COMMAND_COLLECTOR and not s.skipped else s for s in template.steps)
    return dataclasses.replace(template, steps=steps)


# metav1.LabelSelector's rules (k8s.io/apimachinery validation): a key is [prefix/]name, the prefix a
# DNS subdomain; a name and a value are at most 63 characters of these, a value may be empty.
_LABEL_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")


def check_namespace_selector(name: str, spec: Mapping[str, Any]) -> None:
    """Refuse a ``spec.namespaceSelector`` Kubernetes would reject (a bad operator, label key or
    value, In without values, Exists with some), naming the template, the field and the fix, so an
    admin sees it in the template's status rather than as captures refused for another reason."""
    selector = spec.get("namespaceSelector")
    if selector is None:
        return
    where = f"DebugCaptureTemplate {name} spec.namespaceSelector"
    fix = f"; a cluster admin fixes it (kubectl edit debugcapturetemplate {name})"
    if not isinstance(selector, Mapping):
        raise errors.ConfigError(f"{where} must be a label selector (matchLabels, matchExpressions){fix}")
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise errors.ConfigError(f"{where}.matchLabels must be a mapping of label keys to values{fix}")
    for key, value in labels.items():
        _check_label_key(str(key), f"{where}.matchLabels", fix)
        _check_label_value(value, f'{where}.matchLabels["{key}"]', fix)
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise errors.ConfigError(f"{where}.matchExpressions must be a list{fix}")
    for i, expr in enumerate(expressions):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping):
            raise errors.ConfigError(f"{at} must be a mapping with key, operator and values{fix}")
        key, op, values = str(expr.get("key") or ""), expr.get("operator"), expr.get("values") or []
        _check_label_key(key, at, fix)
        if op not in _OPERATORS:
            raise errors.ConfigError(f'{at}: operator "{op}" of "{key}" is not one of {", ".join(_OPERATORS)}{fix}')
        if not isinstance(values, list):
            raise errors.ConfigError(f"{at}.values must be a list of label values{fix}")
        if op in ("In", "NotIn") and not values:
            raise errors.ConfigError(f'{at}: "{key} {op}" needs at least one value{fix}')
        if op in ("Exists", "DoesNotExist") and values:
            raise errors.ConfigError(f'{at}: "{key} {op}" takes no values (it tests the key alone){fix}')
        for j, value in enumerate(values):
            _check_label_value(value, f"{at}.values[{j}]", fix)


def _check_label_key(key: str, where: str, fix: str) -> None:
    prefix, _, label = key.rpartition("/")
    if (not _LABEL_NAME.match(label) or ("/" in key and (not prefix or len(prefix) > 253
                                                        or not _DNS_SUBDOMAIN.match(prefix)))):
        raise errors.ConfigError(
            f'{where}: "{key}" is not a label key: [prefix/]name, the name at most 63 letters, digits, '
            f"'-', '_' or '.' starting and ending with a letter or digit, the prefix a DNS subdomain "
            f"(debugcap.io/commands){fix}")


def _check_label_value(value: object, where: str, fix: str) -> None:
    if not isinstance(value, str) or (value and not _LABEL_NAME.match(value)):
        raise errors.ConfigError(
            f"{where}: {value!r:.80} is not a label value: at most 63 letters, digits, '-', '_' or '.' "
            f"starting and ending with a letter or digit, or empty{fix}")


def namespace_labels(kube: Kube, namespace: str) -> Mapping[str, str]:
    """The labels of ``namespace`` (``get namespaces``)."""
    body: Any = kube.get_json(core_path("namespaces", name=namespace))
    labels = ((body or {}).get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str], *, where: str) -> bool:
    """Whether ``labels`` match a ``metav1.LabelSelector`` (an empty selector matches everything,
    as in Kubernetes); an expression Kubernetes would reject raises :class:`ConfigError`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = str(expr.get("key") or ""), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if not key:
            raise errors.ConfigError(f"{where}.matchExpressions: every expression needs a key")
        if op == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            raise errors.ConfigError(f'{where}.matchExpressions: operator "{op}" of "{key}" is not one of '
                                     "In, NotIn, Exists, DoesNotExist")
    return True


def requests_selector_text(selector: Mapping[str, Any], where: str) -> str:
    try:
        return selector_to_string(selector, where=where)
    except errors.ConfigError:
        return "matches every namespace"


def template_patterns(name: str, spec: Mapping[str, Any], *,
                      operator_patterns: Sequence[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
    """A DebugCaptureTemplate's ``spec.redaction.patterns``, compiled once to refuse a bad one with
    a message naming the template, the pattern and the fix (not a capture's traceback); and held
    to ``operator_patterns`` (DEBUGCAP_OPERATOR_REDACTION_PATTERNS): a name both define with
    different regexes is refused (the admin's pattern is not to be weakened)."""
    where = f"DebugCaptureTemplate {name} spec.redaction.patterns"
    redaction = spec.get("redaction") or {}
    try:
        if not isinstance(redaction, Mapping):
            raise errors.ConfigError(f"{where}: spec.redaction must be a mapping with patterns: [{{name, regex}}]")
        pairs = templates.parse_redaction_patterns(redaction.get("patterns"), where=where)
        redact_custom.compile_patterns(pairs, where=where)
        redact_custom.check_against(operator_patterns, pairs, second_source=where,
                                    first_source="the operator's DEBUGCAP_OPERATOR_REDACTION_PATTERNS")
    except errors.ConfigError as exc:
        raise errors.ConfigError(f"{exc}; a cluster admin fixes it (kubectl edit debugcapturetemplate {name})") from exc
    return pairs


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
    patterns = (spec.get("redaction") or {}).get("patterns") if isinstance(spec.get("redaction"), Mapping) else None
    if patterns:
        document["redaction"] = {"patterns": [dict(p) if isinstance(p, Mapping) else p for p in patterns]}
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
