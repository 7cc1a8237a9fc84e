"""Capture templates as data: ``debugcap/templates/<name>.yaml``, loaded and expanded here.

A template has a name, a description, typed parameters with defaults, and an ordered list of
collector steps ``{collector: <name>, params: {...}, window: <name>}``. A step parameter whose
value is exactly ``"${param}"`` takes the (typed) value of that template parameter. Steps that
share a ``window`` are meant to run at the same time (CPU profile, goroutine dump and trace,
because blocking is invisible to a CPU profile alone); running them is the capture engine's job.

An optional ``redaction: {patterns: [{name, regex}]}`` adds company-specific secret formats its
captures mask (shape checked here, compiled by :mod:`debugcap.bundle.redact_custom`).

The CLI (``-t``/``-p``) and the operator (``spec.template``/``spec.parameters``) call
:func:`expand`; collector names are opaque here and checked against the list the engine passes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final, Literal, TypeAlias, cast

import yaml

from debugcap.errors import ConfigError

ParamType: TypeAlias = Literal["int", "float", "bool", "str"]
ParamValue: TypeAlias = int | float | bool | str
StepValue: TypeAlias = int | float | bool | str | list[str]

PARAM_TYPES: Final = ("int", "float", "bool", "str")
_REFERENCE = re.compile(r"^\$\{([a-z][a-z0-9_]*)\}$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_TYPE_WORDS: Final = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
# Admin redaction patterns (debugcap.bundle.redact_custom compiles them): at most this many per
# source, each named like a DNS label so the manifest's "custom:<name>" reads as one word.
MAX_REDACTION_PATTERNS: Final = 50
_PATTERN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    default: ParamValue
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def describe_valid(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        text = _TYPE_WORDS[self.type]
        if self.minimum is not None and self.maximum is not None:
            text += f" from {_num(self.minimum)} to {_num(self.maximum)}"
        elif self.minimum is not None:
            text += f" of at least {_num(self.minimum)}"
        elif self.maximum is not None:
            text += f" of at most {_num(self.maximum)}"
        return text


@dataclass(frozen=True)
class Step:
    collector: str
    params: Mapping[str, StepValue]
    window: str | None = None
    # Why the capture does not run this step, when its caller decided so (a DebugTrigger's capture
    # racing an OOM kill drops what would delay the heap): the engine records it skipped with this
    # reason instead of running it, so the manifest says what was left out. Never set by a template.
    skipped: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    parameters: Mapping[str, Parameter]
    steps: tuple[Step, ...]
    # (name, regex) of redaction.patterns; the capture compiles them (debugcap.bundle.redact_custom).
    redaction_patterns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExpandedTemplate:
    name: str
    description: str
    parameters: Mapping[str, ParamValue]  # every parameter, defaults filled in
    steps: tuple[Step, ...]  # "${param}" references replaced by values
    redaction_patterns: tuple[tuple[str, str], ...] = ()

    @property
    def collectors(self) -> tuple[str, ...]:
        return tuple(step.collector for step in self.steps)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'did you mean "{close[0]}"? ' if close else ""


def _templates_dir() -> Traversable:
    return resources.files("debugcap").joinpath("templates")


def _available(directory: Traversable) -> dict[str, Traversable]:
    return {
        entry.name.removesuffix(".yaml"): entry
        for entry in directory.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    }


def _coerce(template: str, param: Parameter, value: object, *, source: str) -> ParamValue:
    """``value`` converted to the parameter's type; strings are parsed (they come from ``-p k=v``)."""

    def bad() -> ConfigError:
        return ConfigError(
            f'template "{template}": {source} "{param.name}" must be {param.describe_valid()}, '
            f"got {value!r:.60} "
            f"({param.description.rstrip('.') or 'no description'}; default {param.default!r})"
        )

    result: ParamValue
    if param.type == "bool":
        if isinstance(value, bool):
            result = value
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            result = value.strip().lower() in _TRUE
        else:
            raise bad()
    elif param.type in ("int", "float"):
        if isinstance(value, bool):
            raise bad()  # bool is an int subclass in Python; True is never a valid duration
        number: int | float
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip()) if param.type == "int" else float(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
        if param.type == "int":
            if isinstance(number, float) and not number.is_integer():
                raise bad()
            number = int(number)
        else:
            number = float(number)
        if (param.minimum is not None and number < param.minimum) or (
            param.maximum is not None and number > param.maximum
        ):
            raise bad()
        result = number
    else:
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise bad()
        result = value
    return result


def _parse_parameter(template: str, name: str, raw: object) -> Parameter:
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise ConfigError(f'template "{template}": parameter name "{name}" must be snake_case')
    if not isinstance(raw, dict):
        raise ConfigError(
            f'template "{template}": parameter "{name}" must be a mapping with type and default'
        )
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(
            f'template "{template}": parameter "{name}" has type {kind!r}; '
            f"valid types: {', '.join(PARAM_TYPES)}"
        )
    choices = raw.get("choices", [])
    minimum, maximum = raw.get("min"), raw.get("max")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ConfigError(f'template "{template}": parameter "{name}" choices must be a list of strings')
    for bound in (minimum, maximum):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise ConfigError(f'template "{template}": parameter "{name}" min/max must be numbers')
    if "default" not in raw:
        raise ConfigError(f'template "{template}": parameter "{name}" has no default')
    param = Parameter(
        name=name,
        type=cast(ParamType, kind),
        default="",
        description=str(raw.get("description", "")),
        minimum=minimum,
        maximum=maximum,
        choices=tuple(choices),
    )
    default = _coerce(template, param, raw["default"], source="default of parameter")
    return Parameter(
        name=param.name,
        type=param.type,
        default=default,
        description=param.description,
        minimum=param.minimum,
        maximum=param.maximum,
        choices=param.choices,
    )


def _parse_step(template: str, index: int, raw: object, parameters: Mapping[str, Parameter]) -> Step:
    where = f'template "{template}" step {index + 1}'
    if not isinstance(raw, dict) or not isinstance(raw.get("collector"), str):
        raise ConfigError(f"{where} must be a mapping with a 'collector' name")
    unknown_keys = set(raw) - {"collector", "params", "window"}
    if unknown_keys:
        raise ConfigError(
            f"{where} has unknown keys {sorted(unknown_keys)}; valid keys: collector, params, window"
        )
    collector = raw["collector"]
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where} ({collector}): params must be a mapping")
    checked: dict[str, StepValue] = {}
    for key, value in params.items():
        valid = isinstance(value, int | float | bool | str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if not valid:
            raise ConfigError(
                f"{where} ({collector}): param {key!r} must be a string, number, boolean or list of strings"
            )
        if isinstance(value, str) and (ref := _REFERENCE.match(value)) and ref.group(1) not in parameters:
            raise ConfigError(
                f'{where} ({collector}): param {key!r} refers to "${{{ref.group(1)}}}", '
                f"which is not a parameter of the template; "
                f"declared parameters: {', '.join(sorted(parameters)) or '(none)'}"
            )
        checked[str(key)] = value
    window = raw.get("window")
    if window is not None and not isinstance(window, str):
        raise ConfigError(f"{where} ({collector}): window must be a string")
    return Step(collector=collector, params=checked, window=window)


def check_redaction_pattern_name(name: object, *, where: str) -> str:
    if not isinstance(name, str) or not _PATTERN_NAME.match(name):
        raise ConfigError(f"{where}: name {name!r:.60} must be lower-case letters, digits and '-', at most 40 "
                          "characters, starting and ending with a letter or digit (acme-token); the manifest "
                          "records each hit as custom:<name>")
    return name


def parse_redaction_patterns(raw: object, *, where: str) -> tuple[tuple[str, str], ...]:
    """The shape of a ``patterns`` list: ``[{name, regex}, ...]`` as (name, regex) pairs. The
    regexes are checked where they are compiled (:mod:`debugcap.bundle.redact_custom`)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of {{name: ..., regex: ...}} mappings, got {type(raw).__name__}")
    if len(raw) > MAX_REDACTION_PATTERNS:
        raise ConfigError(f"{where} has {len(raw)} patterns, more than {MAX_REDACTION_PATTERNS}; every pattern "
                          "reads every line of evidence: join formats into one regex with |")
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at} must be a mapping {{name: ..., regex: ...}}, got {item!r:.60}")
        unknown = sorted(str(k) for k in set(item) - {"name", "regex", "description"})
        if unknown:
            raise ConfigError(f"{at} has unknown key {unknown[0]!r}; valid keys: name, regex, description")
        name = check_redaction_pattern_name(item.get("name"), where=at)
        regex = item.get("regex")
        if not isinstance(regex, str) or not regex:
            raise ConfigError(f'{at} ("{name}"): regex must be a non-empty string (quote it in YAML: '
                              "regex: 'acme_[A-Za-z0-9]{32}')")
        pairs.append((name, regex))
    return tuple(pairs)


def _parse_redaction(template: str, raw: object) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or set(raw) - {"patterns"}:
        raise ConfigError(f'template "{template}": redaction must be a mapping with patterns: [{{name, regex}}]')
    return parse_redaction_patterns(raw.get("patterns"), where=f'template "{template}" redaction.patterns')


# libyaml's safe loader when PyYAML has it: the templates are read for every capture, and the
# pure-Python loader took ~0.6 ms of operator CPU per pod of a sweep (issue 17); same constructor.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_template(text: str, *, source: str = "<string>") -> Template:
    """Parse and check one template document; errors name ``source`` and the bad field."""
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader, libyaml's when there
    except yaml.YAMLError as exc:
        raise ConfigError(f"template file {source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            f"template file {source} must be a mapping with name, description, parameters, steps"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"template file {source}: name must be kebab-case, got {name!r}")
    raw_params = raw.get("parameters") or {}
    raw_steps = raw.get("steps")
    if not isinstance(raw_params, dict):
        raise ConfigError(f'template "{name}": parameters must be a mapping')
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f'template "{name}": steps must be a non-empty list')
    parameters = {str(p): _parse_parameter(name, str(p), spec) for p, spec in raw_params.items()}
    steps = tuple(_parse_step(name, i, step, parameters) for i, step in enumerate(raw_steps))
    return Template(
        name=name, description=str(raw.get("description", "")).strip(), parameters=parameters, steps=steps,
        redaction_patterns=_parse_redaction(name, raw.get("redaction")),
    )


def load_template(name: str, *, directory: Traversable | None = None) -> Template:
    """The template called ``name``. ``directory`` is for tests; None means the packaged templates."""
    available = _available(directory or _templates_dir())
    entry = available.get(name)
    if entry is None:
        raise ConfigError(
            f'unknown template "{name}"; {_suggest(name, available)}'
            f"available templates: {', '.join(sorted(available))}"
        )
    template = parse_template(entry.read_text(encoding="utf-8"), source=entry.name)
    if template.name != name:
        raise ConfigError(f'template file {entry.name} declares name "{template.name}"; rename one to match')
    return template


def list_templates(*, directory: Traversable | None = None) -> list[Template]:
    """Every template, sorted by name."""
    return [
        load_template(name, directory=directory) for name in sorted(_available(directory or _templates_dir()))
    ]


def check_collectors(template: Template, collectors: Collection[str]) -> None:
    """Raise :class:`ConfigError` if a step names a collector not in ``collectors``."""
    for index, step in enumerate(template.steps):
        if step.collector not in collectors:
            raise ConfigError(
                f'template "{template.name}" step {index + 1} uses collector "{step.collector}", '
                f"which is not registered; {_suggest(step.collector, collectors)}"
                f"registered collectors: {', '.join(sorted(collectors))}"
            )


def expand(
    template_name: str,
    overrides: Mapping[str, object] | None = None,
    *,
    collectors: Collection[str] | None = None,
    directory: Traversable | None = None,
) -> ExpandedTemplate:
    """Fill a template's parameters from ``overrides`` (defaults for the rest) into its steps.

    ``overrides`` values may be typed (from a CR spec) or strings (from ``-p key=value``).
    ``collectors``, when given, is the engine's registry: unknown collector names are errors.

    >>> expand("go-leak", {"snapshots": "5"}).steps[0].params["snapshots"]
    5
    """
    template = load_template(template_name, directory=directory)
    if collectors is not None:
        check_collectors(template, collectors)
    values: dict[str, ParamValue] = {name: param.default for name, param in template.parameters.items()}
    for key, value in (overrides or {}).items():
        param = template.parameters.get(key)
        if param is None:
            valid = ", ".join(sorted(template.parameters)) or "(none)"
            raise ConfigError(
                f'template "{template.name}" has no parameter "{key}"; {_suggest(key, template.parameters)}'
                f"valid parameters: {valid}"
            )
        values[key] = _coerce(template.name, param, value, source="parameter")
    steps = tuple(
        Step(
            collector=step.collector,
            params={key: _substitute(value, values) for key, value in step.params.items()},
            window=step.window,
        )
        for step in template.steps
    )
    return ExpandedTemplate(
        name=template.name, description=template.description, parameters=values, steps=steps,
        redaction_patterns=template.redaction_patterns,
    )


def _substitute(value: StepValue, values: Mapping[str, ParamValue]) -> StepValue:
    if isinstance(value, str) and (ref := _REFERENCE.match(value)):
        return values[ref.group(1)]
    return value
