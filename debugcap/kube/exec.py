"""Run a command in a container through the Kubernetes exec API, binary-safe and bounded.

The websocket comes from :meth:`Kube.websocket` and we read its frames ourselves: the client's own
reader keeps a second copy of all output in memory (``WSClient._all``, with
no way to switch it off through ``stream()``) and concatenates buffers per
frame, so a large output costs quadratic time and twice its size in memory.
Reading frames here lets each channel go straight to its sink, keeps memory
flat, and lets the deadline really stop waiting.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import IO

from websocket import ABNF, WebSocketConnectionClosedException, WebSocketTimeoutException

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import Kube, segment

STDIN_CHANNEL = 0
STDOUT_CHANNEL = 1
STDERR_CHANNEL = 2
STATUS_CHANNEL = 3
V5_CLOSE_CHANNEL = 255
# Wake up at least this often so the deadline is checked even when the command is silent.
POLL_SECONDS = 2.0
MAX_STDERR_BYTES = 1 << 20

NOT_FOUND_MARKERS = ("executable file not found", "no such file or directory", ": not found")


@dataclass(frozen=True)
class ExecResult:
    """What happened; the output itself went to the caller's sinks."""

    command: tuple[str, ...]
    exit_code: int | None  # None: the command never reported one (timeout, lost connection, failed start)
    stdout_bytes: int
    stderr_bytes: int
    truncated: bool
    timed_out: bool
    duration_s: float
    status_message: str  # the API's message for a non-zero exit or a failed start

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def tool_missing(self) -> bool:
        """The command (or the shell) does not exist in the container: a skip, not a failure."""
        if self.exit_code in (126, 127):
            return True
        return self.exit_code is None and any(m in self.status_message.lower() for m in NOT_FOUND_MARKERS)


class CappedSink:
    def __init__(self, sink: IO[bytes], limit: int) -> None:
        self.sink, self.limit, self.written, self.truncated = sink, limit, 0, False

    def write(self, data: bytes) -> None:
        room = self.limit - self.written
        if len(data) > room:
            data, self.truncated = data[: max(room, 0)], True
        if data:
            self.sink.write(data)
            self.written += len(data)


class Closed(Exception):
    """The stream ended: the peer closed it, or the connection broke."""


class Stream:
    """One exec websocket: frames in, stdin out, closed for good by :meth:`close`."""

    def __init__(self, kube: Kube, *, namespace: str, pod: str, container: str | None, command: list[str],
                 stdin: bool, timeout: float) -> None:
        self.where = f'pod "{pod}" in namespace "{namespace}"' + (f' (container "{container}")' if container else "")
        query = [("command", c) for c in command] + ([("container", container)] if container else [])
        query += [("stdin", str(stdin).lower()), ("stdout", "true"), ("stderr", "true"), ("tty", "false")]
        path = f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}/exec"
        try:
            self._sock = kube.websocket(path, query, timeout=timeout)
        except Exception as exc:  # websocket-client raises many types for a failed handshake
            failure = kube_errors.from_handshake(path, kube.configuration.host, exc)
            raise errors.CollectorError(f"cannot exec {command[0]!r} in {self.where}: {failure}") from exc

    def frame(self, wait: float) -> tuple[int, bytes] | None:
        """The next (channel, payload), or None when nothing came within ``wait`` seconds."""
        self._sock.settimeout(max(wait, 0.001))
        while True:
            try:
                opcode, frame = self._sock.recv_data_frame(True)
            except WebSocketTimeoutException:
                return None
            except (WebSocketConnectionClosedException, ssl.SSLError, OSError) as exc:
                raise Closed(str(exc)) from exc
            if opcode == ABNF.OPCODE_CLOSE:
                raise Closed("closed by the API server")
            if opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT) or not frame.data:
                continue
            data = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
            return data[0], data[1:]

    def write_stdin(self, data: bytes) -> None:
        try:
            self._sock.send(bytes([STDIN_CHANNEL]) + data, opcode=ABNF.OPCODE_BINARY)
        except (WebSocketConnectionClosedException, ssl.SSLError, OSError) as exc:
            raise Closed(str(exc)) from exc

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            # After a peer CLOSE, websocket-client marks itself disconnected without
            # closing the socket, so close() returns early; shutdown() really closes it.
            self._sock.shutdown()


def run(
    kube: Kube,
    *,
    namespace: str,
    pod: str,
    container: str | None,
    command: list[str],
    stdout: IO[bytes],
    stderr: IO[bytes],
    timeout: float = 30.0,
    max_bytes: int = 64 << 20,
) -> ExecResult:
    """Run ``command``; stdout (capped at ``max_bytes``) and stderr go to the sinks as they arrive."""
    started = time.monotonic()
    deadline = started + timeout
    ws = Stream(kube, namespace=namespace, pod=pod, container=container, command=command, stdin=False,
                timeout=timeout)
    out = CappedSink(stdout, max_bytes)
    err = CappedSink(stderr, MAX_STDERR_BYTES)
    status = b""
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            try:
                got = ws.frame(min(remaining, POLL_SECONDS))
            except Closed:
                break
            if got is None:
                continue
            channel, payload = got
            if channel == STDOUT_CHANNEL:
                out.write(payload)
                if out.truncated:
                    # Past the cap nothing more is kept: stop the transfer instead of draining it.
                    break
            elif channel == STDERR_CHANNEL:
                err.write(payload)
            elif channel == STATUS_CHANNEL:
                status += payload
    finally:
        ws.close()
    exit_code, message = parse_status(status)
    return ExecResult(
        command=tuple(command), exit_code=None if timed_out else exit_code,
        stdout_bytes=out.written, stderr_bytes=err.written, truncated=out.truncated, timed_out=timed_out,
        duration_s=time.monotonic() - started, status_message=message,
    )


def parse_status(raw: bytes) -> tuple[int | None, str]:
    """Read the v1.Status the API sends on channel 3 when the command ends."""
    if not raw:
        return None, ""
    try:
        st = json.loads(raw)
    except ValueError:
        return None, errors.shorten(raw.decode(errors="replace"))
    if st.get("status") == "Success":
        return 0, ""
    message = str(st.get("message", ""))
    for cause in (st.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "")), message
            except ValueError:
                break
    return None, message
