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


class Kubelet:
    """Answers as the kubelet does: the last ``tailLines`` lines, then at most ``limitBytes`` of
    them from their start."""

    def __init__(self, log: bytes) -> None:
        self.log, self.queries = log, []

    def get(self, path, query, *, timeout=None):  # type: ignore[no-untyped-def]
        q = dict(query)
        self.queries.append(q)
        lines = self.log.splitlines(keepends=True)[-int(q["tailLines"]):]
        return Fixed(b"".join(lines)[:int(q["limitBytes"])])


def test_a_cut_log_keeps_its_newest_lines_not_the_oldest(bundle) -> None:
    log = b"".join(b"line %05d %s\n" % (i, b"x" * 88) for i in range(1000))  # 100 bytes a line
    api = Kubelet(log)
    result = LogsCollector().collect(bundle.context(kube=api, log_lines=1000, output_cap_bytes=10_050))
    kept = bundle.files["logs/app.log"]
    assert kept.endswith(b"line 00999 " + b"x" * 88 + b"\n")  # the log's end, not line 100's
    assert kept == b"".join(log.splitlines(keepends=True)[-99:])
    assert [q["tailLines"] for q in api.queries] == ["1000", "99"]
    assert result.status is base.Status.PARTIAL
    assert "newest 99 lines" in result.message and "10050 bytes" in result.message


def test_a_log_that_fits_is_read_once(bundle) -> None:
    api = Kubelet(b"a\nb\n")
    assert LogsCollector().collect(bundle.context(kube=api)).status is base.Status.OK
    assert len(api.queries) == 1 and bundle.files["logs/app.log"] == b"a\nb\n"


def test_newest_lines_longer_than_the_rest_are_asked_for_again_until_they_fit(bundle) -> None:
    log = b"".join(b"line %05d %s\n" % (i, b"x" * 88) for i in range(990))
    log += b"".join(b"tail %05d %s\n" % (i, b"y" * 1988) for i in range(10))  # 2000 bytes a line
    api = Kubelet(log)
    result = LogsCollector().collect(bundle.context(kube=api, log_lines=1000, output_cap_bytes=10_050))
    kept = bundle.files["logs/app.log"]
    assert kept == b"".join(log.splitlines(keepends=True)[-5:])  # the log's end, whole lines
    assert [q["tailLines"] for q in api.queries] == ["1000", "99", "49", "24", "12", "5"]
    assert "newest 5 lines" in result.message


def test_a_log_cut_at_every_read_keeps_the_first_and_says_cut(bundle) -> None:
    log = b"".join(b"%s\n" % (b"z" * 50_000) for _ in range(3))  # each line over the cap
    api = Kubelet(log)
    result = LogsCollector().collect(bundle.context(kube=api, log_lines=1000, output_cap_bytes=10_050))
    assert result.message == "logs/app.log: cut at 10050 bytes (the output cap)"
    assert bundle.files["logs/app.log"] == log[:10_050]
