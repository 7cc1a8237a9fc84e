"""Many commands over one exec: a ``sh`` in the container that reads them from stdin.

Each exec costs a websocket and TLS handshake, an API server to kubelet stream, and a
``runc exec`` on the node. ``debug-full`` runs about 20 commands per pod, and with one
exec per command a 20-pod capture spent most of the node's CPU on exec set-up. A session
pays that cost once, and each command runs as a child of its shell.

Framing: every command line ends with markers that carry a random nonce. On stdout,
``<nonce>rc=N`` follows the command's output. On stderr, ``<nonce>pid=N`` comes before its
output (so a timed-out command can be killed in the pod) and ``<nonce>end`` comes after it.
Output passes through byte for byte. A command would have to print a 128-bit random
string to be taken for a marker.
"""

from __future__ import annotations

import io
import re
import secrets
import shlex
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from debugcap import errors
from debugcap.kube import exec as kexec
from debugcap.kube.client import Kube

# Defined once per session; each command runs as `__debugcap_run NONCE ARGV...`. The function's
# body is a subshell (a fork of the session's shell, no new `sh` to exec: that cost 0.6 ms of the
# pod's CPU per command) that reads its own pid from /proc/self/stat, prints it, then execs the
# command, so the pid line names exactly what to kill. The PATH lookup is ours because a busybox
# built with "prefer applets" would run its own `df` over a `df` found first in PATH, where a
# plain exec (runc) runs the one in PATH.
_RUNNER = ('__debugcap_run() ( read -r p _ < /proc/self/stat; printf "%spid=%d\\n" "$1" "$p" >&2; shift; '
           'c=$1; shift; case $c in */*) ;; *) IFS=:; '
           'for d in $PATH; do if [ -n "$d" ] && [ -f "$d/$c" ] && [ -x "$d/$c" ]; then c=$d/$c; break; fi; '
           'done; unset IFS;; esac; exec "$c" "$@" )\n')
# Kills the timed-out command and its children: a `sh -c 'a | b'` left alone keeps running in the pod.
_KILL = ('p=$1; for s in /proc/[0-9]*/stat; do set -- $(cat "$s" 2>/dev/null); '
         '[ "${4:-}" = "$p" ] && kill -9 "$1" 2>/dev/null; done; kill -9 "$p" 2>/dev/null; true')
_RC = re.compile(rb"^(\d+)\n")
_PID = re.compile(rb"^pid=(\d+)\n")
# Most bytes kept after an end marker: the exit code's line needs a few. More is a process the
# command left behind writing to the session (a flood after the marker once cost ~300 MB and a
# core for 30 s, each frame copied onto what came before): the session is dropped instead.
AFTER_BYTES = 64


class Unavailable(errors.CollectorError):
    """The container cannot run a shell session: it has no ``sh`` (``no_shell``), or exec failed."""

    def __init__(self, message: str, *, no_shell: bool = False) -> None:
        super().__init__(message)
        self.no_shell = no_shell


class _Broken(Exception):
    """The session died before its command produced anything: safe to retry on a new session."""


class _Until:
    """Pass a byte stream to ``sink`` up to ``marker``; keep what follows it in ``after`` (at most
    :data:`AFTER_BYTES`: ``overflow`` once more came)."""

    def __init__(self, marker: bytes, sink: Callable[[bytes], None]) -> None:
        self.marker, self.sink = marker, sink
        self.tail = b""
        self.found = self.overflow = False
        self.after = b""

    def feed(self, data: bytes) -> None:
        if self.found:
            self._keep(data)
            return
        buf = self.tail + data if self.tail else data
        i = buf.find(self.marker)
        if i >= 0:
            if i:
                self.sink(buf[:i])
            self.found, self.tail = True, b""
            self._keep(buf[i + len(self.marker):])
            return
        # Hold back what could be the start of a marker split across frames.
        cut = max(len(buf) - (len(self.marker) - 1), 0)
        if cut:
            self.sink(buf[:cut])
        self.tail = buf[cut:]

    def _keep(self, data: bytes) -> None:
        room = AFTER_BYTES - len(self.after)
        self.overflow = self.overflow or len(data) > room
        if room > 0:
            self.after += data[:room]

    def flush(self) -> None:
        """The stream ended without the marker: what was held back is output too."""
        if self.tail:
            self.sink(self.tail)
            self.tail = b""


