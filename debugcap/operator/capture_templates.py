"""kopf handler of DebugCaptureTemplate: report in its status whether it expands.

Registered through :mod:`debugcap.operator.handlers`. An admin sees a mistake in a template
before users do; captures expand templates with :mod:`~debugcap.operator.templating`.
"""

from __future__ import annotations

from typing import Any

import kopf

from debugcap import errors, resources, templates
from debugcap.bundle import redact_custom
from debugcap.collectors import COLLECTORS
from debugcap.operator import runtime, templating


@kopf.on.create(resources.GROUP, resources.VERSION, resources.TEMPLATES)
@kopf.on.update(resources.GROUP, resources.VERSION, resources.TEMPLATES)
@kopf.on.resume(resources.GROUP, resources.VERSION, resources.TEMPLATES)
def check_template(name: str, spec: kopf.Spec, patch: kopf.Patch, memo: kopf.Memo | None = None,
                   **_: Any) -> None:
    """Report in status whether the template expands, so an admin sees a mistake before users do:
    a pattern the operator's setting names with another regex too (every capture would fail)."""
    document = templating.template_document(str(name), spec)
    try:
        parsed = templates.parse_template(templating.template_yaml(document),
                                          source=f"DebugCaptureTemplate {name}")
        templates.check_collectors(parsed, COLLECTORS)
        patterns = templating.template_patterns(str(name), spec, operator_patterns=_operator_patterns(memo))
        templating.check_namespace_selector(str(name), spec)
    except errors.ConfigError as exc:
        patch.status["valid"] = False
        patch.status["message"] = str(exc)
        raise kopf.PermanentError(str(exc)) from exc
    shadowed = name in templating.builtin_template_names()
    patch.status["valid"] = not shadowed
    patch.status["message"] = (f'a built-in template is also called "{name}" and wins; rename this one'
                               if shadowed else f"{len(parsed.steps)} step(s): "
                               + ", ".join(s.collector for s in parsed.steps) + who_may_use(spec, parsed)
                               + (f"; masks {redact_custom.describe(patterns)}" if patterns else ""))


def _operator_patterns(memo: kopf.Memo | None) -> tuple[tuple[str, str], ...]:
    rt = memo.get("runtime") if memo is not None else None
    return rt.config.redaction_patterns if isinstance(rt, runtime.Runtime) else ()


def who_may_use(spec: Any, parsed: templates.Template) -> str:
    """The status's note of the namespaces the template serves and where its commands run."""
    notes = []
    allowed = spec.get("allowedNamespaces")
    if allowed is not None:
        notes.append("serves only namespaces " + (", ".join(str(n) for n in allowed) or "(none)"))
    if spec.get("namespaceSelector") is not None:
        notes.append("serves only namespaces matching spec.namespaceSelector")
    if any(s.collector == templating.COMMAND_COLLECTOR for s in parsed.steps):
        notes.append(f"its command steps run only in namespaces labelled "
                     f"{templating.COMMANDS_LABEL}={templating.COMMANDS_ALLOWED}, skipped elsewhere")
    return "".join(f"; {n}" for n in notes)
