"""Disk use: `df -h`, `df -i` and the largest entries of the process's working directory.

From an ephemeral debug container `df` would describe the debug container's own mounts, so the
target's are read from /proc/1/mounts and measured with `stat -f` through /proc/1/root, printed
in df's columns (``-h`` sizes, ``-i`` inode counts) so the bundle and its readers stay the same.
"""

from debugcap.bundle import layout
from debugcap.collectors import base, execution

# Pseudo file systems `df` leaves out too (they have no blocks).
_PSEUDO = "proc|sysfs|cgroup|cgroup2|devpts|mqueue|securityfs|debugfs|tracefs|pstore|bpf|configfs|fusectl|" \
          "hugetlbfs|binfmt_misc|autofs|nsfs|rpc_pipefs"


def du_script(top: int) -> str:
    # One du of "." with -x, not one per entry: a du started on /proc or /sys (what `du -x *` does
    # from /) walks that whole file system, the costliest command of a capture, to report zeros.
    # The first line after the sort is "." itself, the sum of the rest.
    return (f"cd /proc/1/cwd 2>/dev/null || cd /; du -axk -d 1 . 2>/dev/null | sort -rn | sed -n '2,{int(top) + 1}p'")


def target_df_script(*, inodes: bool) -> str:
    """`df -h` (or `df -i`) of the target's mounts, run beside it in a debug container."""
    header = "Filesystem Inodes Used Available Use% Mounted on" if inodes else \
        "Filesystem Size Used Available Use% Mounted on"
    # busybox df -h: KiB scaled to the largest unit below 1024, one decimal; 0 as "0".
    human = "" if inodes else \
        'function h(k, u, i) { if (k == 0) return "0"; split("K M G T P", u, " "); ' \
        "for (i = 1; k >= 1024 && i < 5; i++) k /= 1024; return sprintf(\"%.1f%s\", k, u[i]) } "
    number = "%d" if inodes else "%s"
    values = "t, u, a" if inodes else "h(t), h(u), h(a)"
    # stat -f: %b blocks, %f free, %a available to non-root, %S block size, %c inodes, %d free inodes.
    fields, calc = ("%c %d %d 1024", "t=x[1]; u=x[1]-x[2]; a=x[3]") if inodes else \
        ("%b %f %a %S", "t=x[1]*x[4]/1024; u=(x[1]-x[2])*x[4]/1024; a=x[3]*x[4]/1024")
    return (f'echo "{header}"; while read -r dev mnt type _; do case "$type" in {_PSEUDO}) continue;; esac; '
            f'set -- $(stat -f -c "{fields}" "/proc/1/root$mnt" 2>/dev/null); [ $# -eq 4 ] || continue; '
            f"awk -v d=\"$dev\" -v m=\"$mnt\" -v o=\"$1 $2 $3 $4\" '{human}BEGIN {{ split(o, x, \" \"); "
            f"{calc}; "
            f"if (t > 0) printf \"%s {number} {number} {number} %d%% %s\\n\", d, {values}, "
            "(u + a > 0 ? int((u * 100 + u + a - 1) / (u + a)) : 0), m }' "
            "; done < /proc/1/mounts")


class DiskCollector(base.Collector):
    name = "disk"
    kind = base.Kind.EXEC
    description = "df -h, df -i, largest entries of the working directory (du)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        beside = execution.in_debug_container(ctx)

        def df(inodes: bool) -> list[list[str]]:
            return [execution.shell(target_df_script(inodes=inodes))] if beside else [["df", "-i" if inodes else "-h"]]

        results = [execution.run(ctx, layout.FS_DF, df(False))]
        if ctx.param("inodes", True):
            results.append(execution.run(ctx, layout.FS_DF_INODES, df(True)))
        results.append(execution.run(ctx, layout.FS_DU_TOP, [execution.shell(du_script(ctx.param("du_top", 20)))]))
        return base.CollectorResult.worst(results)
