"""Open files and sockets: `lsof -i`, `lsof -p 1`, and `ls -l /proc/1/fd` (which needs no lsof)."""

from debugcap.bundle import layout
from debugcap.collectors import base, execution


class OpenFilesCollector(base.Collector):
    name = "open-files"
    kind = base.Kind.EXEC
    description = "open files and sockets (lsof -i, lsof -p 1, ls -l /proc/1/fd)"

    def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
        fd = execution.run(ctx, layout.PROC_FD, [["ls", "-l", "/proc/1/fd"]])
        lsof_i = execution.run(ctx, layout.PROC_LSOF_I, [["lsof", "-n", "-P", "-i"]], ok_exit_codes=(0, 1))
        if lsof_i.status is base.Status.SKIPPED:
            # /proc/1/fd already lists every descriptor; lsof only adds names, so its absence is fine.
            return base.CollectorResult(fd.status, fd.message or "lsof is not installed; "
                                        "the descriptors are listed from /proc/1/fd", fd.files)
        lsof_p = execution.run(ctx, layout.PROC_LSOF_P1, [["lsof", "-n", "-P", "-p", "1"]])
        return base.CollectorResult.worst([fd, lsof_i, lsof_p])
