"""Files deleted but still held open: disk space `du` cannot see and `df` still counts."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution

SCRIPT = "for f in /proc/[0-9]*/fd/*; do l=$(readlink \"$f\" 2>/dev/null) || continue; " \
         "case \"$l\" in *'(deleted)') echo \"$f -> $l\";; esac; done"


class DeletedFilesCollector(base.Collector):
    name = "deleted-files"
    kind = base.Kind.EXEC
    description = "deleted files still held open by a process"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        return execution.run(ctx, layout.FS_DELETED_OPEN, [execution.shell(SCRIPT)])
