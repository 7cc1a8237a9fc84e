"""The pprof string-table masker on bytes: every field kind, any chunking, bad input refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debugcap.bundle import profile_masking, redact

SECRET_LABEL = b"auth=Bearer abcdefghijklmnopqrstuvwx"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    tag = varint(number << 3 | wire)
    return tag + (varint(len(payload)) + payload if wire == 2 else payload)


# One field of each wire type pprof uses, a long non-string field, and strings with and without a secret.
FIELDS = [
    field(1, 2, b"\x08\x01\x10\x02"),  # sample_type (a message)
    field(6, 2, b""),  # string_table[0] is always ""
    field(6, 2, b"main.main"),
    field(6, 2, SECRET_LABEL),
    field(9, 0, varint(1_700_000_000_000_000_000)),  # time_nanos, a 9-byte varint
    field(12, 0, varint(10_000_000)),  # period
    field(15, 1, b"\x01" * 8),
    field(16, 5, b"\x02" * 4),
    field(4, 2, bytes(range(128, 256)) * 3000),  # a 384 kB message: copied through in pieces
]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def mask(chunks: list[bytes]) -> tuple[bytes, list[str]]:
    report = redact.RedactionReport()
    out = b"".join(profile_masking.mask_profile(chunks, "pprof/heap.pb.gz", report))
    return out, [r.redactor for r in report.records]


@given(st.permutations(range(len(FIELDS))), st.lists(st.integers(min_value=0, max_value=400_000), max_size=20))
def test_only_the_secret_changes_whatever_the_order_and_chunking(order: list[int], cuts: list[int]) -> None:
    data = b"".join(FIELDS[i] for i in order)
    out, found = mask(chunked(data, cuts))
    expected = data.replace(b"abcdefghijklmnopqrstuvwx", b"*" * 24)
    assert out == expected and found == ["bearer-token"]


def test_a_profile_without_secrets_comes_out_unchanged() -> None:
    data = b"".join(f for f in FIELDS if SECRET_LABEL not in f)
    assert mask([data]) == (data, [])


@pytest.mark.parametrize("bad", [
    field(6, 2, b"main.main")[:-2],  # ends inside a string
    b"\x32\xff\xff",  # ends inside a length varint
    b"\x00\x01",  # field number 0
    b"\x33\x00",  # wire type 3 (groups): not pprof
    b"\x49" + b"\x01" * 3,  # ends inside a fixed64
    b"\x08" + b"\xff" * 11,  # an 11-byte varint
])
def test_what_is_not_a_profile_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        mask([bad])
