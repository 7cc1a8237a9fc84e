"""A local HTTP server for the tests of hostile pods: each connection's request is read, then
``answer`` writes to the socket (a trickle, a flood, a bomb). Shared by the packages under
tests/unit (their root, this directory, is on sys.path)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class Server:
    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.asked = threading.Event()  # a request came
        self.dropped = threading.Event()  # the client closed the connection while answered
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                got = conn.recv(4096)
                if not got:
                    return
                buf += got
            self.asked.set()
            try:
                self.answer(conn)
            except OSError:
                self.dropped.set()

    def close(self) -> None:
        self.sock.close()
