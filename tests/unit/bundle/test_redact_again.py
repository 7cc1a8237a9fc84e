"""The redactor on JSON and on its own output: JSON stays valid JSON, and redacting what it wrote
changes and counts nothing (``kubectl debugcap redact`` on a bundle a capture already redacted)."""

from __future__ import annotations

import json

import pytest

from debugcap.bundle import redact

SECRET = "hunter2-Very-Secret-9"


def _run(data: bytes) -> tuple[bytes, dict[str, dict[str, int]]]:
    report = redact.RedactionReport()
    out = b"".join(redact.redact_stream([data], "f", report))
    return out, report.counts_dict()


@pytest.mark.parametrize(("doc", "masked"), [
    ({"password": f'ab"{SECRET}'}, 1),  # an escaped quote inside the value
    ({"auth": {"user": "u", "password": SECRET}}, 1),  # a secret-named key opening an object
    ({"tokens": ["a", "b"], "secret": {}, "authz": [1, 2]}, 0),  # lists and empty objects are structure
    # Since issue 16 a ttl is not a secret and null is no value: only apiKey is masked (was 3).
    ({"token_ttl": 30, "apiKey": SECRET, "key": None}, 1),
    ({"apiKey": 12345678, "password": 42}, 2),  # bare values masked as strings
    ({"spec": {"env": [{"name": "API_TOKEN", "value": SECRET}]}}, 1),  # kubectl get -o json, indented too
    ({"cmdline": ["/app", "--db-password", SECRET, "-v"]}, 1),  # expvar's os.Args
    ({"userPassword": "{SSHA}" + SECRET}, 1),
])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_stays_valid_json(doc: dict[str, object], masked: int, indent: int | None) -> None:
    out, counts = _run(json.dumps(doc, indent=indent).encode())
    assert SECRET.encode() not in out
    json.loads(out)
    assert sum(counts.get("f", {}).values()) == masked


def test_an_ldap_hash_is_masked_whole() -> None:
    assert _run(b"userPassword: {SSHA}abcdef\npassword={x}\n")[0] == \
        b"userPassword: ***REDACTED***\npassword=***REDACTED***\n"


TEXT = (
    f"https://user:{SECRET}@db.example/x\n"
    f"Authorization: Bearer {SECRET}\n"
    f"Authorization: Basic {SECRET}\n"
    f"DB_PASSWORD={SECRET}\n"
    f"--token {SECRET}\n"
    f'["--token", "{SECRET}"]\n'
    f"- name: API_TOKEN\n  value: {SECRET}\n"
    f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n{SECRET}\n-----END RSA PRIVATE KEY-----\n"
    f"one -----BEGIN PRIVATE KEY-----{SECRET}-----END PRIVATE KEY----- line\n"
    f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{SECRET}\n"
)


def test_redacting_the_redactors_output_changes_and_counts_nothing() -> None:
    once, counts = _run(TEXT.encode())
    assert SECRET.encode() not in once
    assert counts["f"]["pem-private-key"] == 2
    twice, again = _run(once)
    assert twice == once and again == {}


def test_same_length_masking_of_masked_strings_counts_nothing() -> None:
    report = redact.RedactionReport()
    masked = redact.mask_same_length(f"password={SECRET} Bearer {SECRET}".encode(), "p", report)
    assert SECRET.encode() not in masked and sum(report.counts["p"].values()) == 2
    again = redact.RedactionReport()
    assert redact.mask_same_length(masked, "p", again) == masked and not again.counts


def test_a_pem_block_split_across_pieces_is_counted_once_at_its_begin_line() -> None:
    report = redact.RedactionReport()
    redactor = redact.LineRedactor("f", report, block_size=16, max_line=64)
    data = f"a\n-----BEGIN PRIVATE KEY-----\n\n{SECRET}\n-----END PRIVATE KEY-----\n".encode()
    out = b"".join(redactor.feed(data[i:i + 5]) for i in range(0, len(data), 5)) + redactor.close()
    assert SECRET.encode() not in out
    assert [(r.line, r.redactor) for r in report.records] == [(2, "pem-private-key")]
