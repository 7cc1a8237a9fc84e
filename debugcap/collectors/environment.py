"""The main process's environment, through the allowlist (the bundle writer masks the rest).

Read from /proc/1/environ rather than `env`: the exec'd shell's environment is
the container spec's, not what the running process actually has. ``GODEBUG`` is noted for the
manifest's ``runtime``: no Go endpoint reveals its value, the process's environment does.
"""

import re

from debugcap.bundle import layout
from debugcap.collectors import base, execution

# GODEBUG's own syntax (name=value pairs, comma-separated); anything else is not noted.
_GODEBUG = re.compile(rb"^GODEBUG=([A-Za-z0-9_.]+=[A-Za-z0-9_.]*(?:,[A-Za-z0-9_.]+=[A-Za-z0-9_.]*)*)$")


class EnvironmentCollector(base.Collector):
    name = "environment"
    kind = base.Kind.EXEC
    description = "environment of PID 1, allowlisted (PATH, HOME, KUBERNETES_*, APP_*, GO*), secrets masked"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        environ = execution.shell("tr '\\0' '\\n' < /proc/1/environ")
        # `env` would print the debug container's own environment, not the target's.
        alternatives = [environ] if execution.in_debug_container(ctx) else [environ, ["env"]]
        def note_godebug(scratch: base.Scratch) -> None:
            for line in scratch.reader():
                found = _GODEBUG.match(line.rstrip(b"\n")[:1024])
                if found:
                    ctx.note("GODEBUG", found.group(1).decode())

        return execution.run(ctx, layout.ENV_ENVIRONMENT, alternatives, inspect=note_godebug)
