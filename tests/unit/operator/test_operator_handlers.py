"""The one list of handler modules: every module with a kopf handler is in it, and kopf knows them.

Cases: each debugcap.operator module that decorates a function with ``@kopf.`` is listed in
``handlers.MODULES`` (and only those); after importing ``handlers``, kopf's registry holds a
handler of each of the five resources and the start-up handler.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

import kopf

import debugcap.operator
from debugcap.operator import handlers


def test_every_module_with_a_kopf_handler_is_listed_once() -> None:
    root = Path(debugcap.operator.__file__).parent
    decorated = {m.name for m in pkgutil.iter_modules([str(root)])
                 if "\n@kopf." in (root / f"{m.name}.py").read_text()}
    assert decorated == {m.__name__.rsplit(".", 1)[-1] for m in handlers.MODULES}
    assert decorated == {"startup", "captures", "schedules", "capture_templates", "triggers", "downloads",
                         "alert_webhook"}


def test_kopf_knows_a_handler_of_each_resource_after_importing_the_list() -> None:
    registry = kopf.get_default_registry()
    plurals = {h.selector.any_name for h in [*registry._changing.get_all_handlers(),  # noqa: SLF001
                                           *registry._spawning.get_all_handlers()]  # noqa: SLF001
               if h.selector is not None}
    assert plurals >= {"debugcaptures", "debugschedules", "debugcapturetemplates", "debugtriggers", "debugdownloads"}
    assert "configure" in {h.id for h in registry._activities.get_all_handlers()}  # noqa: SLF001
