"""Memory and time of fetching from hostile pods through the real code path (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_hostile_pods.py [--mib 1024] [--root DIR]

Each case runs in a child process of its own, which serves a local HTTP server in a thread and
fetches from it with ``debugcap.collectors.fetching.fetch`` over the direct-HTTP pool
(``debugcap.kube.podhttp.Direct``), exactly as a capture's Go collector does:

* ``bomb``: a heap profile that is a gzip of ``--mib`` MiB of zeros (1 MiB on the wire for 1 GiB);
* ``flood``: a body that never ends, against the 64 MiB output cap;
* ``trickle``: one byte every 0.5 s, against a 3 s request timeout;
* ``pf-flood``: the same endless body through the port-forward pool (``portforward.Pool``), its
  websocket replaced by a stand-in whose reader thread feeds ``--mib`` MiB to the connection as
  fast as it can (what the tunnel's reader does with the kubelet's frames); the child waits for
  that reader to finish, so what the connection kept after the cap counts.

Prints the wall time, the peak RSS of the child (``ru_maxrss`` from ``wait4``) and the result.
``--root`` imports ``debugcap`` from another checkout (e.g. ``git archive <commit> debugcap |
tar -x -C /tmp/before``) to compare before and after.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"


def _bomb(mib: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join(z.compress(zeros) for _ in range(mib)) + z.flush()


def _serve(answer) -> int:  # type: ignore[no-untyped-def]
    sock = socket.create_server(("127.0.0.1", 0))

    def one(conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            try:
                answer(conn)
            except OSError:
                pass

    def loop() -> None:
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return int(sock.getsockname()[1])


def child(case: str, mib: int) -> None:
    from debugcap import errors
    from debugcap.bundle import layout
    from debugcap.collectors import base, fetching
    from debugcap.kube import podhttp
    from debugcap.settings import CaptureSettings

    if case == "bomb":
        body = _bomb(mib)
        port = _serve(lambda c: c.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body))
        print(f"  wire: {len(body) / (1 << 20):.2f} MiB for {mib} MiB decompressed")
    elif case == "flood":
        block = b"x" * (256 << 10)

        def flood(c: socket.socket) -> None:
            c.sendall(HEAD + b"\r\n")
            while True:
                c.sendall(block)
        port = _serve(flood)
    elif case == "pf-flood":
        port = 0
    else:
        def trickle(c: socket.socket) -> None:
            c.sendall(HEAD + b"\r\n")
            while True:
                c.sendall(b"\0")
                time.sleep(0.5)
        port = _serve(trickle)
    pool = _pf_pool(mib) if case == "pf-flood" else podhttp.Direct(namespace="shop", pod="api-1",
                                                                   host="127.0.0.1", port=port)
    kept: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = base.CollectContext(
            kube=None, target=base.Target(namespace="shop", pod="api-1", container="app", node="n"),  # type: ignore[arg-type]
            settings=CaptureSettings(http_timeout_seconds=3), params={},
            add_file=lambda path, scratch: kept.__setitem__(path, scratch.reader().seek(0, os.SEEK_END)),
            scratch_dir=Path(tmp), http=pool)
        started = time.monotonic()
        try:
            res = fetching.fetch(ctx, "pprof-heap", "/debug/pprof/heap", layout.PPROF_HEAP, fetching.Body.PROFILE)
            outcome = f"{res.status.value}: {errors.shorten(res.message, 150)}; stored {kept}"
        except errors.DebugcapError as exc:
            outcome = f"error: {errors.shorten(str(exc), 150)}"
        print(f"  fetch: {time.monotonic() - started:.2f} s; {outcome}")
    for reader in _READERS:
        reader.join()
    pool.close()


_READERS: list[threading.Thread] = []


def _pf_pool(mib: int):  # type: ignore[no-untyped-def]
    from debugcap.kube import portforward

    class Tunnel:
        def __init__(self, _kube: object, *, namespace: str, pod: str, port: int, n: int) -> None:
            self.target = f'port {port} of pod "{pod}" in namespace "{namespace}"'
            self.connections = [portforward._Connection(self, i) for i in range(n)]  # type: ignore[arg-type]
            self.closed = False

        def send(self, channel: int, _data: bytes) -> None:
            conn = self.connections[channel // 2]
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            _READERS.append(reader)
            reader.start()

        def _read(self, conn) -> None:  # type: ignore[no-untyped-def]
            conn.feed(HEAD + b"\r\n")
            frame = b"x" * (32 << 10)
            for _ in range(mib * 32):
                if self.closed or getattr(conn, "dropped", False):
                    return
                conn.feed(frame)

        def close(self) -> None:
            self.closed = True

    portforward._Tunnel = Tunnel  # type: ignore[assignment,misc]
    return portforward.Pool(None, namespace="shop", pod="api-1", port=6060)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="decompressed size of the bomb (MiB)")
    ap.add_argument("--root", type=Path, default=ROOT, help="where debugcap is imported from")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        sys.path.insert(0, str(args.root))
        child(args.case, args.mib)
        return
    print(f"debugcap from {args.root}")
    for case in ("bomb", "flood", "trickle", "pf-flood"):
        print(f"{case}:", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, __file__, "--case", case, "--mib", str(args.mib),
                                 "--root", str(args.root)], cwd=args.root)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except KeyboardInterrupt:
            proc.kill()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        print(f"  child: {time.monotonic() - started:.2f} s wall, peak RSS {usage.ru_maxrss / 1024:.0f} MiB, "
              f"exit {proc.returncode}", flush=True)


if __name__ == "__main__":
    main()