class Session:
    """One ``sh`` in the target container; runs one command at a time."""

    def __init__(self, kube: Kube, *, namespace: str, pod: str, container: str | None, timeout: float) -> None:
        self.kube, self.namespace, self.pod, self.container = kube, namespace, pod, container
        self.broken = False
        self._defined = False  # _RUNNER sent
        self._stream = kexec.Stream(kube, namespace=namespace, pod=pod, container=container, command=["sh"],
                                    stdin=True, timeout=timeout)
        try:
            # The exec API opens the websocket before the runtime starts the command, so a missing
            # `sh` only shows as a status frame: wait for one round trip to know.
            res = self.run(["true"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=timeout, max_bytes=1 << 20)
        except _Broken as exc:
            self.close()
            no_shell = any(m in str(exc).lower() for m in kexec.NOT_FOUND_MARKERS)
            raise Unavailable(f"cannot start sh in {self._stream.where}: {exc}", no_shell=no_shell) from exc
        if not res.ok:
            self.close()
            raise Unavailable(f"cannot start sh in {self._stream.where}: "
                              f"{res.status_message or f'exit code {res.exit_code}'}")

    def run(self, argv: Sequence[str], *, stdout: IO[bytes], stderr: IO[bytes],
            timeout: float, max_bytes: int) -> kexec.ExecResult:
        """Run ``argv`` in the session; same contract as :func:`debugcap.kube.exec.run`.

        Raises ``_Broken`` when the session was already dead, before any output: the caller
        may retry the command on a new session.
        """
        if self.broken:
            raise _Broken("session closed")
        started = time.monotonic()
        deadline = started + timeout
        nonce = f"__debugcap_{secrets.token_hex(16)}_".encode()
        line = ("" if self._defined else _RUNNER) + (
            f"__debugcap_run {nonce.decode()} {shlex.join(argv)} </dev/null; "
            f"printf '%src=%d\\n' {nonce.decode()} \"$?\"; printf '%send\\n' {nonce.decode()} >&2\n")
        self._defined = True
        out = kexec.CappedSink(stdout, max_bytes)
        err = kexec.CappedSink(stderr, kexec.MAX_STDERR_BYTES)
        stdout_scan = _Until(nonce + b"rc=", out.write)
        stderr_scan = _Until(nonce + b"end\n", err.write)
        pid = _PidLine(nonce, stderr_scan.feed)
        status = b""
        timed_out = False
        try:
            self._stream.write_stdin(line.encode())
        except kexec.Closed as exc:
            self.broken = True
            raise _Broken(str(exc)) from exc
        while not (stdout_scan.found and _RC.match(stdout_scan.after) and stderr_scan.found):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            try:
                got = self._stream.frame(min(remaining, kexec.POLL_SECONDS))
            except kexec.Closed as exc:
                self.broken = True
                if not (stdout_scan.found or out.written or err.written):
                    raise _Broken(str(exc)) from exc
                break
            if got is None:
                continue
            channel, payload = got
            if channel == kexec.STDOUT_CHANNEL:
                stdout_scan.feed(payload)
                if out.truncated or stdout_scan.overflow:
                    # Past the cap (or flooding past the end) nothing more is kept: drop the session.
                    break
            elif channel == kexec.STDERR_CHANNEL:
                pid.feed(payload)
                if stderr_scan.overflow:
                    break
            elif channel == kexec.STATUS_CHANNEL:
                # The shell itself ended (or never started): the session is over.
                status += payload
                self.broken = True
                if not (stdout_scan.found or out.written or err.written):
                    code, message = kexec.parse_status(status)
                    raise _Broken(message or f"sh exited {code}")
                break
        rc = _RC.match(stdout_scan.after) if stdout_scan.found else None
        done = rc is not None and stderr_scan.found
        if stdout_scan.overflow or stderr_scan.overflow:
            # Done or not, something still writes into the session: it would flood the next command.
            self.broken = True
        if not done:
            self.broken = True
            if not stdout_scan.found:
                stdout_scan.flush()
            pid.flush()
            stderr_scan.flush()
            if pid.pid is not None:
                self._kill(pid.pid)
        return kexec.ExecResult(
            command=tuple(argv), exit_code=int(rc.group(1)) if rc and not timed_out else None,
            stdout_bytes=out.written, stderr_bytes=err.written, truncated=out.truncated, timed_out=timed_out,
            duration_s=time.monotonic() - started,
            status_message="" if done else kexec.parse_status(status)[1],
        )

    def _kill(self, pid: int) -> None:
        """Stop a command we gave up on, so it does not go on running in the pod."""
        if pid <= 1:  # never the container's init (or, with 0, everything whose parent is 0)
            return
        try:
            with tempfile.TemporaryFile() as sink:
                kexec.run(self.kube, namespace=self.namespace, pod=self.pod, container=self.container,
                          command=["sh", "-c", _KILL, "sh", str(pid)], stdout=sink, stderr=sink, timeout=10)
        except errors.CollectorError:
            pass  # best effort: the capture has its result either way

    def close(self) -> None:
        self.broken = True
        try:
            self._stream.write_stdin(b"exit 0\n")
        except kexec.Closed:
            pass
        self._stream.close()


class _PidLine:
    """Take our ``<nonce>pid=N`` line off the front of a command's stderr; pass the rest on."""

    def __init__(self, nonce: bytes, sink: Callable[[bytes], None]) -> None:
        self.nonce, self.sink = nonce, sink
        self.pid: int | None = None
        self._head: bytes | None = b""  # None once the line is dealt with

    def feed(self, data: bytes) -> None:
        if self._head is None:
            self.sink(data)
            return
        head = self._head + data
        if len(head) < len(self.nonce) and self.nonce.startswith(head):
            self._head = head
            return
        if not head.startswith(self.nonce):
            # `sh -c` never ran, so there is no pid line: all of it is the command's stderr.
            self._head = None
            self.sink(head)
            return
        nl = head.find(b"\n")
        if nl < 0:
            self._head = head
            return
        m = _PID.match(head[len(self.nonce):nl + 1])
        self._head = None
        if m is None:
            self.sink(head)  # not our pid line (the end marker of a command that never started)
            return
        self.pid = int(m.group(1))
        if head[nl + 1:]:
            self.sink(head[nl + 1:])

    def flush(self) -> None:
        if self._head:
            self.sink(self._head)
        self._head = None


class Pool:
    """Up to ``size`` sessions in one container, opened on demand and shared by the collectors.

    :meth:`available` answers whether the container has a shell; the first session opened
    is the probe, so knowing costs nothing extra.
    """

    def __init__(self, kube: Kube, *, namespace: str, pod: str, container: str | None, size: int = 2,
                 open_timeout: float = 15.0, on_unavailable: Callable[[Unavailable], None] | None = None) -> None:
        self.kube, self.namespace, self.pod, self.container = kube, namespace, pod, container
        self.size, self.open_timeout = max(size, 1), open_timeout
        self._on_unavailable = on_unavailable or (lambda _m: None)
        self._cond = threading.Condition()
        self._idle: list[Session] = []
        self._open = 0  # sessions in use or idle, plus ones being opened
        self._unavailable: Unavailable | None = None
        self._probed = False
        self._closed = False

    def check(self) -> None:
        """Raise :class:`Unavailable` unless commands can run; opens the first session if needed."""
        self._release(self._acquire())

    def run(self, argv: Sequence[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float,
            max_bytes: int) -> kexec.ExecResult:
        for attempt in (1, 2):
            session = self._acquire()
            try:
                return session.run(argv, stdout=stdout, stderr=stderr, timeout=timeout, max_bytes=max_bytes)
            except _Broken as exc:
                if attempt == 2:
                    raise errors.CollectorError(f"exec session in {self.namespace}/{self.pod} ended: {exc}") from exc
            finally:
                self._release(session)
        raise AssertionError("unreachable")

    def _acquire(self) -> Session:
        with self._cond:
            while True:
                if self._unavailable is not None:
                    raise Unavailable(str(self._unavailable), no_shell=self._unavailable.no_shell)
                if self._closed:
                    raise Unavailable("the capture is over")
                if self._idle:
                    return self._idle.pop()
                # Until the first session is up, nobody else opens one: a container without a
                # shell then costs one failed exec, not one per waiting collector.
                if self._open < self.size and (self._probed or self._open == 0):
                    self._open += 1
                    break
                self._cond.wait()
        try:
            session = Session(self.kube, namespace=self.namespace, pod=self.pod, container=self.container,
                              timeout=self.open_timeout)
        except errors.CollectorError as exc:
            failed = exc if isinstance(exc, Unavailable) else Unavailable(str(exc))
            with self._cond:
                self._open -= 1
                first = not self._probed
                if first:
                    self._unavailable = failed
                self._cond.notify_all()
            if first:
                self._on_unavailable(failed)
            raise failed from exc
        with self._cond:
            self._probed = True
            self._cond.notify_all()
        return session

    def _release(self, session: Session) -> None:
        with self._cond:
            if session.broken or self._closed:
                self._open -= 1
                drop = True
            else:
                self._idle.append(session)
                drop = False
            self._cond.notify_all()
        if drop:
            session.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for s in idle:
            s.close()
