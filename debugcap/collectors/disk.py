"""Disk use: `df -h`, `df -i` and the largest entries of the process's working directory."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


def du_script(top: int) -> str:
    # One du of "." with -x, not one per entry: a du started on /proc or /sys (what `du -x *` does
    # from /) walks that whole file system, the costliest command of a capture, to report zeros.
    # The first line after the sort is "." itself, the sum of the rest.
    return (f"cd /proc/1/cwd 2>/dev/null || cd /; du -axk -d 1 . 2>/dev/null | sort -rn | sed -n '2,{int(top) + 1}p'")


class DiskCollector(base.Collector):
    name = "disk"
    kind = base.Kind.EXEC
    description = "df -h, df -i, largest entries of the working directory (du)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        results = [execution.run(ctx, layout.FS_DF, [["df", "-h"]])]
        if ctx.param("inodes", True):
            results.append(execution.run(ctx, layout.FS_DF_INODES, [["df", "-i"]]))
        results.append(execution.run(ctx, layout.FS_DU_TOP, [execution.shell(du_script(ctx.param("du_top", 20)))]))
        return base.CollectorResult.worst(results)
