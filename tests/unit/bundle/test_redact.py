"""Redaction: each redactor, chunk boundaries, the report, and the environment allowlist.

Cases: every redactor masks its secret and records (file, line, redactor); the same input
split at every byte boundary gives the same output; reports and messages never contain the
secret; a planted secret never survives arbitrary surrounding text and chunking (hypothesis);
records are capped per file while counts stay exact; the environment allowlist keeps only
allowed names and masks secret-looking allowed values; filtering is idempotent.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debugcap.bundle import environment, redact

SECRET = "Zq8vN3kLp0RtYw2XcB7s"


def _run(data: bytes, chunks: list[int] | None = None, **kwargs: int) -> tuple[bytes, redact.RedactionReport]:
    report = redact.RedactionReport()
    redactor = redact.LineRedactor("f.txt", report, **kwargs)
    out = []
    pos = 0
    for size in chunks or [len(data)]:
        out.append(redactor.feed(data[pos : pos + size]))
        pos += size
    out.append(redactor.feed(data[pos:]))
    out.append(redactor.close())
    return b"".join(out), report


CASES = [
    ("env-secret", f"DB_PASSWORD={SECRET}", "DB_PASSWORD=***REDACTED***"),
    ("env-secret", f'  "apiKey": "{SECRET}",', '  "apiKey": "***REDACTED***",'),
    ("env-secret", f"aws_secret_access_key = {SECRET}", "aws_secret_access_key = ***REDACTED***"),
    ("cli-flag-secret", f"/app --token {SECRET} -v", "/app --token ***REDACTED*** -v"),
    ("bearer-token", f"Authorization: Bearer {SECRET}", "Authorization: Bearer ***REDACTED***"),
    ("basic-auth", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***REDACTED***"),
    ("aws-access-key", "key AKIAIOSFODNN7EXAMPLE used", "key ***REDACTED*** used"),
    (
        "url-credentials",
        f"dsn postgres://app:{SECRET}@db:5432/x",
        "dsn postgres://app:***REDACTED***@db:5432/x",
    ),
    (
        "jwt",
        "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "t=***REDACTED***",
    ),
    (
        "k8s-env-value",
        f"    - name: DB_PASSWORD\n      value: {SECRET}",
        "    - name: DB_PASSWORD\n      value: ***REDACTED***",
    ),
    (
        "k8s-env-value",
        f'{{"name":"API_TOKEN","value":"{SECRET}"}}',
        '{"name":"API_TOKEN","value":"***REDACTED***"}',
    ),
]


@pytest.mark.parametrize(
    ("redactor", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_redactor_masks_and_records_without_the_secret(redactor: str, text: str, expected: str) -> None:
    data = f"first line\n{text}\nlast line\n".encode()
    out, report = _run(data)
    assert out == f"first line\n{expected}\nlast line\n".encode()
    assert [(r.file, r.redactor) for r in report.records] == [("f.txt", redactor)]
    assert report.records[0].line == 2 + text[: text.index(SECRET) if SECRET in text else 0].count("\n")
    assert SECRET not in repr(report.records) and SECRET not in repr(report.counts)


def test_pem_private_key_block_is_masked_line_for_line() -> None:
    data = b"a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq3Zx\n-----END RSA PRIVATE KEY-----\nb\n"
    out, report = _run(data)
    assert out == (
        b"a\n-----BEGIN RSA PRIVATE KEY-----\n***REDACTED***\n***REDACTED***\n"
        b"-----END RSA PRIVATE KEY-----\nb\n"
    )
    assert [(r.line, r.redactor) for r in report.records] == [(2, "pem-private-key")]


def test_public_certificates_and_harmless_text_are_kept() -> None:
    data = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nGOGC=100 level=info msg=ok\n"
    assert _run(data)[0] == data


def test_every_split_point_gives_the_same_output() -> None:
    data = (
        "".join(f"{c[1]}\n" for c in CASES).encode()
        + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    whole, _ = _run(data)
    for cut in range(1, len(data)):
        # Tiny blocks force a block boundary at (nearly) every line, too.
        split, _ = _run(data, [cut], block_size=16, max_line=256)
        assert split == whole, f"split at byte {cut}"
    assert SECRET.encode() not in whole


def test_line_numbers_survive_chunking() -> None:
    data = b"".join(b"line %d\n" % i for i in range(1, 5000)) + b"token=" + SECRET.encode() + b"\n"
    _, report = _run(data, [7] * 3000, block_size=1024)
    assert [(r.line, r.redactor) for r in report.records] == [(5000, "env-secret")]


def test_very_long_lines_are_cut_at_whitespace_without_splitting_secrets() -> None:
    data = (b"x " * 40_000) + b"Bearer " + SECRET.encode() + b" " + (b"y " * 40_000) + b"\n"
    out, report = _run(data, [1000] * 200, block_size=4096, max_line=8192)
    assert SECRET.encode() not in out and len(report.records) == 1


def test_minified_json_lines_are_cut_between_values() -> None:
    record = b'{"level":"info","msg":"call","auth":"Bearer ' + SECRET.encode() + b'","n":1},'
    data = record * 400 + b"\n"
    out, report = _run(data, [333] * 200, block_size=1024, max_line=2048)
    assert SECRET.encode() not in out and len(report.records) == 400


def test_records_are_capped_per_file_but_counted_exactly() -> None:
    data = b"".join(b"password=%d\n" % i for i in range(1500))
    _, report = _run(data)
    assert len(report.records) == redact.MAX_RECORDS_PER_FILE
    assert report.counts_dict() == {"f.txt": {"env-secret": 1500}}


_filler = st.text(alphabet=st.sampled_from("abc xyz_=:/.-\n\t"), max_size=200)
_secret = st.text(alphabet=st.sampled_from("ABCDEFGHJKMNPQRSTUVWXYZ23456789"), min_size=16, max_size=40)
_shapes = st.sampled_from(
    [
        "DB_PASSWORD={s}",
        "Authorization: Bearer {s}",
        "https://user:{s}@example.com/",
        "--secret {s}",
        "api_token: {s}",
        "eyJ{s}.eyJ{s}.{s}",
        "AKIA{a}",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    before=_filler,
    after=_filler,
    secret=_secret,
    shape=_shapes,
    cuts=st.lists(st.integers(1, 50), max_size=20),
)
def test_a_planted_secret_never_survives(
    before: str, after: str, secret: str, shape: str, cuts: list[int]
) -> None:
    planted = shape.format(s=secret, a=secret[:16])
    data = f"{before}\n{planted}\n{after}".encode()
    out, report = _run(data, cuts, block_size=32, max_line=512)
    assert (secret[:16] if shape == "AKIA{a}" else secret).encode() not in out
    assert secret not in repr(report.records)


# --- environment allowlist -----------------------------------------------------------------

ENV = "\n".join(
    [
        "PATH=/usr/local/bin:/usr/bin",
        "HOME=/root",
        "HOSTNAME=payments-gateway-7d9f8c6b5d-x2x9k",
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
        "GOGC=100",
        "GOMEMLIMIT=512MiB",
        "APP_MODE=production",
        f"APP_DB_PASSWORD={SECRET}",
        f"APP_SIGNING={SECRET}",
        "APP_COMMIT=3f2a9c1e4b7d8f0a1c2e3b4d5f6a7b8c9d0e1f2a",
        f"AWS_SECRET_ACCESS_KEY={SECRET}",
        "DATABASE_URL=postgres://u:p@db/x",
        "",
    ]
)


def test_environment_keeps_allowlisted_names_only() -> None:
    out = environment.filter_environment(ENV)
    names = [line.split("=", 1)[0] for line in out.splitlines() if not line.startswith("#")]
    assert names == [
        "PATH", "HOME", "HOSTNAME", "KUBERNETES_SERVICE_HOST", "GOGC", "GOMEMLIMIT",
        "APP_MODE", "APP_DB_PASSWORD", "APP_SIGNING", "APP_COMMIT",
    ]  # fmt: skip
    assert out.endswith("# debugcap: 2 variables outside the allowlist omitted\n")


def test_environment_masks_secret_looking_allowed_values() -> None:
    report = redact.RedactionReport()
    out = environment.filter_environment(ENV, report=report)
    assert SECRET not in out
    assert "APP_DB_PASSWORD=***REDACTED***" in out  # by name
    assert "APP_SIGNING=***REDACTED***" in out  # by entropy
    # Since issue 16 a commit hash under a name that says what it is (APP_COMMIT, APP_BUILD_SHA)
    # is kept: it identifies a build and is not a credential (it was masked as long hex before).
    assert "APP_COMMIT=3f2a9c1e4b7d8f0a1c2e3b4d5f6a7b8c9d0e1f2a" in out
    assert "HOSTNAME=payments-gateway-7d9f8c6b5d-x2x9k" in out  # lower-case names are not secrets
    assert "APP_MODE=production" in out and "GOMEMLIMIT=512MiB" in out
    assert {r.redactor for r in report.records} == {"env-secret", "high-entropy"}
    assert SECRET not in repr(report.records)


def test_environment_filter_is_idempotent_and_reads_proc_environ() -> None:
    once = environment.filter_environment(ENV)
    assert environment.filter_environment(once) == once
    assert environment.filter_environment(ENV.replace("\n", "\0")) == once
