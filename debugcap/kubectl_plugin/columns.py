"""The columns ``get`` prints: the CRD's ``additionalPrinterColumns``, cell for cell as kubectl shows them.

The columns are read from the CRD files shipped in the package (``debugcap/crds`` is a link to the
repository's ``crds/``, the one source the chart links to as well), not from the cluster's
installed CRD: reading ``customresourcedefinitions`` is a cluster-scoped right that a user who may
only read DebugCaptures in their namespace does not have, and it would cost a request per ``get``.
The plugin and the CRDs are released together, so the shipped columns are the installed ones.

Cells follow the API server's table convertor (``apiextensions-apiserver``'s ``tableconvertor``):
the first value the column's JSONPath reaches; a ``string`` column prints it as text (maps and
lists as JSON), ``integer``/``number``/``boolean`` only values of that type, ``date`` the age of a
timestamp as ``duration.HumanDuration`` writes it; anything else is an empty cell. Priority-0
columns are the table, ``-o wide`` adds the others.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from debugcap import errors
from debugcap.kubectl_plugin import jsonpath
from debugcap.resources import GROUP


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    priority: int = 0
    description: str = ""

    @functools.cached_property
    def path(self) -> jsonpath.JSONPath:
        return jsonpath.parse(self.json_path)


@dataclass(frozen=True)
class Resource:
    """One debugcap.io kind, as the plugin names and prints it."""

    plural: str
    kind: str

    @property
    def qualified(self) -> str:
        """What ``-o name`` prefixes a name with, as kubectl: ``debugschedule.debugcap.io``."""
        return f"{self.kind.lower()}.{GROUP}"

    def columns(self) -> list[Column]:
        return list(_columns(self.plural))


CAPTURES = Resource("debugcaptures", "DebugCapture")
SCHEDULES = Resource("debugschedules", "DebugSchedule")
TRIGGERS = Resource("debugtriggers", "DebugTrigger")
TEMPLATES = Resource("debugcapturetemplates", "DebugCaptureTemplate")


def crd(plural: str) -> dict[str, Any]:
    """The CRD of ``plural`` as shipped with the plugin."""
    from importlib import resources as package_files

    import yaml

    path = package_files.files("debugcap") / "crds" / f"{GROUP}_{plural}.yaml"
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise errors.ConfigError(f"the plugin's copy of the {plural} CRD is missing ({exc}); reinstall "
                                 "debugcap") from exc
    return doc


@functools.cache
def _columns(plural: str) -> tuple[Column, ...]:
    versions = crd(plural)["spec"]["versions"]
    served = next((v for v in versions if v.get("storage")), versions[0])
    return tuple(Column(c["name"], c["type"], c["jsonPath"], int(c.get("priority", 0)), c.get("description", ""))
                 for c in served.get("additionalPrinterColumns") or [])


def header(columns: list[Column], *, wide: bool) -> list[str]:
    return ["NAME", *(c.name.upper() for c in columns if wide or c.priority == 0)]


def row(obj: dict[str, Any], columns: list[Column], *, wide: bool, now: datetime | None = None) -> list[str]:
    """The cells of ``obj``: its name, then each shown column's."""
    now = now or datetime.now(UTC)
    return [str(obj.get("metadata", {}).get("name", "")),
            *(cell(obj, c, now) for c in columns if wide or c.priority == 0)]


def cell(obj: dict[str, Any], column: Column, now: datetime) -> str:
    found, value = column.path.first(obj)
    if not found or value is None:
        return ""
    kind = column.type
    if kind == "string":
        return _text(value)
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value))
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _go_float(float(value))
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "date" and isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "<invalid>"
        if when.tzinfo is None:
            return "<invalid>"  # RFC 3339 demands a zone; the API server refuses the value
        return human_duration((now - when).total_seconds())
    return ""


def _text(value: Any) -> str:
    """client-go jsonpath's text of a value: strings as they are, maps and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: no ".0" on whole numbers, an exponent from 1e21 on."""
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: 2-3 significant figures."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"
