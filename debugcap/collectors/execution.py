"""Running commands in the target container for exec collectors.

Images differ: busybox ``ps`` rejects ``aux``, distroless images have no shell,
slim images lack ``lsof`` or ``ss``. So a collector lists alternatives and the
first that works wins; a missing tool is a skip with its reason, and a command
that fails or hangs keeps whatever output it produced before.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from debugcap import errors
from debugcap.collectors.base import CollectContext, CollectorResult, Scratch, Status
from debugcap.kube import exec as kexec
from debugcap.kube.shell import Unavailable

NO_SHELL = ("the container has no shell (a distroless or scratch image): exec collectors are skipped in "
            "command mode exec; auto or ephemeral (--command-mode, or commandMode where the operator enables "
            "debug containers) reads the same evidence from an ephemeral debug container. The Go runtime and "
            "Kubernetes evidence is still collected")


def in_debug_container(ctx: CollectContext) -> bool:
    """Whether commands run in an ephemeral debug container beside the target (which then reads the
    target through /proc/1: its root, mounts and environment are not the container's own)."""
    try:
        ctx.commands.check()
    except Unavailable:
        return False  # run() reports why
    return getattr(ctx.commands, "via", "") == "ephemeral"


def run(ctx: CollectContext, bundle_path: str, alternatives: Sequence[Sequence[str]], *,
        ok_exit_codes: tuple[int, ...] = (0,), inspect: Callable[[Scratch], None] | None = None) -> CollectorResult:
    """Run the first alternative that exists; its stdout becomes ``bundle_path``."""
    try:
        ctx.commands.check()
    except Unavailable as exc:
        if exc.no_shell:
            return CollectorResult(Status.SKIPPED, NO_SHELL)
        return CollectorResult(Status.FAILED, f"cannot run commands in the container: {exc}")
    missing: list[str] = []
    last: CollectorResult | None = None
    for argv in alternatives:
        with ctx.scratch() as (fh, scratch):
            err = io.BytesIO()
            res = ctx.commands.run(list(argv), stdout=fh, stderr=err, timeout=ctx.settings.exec_timeout_seconds,
                                   max_bytes=ctx.settings.output_cap_bytes)
            fh.flush()
            if res.tool_missing and res.stdout_bytes == 0:
                tool = argv[0] if argv[0] != "sh" else " ".join(argv[2:])[:40]
                if tool not in missing:  # `ps aux`, `ps -ef`, `ps` miss one tool, named once
                    missing.append(tool)
                continue
            ok = res.exit_code in ok_exit_codes and not res.timed_out
            if not ok and res.stdout_bytes == 0 and argv is not alternatives[-1]:
                # e.g. busybox `ps aux`: the tool exists but not that form; try the next one.
                last = _failure(argv, res, err.getvalue(), ctx)
                continue
            if inspect is not None:
                inspect(scratch)
            ctx.add(bundle_path, scratch)
            return _result(argv, res, err.getvalue(), bundle_path, ctx, ok)
    if last is not None:
        return last
    return CollectorResult(Status.SKIPPED, f"not available in the container: {', '.join(missing)}")


def _result(argv: Sequence[str], res: kexec.ExecResult, stderr: bytes, path: str, ctx: CollectContext,
            ok: bool) -> CollectorResult:
    cmd = " ".join(argv)
    if res.timed_out:
        return CollectorResult(Status.PARTIAL, f"`{cmd}` timed out after {ctx.settings.exec_timeout_seconds:.0f}s; "
                               f"output up to then kept in {path}", (path,))
    if res.truncated:
        return CollectorResult(Status.PARTIAL, f"`{cmd}` output cut at {ctx.settings.output_cap_bytes} bytes "
                               "(raise the output cap to keep more)", (path,))
    if not ok:
        return CollectorResult(Status.PARTIAL, f"`{cmd}` exited {res.exit_code}: "
                               f"{errors.shorten(stderr.decode(errors='replace') or res.status_message)}", (path,))
    return CollectorResult(Status.OK, "", (path,))


def _failure(argv: Sequence[str], res: kexec.ExecResult, stderr: bytes, ctx: CollectContext) -> CollectorResult:
    why = "timed out" if res.timed_out else f"exited {res.exit_code}"
    detail = errors.shorten(stderr.decode(errors="replace") or res.status_message)
    return CollectorResult(Status.FAILED, f"`{' '.join(argv)}` {why}: {detail}")


def shell(script: str) -> list[str]:
    return ["sh", "-c", script]
