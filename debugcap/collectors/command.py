"""A command chosen by a cluster admin in a DebugCaptureTemplate, its output in custom/<name>.txt.

Only templates carry commands: a DebugCapture can name a template but never
add a command. ``argv`` must be a fixed list in the template; template
parameters are substituted only into whole-string values, so a capture's
parameters can never become part of a command line.
"""

from __future__ import annotations

from debugcap import errors
from debugcap.bundle import layout
from debugcap.collectors import base, execution


class CommandCollector(base.Collector):
    name = "command"
    kind = base.Kind.EXEC
    description = "an admin-defined command (params: name, argv), output in custom/<name>.txt"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        name = ctx.params.get("name")
        argv = ctx.params.get("argv")
        if not isinstance(name, str) or not name:
            raise errors.ConfigError('a "command" step needs params.name (kebab-case, names custom/<name>.txt)')
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
            raise errors.ConfigError(f'the "command" step "{name}" needs params.argv: a non-empty list of '
                                     'strings, e.g. ["cat", "/proc/loadavg"]')
        try:
            path = layout.custom_path(name)
        except errors.BundleError as exc:
            raise errors.ConfigError(str(exc)) from exc
        return execution.run(ctx, path, [argv])
