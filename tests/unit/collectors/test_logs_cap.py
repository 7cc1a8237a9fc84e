"""``logs`` respects the output cap (issue 16: logs ignored the 64 MiB cap).

Cases: the API server is asked for one byte past the cap (limitBytes); a log that sends more
than the cap (an API server or proxy ignoring limitBytes, here one that never ends) is cut at
the cap, kept, partial naming the cap, and reading stops there (the response is closed, and no
more of it is read: bounded by construction, the stand-in counts what was taken); a log of
exactly the cap is whole and ok.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.collectors import base
from debugcap.collectors.logs import LogsCollector


class Endless:
    """A log response that never ends; counts the chunks taken from it."""

    def __init__(self) -> None:
        self.taken = 0
        self.closed = self.released = False

    def stream(self, amt: int) -> Iterator[bytes]:
        while not self.closed:
            self.taken += 1
            yield b"l" * 1000

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


class Server:
    def __init__(self, body: bytes | None = None) -> None:
        self.body, self.queries, self.responses = body, [], []

    def get(self, path, query, *, timeout=None):  # type: ignore[no-untyped-def]
        self.queries.append(dict(query))
        resp = Endless() if self.body is None else Fixed(self.body)
        self.responses.append(resp)
        return resp


class Fixed(Endless):
    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def stream(self, amt: int) -> Iterator[bytes]:
        for i in range(0, len(self.body), amt):
            self.taken += 1
            yield self.body[i:i + amt]


def test_a_log_past_the_cap_is_cut_kept_and_partial(bundle) -> None:
    api = Server()
    result = LogsCollector().collect(bundle.context(kube=api, output_cap_bytes=10_500))
    assert result == base.CollectorResult(base.Status.PARTIAL, "logs/app.log: cut at 10500 bytes (the output cap)",
                                          ("logs/app.log",))
    assert bundle.files == {"logs/app.log": b"l" * 10_500}
    (resp,) = api.responses
    assert resp.closed and resp.released and resp.taken == 11  # stopped at the first chunk past the cap
    assert api.queries[0]["limitBytes"] == "10501"


def test_a_log_of_exactly_the_cap_is_whole(bundle) -> None:
    api = Server(b"x" * 4096)
    result = LogsCollector().collect(bundle.context(kube=api, output_cap_bytes=4096))
    assert result.status is base.Status.OK and bundle.files == {"logs/app.log": b"x" * 4096}
    assert not api.responses[0].closed
