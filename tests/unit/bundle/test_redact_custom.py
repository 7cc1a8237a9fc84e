"""Admin-supplied redaction patterns (debugcap.bundle.redact_custom): parsed, refused with the
pattern and the fix, linear on adversarial input, and applied by the bundle writer to text, JSON
(still valid) and pprof string tables, recorded as custom:<name> and never by value."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from debugcap import templates
from debugcap.bundle import layout, redact, redact_custom, redact_detectors, writer
from debugcap.errors import ConfigError

from .test_mask_profile import field
from .test_redact_custom_windows import CountingSearch

TOKEN = "acme_" + "Q7x9" * 8  # the company's format: acme_ and 32 alphanumerics
ACME = [("acme-token", "acme_[A-Za-z0-9]{32}")]


def _detectors(pairs: list[tuple[str, str]] = ACME) -> tuple[redact_detectors.Detector, ...]:
    return redact_custom.compile_patterns(pairs, where="test patterns")


def _redact(text: str, pairs: list[tuple[str, str]] = ACME, file: str = "logs/app.log") -> tuple[str, list[str]]:
    report = redact.RedactionReport()
    out = b"".join(redact.redact_stream([text.encode()], file, report, _detectors(pairs)))
    return out.decode(), [r.redactor for r in report.records]


# --- parsing and validation ------------------------------------------------------------------


def test_a_document_is_a_list_or_a_mapping_with_patterns() -> None:
    listed = redact_custom.parse_document("- {name: acme-token, regex: 'acme_[A-Za-z0-9]{32}'}\n", source="f")
    mapped = redact_custom.parse_document('{"patterns": [{"name": "acme-token", "regex": "acme_[A-Za-z0-9]{32}",'
                                          ' "description": "ACME API token"}]}', source="f")
    assert listed == mapped == (("acme-token", "acme_[A-Za-z0-9]{32}"),)
    assert redact_custom.parse_document("", source="f") == ()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("[{name: Acme_Token, regex: x}]", ["[0]", "Acme_Token", "lower-case"]),
        ("[{name: acme, regex: 'acme_(?=[a-z])'}]", ['"acme"', "not valid RE2", "look-around", "(?P<secret>"]),
        ("[{name: acme, regex: '(a)\\1'}]", ['"acme"', "back-references"]),
        ("[{name: acme, regex: 'acme_[a-z'}]", ['"acme"', "missing ]"]),
        ("[{name: acme, regex: 'x*'}]", ['"acme"', "empty string", "+ instead of *"]),
        ("[{name: acme, regex: 'foo|'}]", ["empty string"]),
        ("[{name: acme, regex: '\\b'}]", ["empty string"]),
        ("[{name: acme, regex: ''}]", ["regex must be a non-empty string"]),
        ("[{name: acme, regex: x, flags: i}]", ["unknown key 'flags'", "name, regex, description"]),
        ("[{name: a, regex: x}, {name: a, regex: y}]", ['"a" is defined twice', "another name"]),
        ("{pattern: []}", ["unknown key 'pattern'"]),
        ("[acme]", ["[0] must be a mapping"]),
        ("a: [", ["not valid YAML"]),
    ],
)
def test_a_bad_pattern_is_refused_naming_it_and_the_fix(document: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        redact_custom.parse_document(document, source="DEBUGCAP_OPERATOR_REDACTION_PATTERNS")
    message = str(exc.value)
    assert message.startswith("DEBUGCAP_OPERATOR_REDACTION_PATTERNS")
    for word in words:
        assert word in message


def test_bounds_on_count_and_length() -> None:
    many = [{"name": f"p{i}", "regex": f"tok{i}_[a-z]+"} for i in range(templates.MAX_REDACTION_PATTERNS + 1)]
    with pytest.raises(ConfigError, match="more than 50; .* one regex with \\|"):
        redact_custom.parse_document(json.dumps(many), source="s")
    with pytest.raises(ConfigError, match="more than 1024"):
        redact_custom.parse_document(json.dumps([{"name": "long", "regex": "a" * 1025}]), source="s")


def test_a_pattern_too_large_for_re2s_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match='"huge".*not valid RE2'):
        redact_custom.compile_pattern("huge", "(?:[a-z]{1000}){1000}", where="s")


def test_the_setting_is_a_file_or_inline(tmp_path: Path) -> None:
    path = tmp_path / "patterns.yaml"
    path.write_text("patterns:\n  - name: acme-token\n    regex: 'acme_[A-Za-z0-9]{32}'\n")
    assert redact_custom.from_setting(str(path), source="S") == tuple(ACME)
    assert redact_custom.from_setting('[{"name": "acme-token", "regex": "acme_[A-Za-z0-9]{32}"}]',
                                      source="S") == tuple(ACME)
    assert redact_custom.from_setting("  ", source="S") == ()
    with pytest.raises(ConfigError, match=f"S: cannot read {tmp_path / 'missing.yaml'}"):
        redact_custom.from_setting(str(tmp_path / "missing.yaml"), source="S")


def test_a_template_carries_patterns() -> None:
    text = ("name: acme\nsteps: [{collector: logs}]\n"
            "redaction:\n  patterns:\n    - {name: acme-token, regex: 'acme_[A-Za-z0-9]{32}'}\n")
    assert templates.parse_template(text).redaction_patterns == tuple(ACME)
    with pytest.raises(ConfigError, match='template "acme" redaction.patterns\\[0\\]: name'):
        templates.parse_template(text.replace("acme-token", "ACME"))


# --- matching --------------------------------------------------------------------------------


def test_the_whole_match_is_masked_and_recorded_by_kind_only() -> None:
    out, kinds = _redact(f"ok\nlogin with {TOKEN} done\n")
    assert out == "ok\nlogin with ***REDACTED*** done\n"
    assert kinds == ["custom:acme-token"]


def test_only_the_secret_group_is_masked() -> None:
    pairs = [("acme-key", "acme-key=(?P<secret>[0-9a-f]{40})")]
    out, kinds = _redact("acme-key=" + "ab12" * 10 + " rest\n", pairs)
    assert out == "acme-key=***REDACTED*** rest\n" and kinds == ["custom:acme-key"]


def test_an_empty_secret_group_masks_and_records_nothing() -> None:
    pairs = [("acme-key", "acme-key=(?P<secret>[a-z]*)")]
    assert _redact("acme-key= x\nacme-key=abc\n", pairs) == ("acme-key= x\nacme-key=***REDACTED***\n",
                                                              ["custom:acme-key"])


def test_a_match_the_built_in_detectors_masked_is_not_counted_again() -> None:
    out, kinds = _redact("Authorization: Bearer abcdefghijkl0123456789\n",
                         [("bearer-any", "Bearer (?P<secret>[*A-Za-z0-9]+)")])
    assert "abcdefghijkl" not in out and kinds == ["bearer-token"]


def test_linear_on_a_mebibyte_of_adversarial_input() -> None:
    # (a+)+b backtracks exponentially in Python's re on a run of "a" with no "b"; RE2 is linear.
    # Correctness is asserted, not time: the run ends, nothing is masked, then a match is.
    pairs = [("nested", "(?:a+)+b"), ("acme-token", "acme_[A-Za-z0-9]{32}")]
    line = "a" * (1 << 20)
    out, kinds = _redact(line + "\n" + TOKEN + "\n", pairs)
    assert out == line + "\n***REDACTED***\n" and kinds == ["custom:acme-token"]


def test_json_stays_valid() -> None:
    doc = {"user": "bob", "token": TOKEN, "msg": f'said "{TOKEN}" twice', "escaped": "\n" + TOKEN}
    pairs = [("acme-token", "acme_[A-Za-z0-9]{32}"), ("after-escape", "n(?P<secret>acme_[A-Za-z0-9]{4})")]
    out, _ = _redact(json.dumps(doc) + "\n", pairs, file=layout.METRICS_EXPVAR)
    parsed = json.loads(out)
    assert TOKEN not in out and parsed["user"] == "bob" and parsed["token"] == "***REDACTED***"


def test_a_span_after_a_backslash_takes_the_backslash_along() -> None:
    out, kinds = _redact('{"m": "a\\nxyz"}\n', [("after-newline-escape", "nxyz")])
    assert json.loads(out) == {"m": "a***REDACTED***"} and kinds == ["custom:after-newline-escape"]


# --- through the bundle writer ---------------------------------------------------------------


def test_the_writer_masks_text_json_env_and_profile_strings(tmp_path: Path, when, make_fields) -> None:  # type: ignore[no-untyped-def]
    label = f"tenant-key {TOKEN}".encode()
    profile = field(1, 2, b"\x08\x01\x10\x02") + field(6, 2, b"") + field(6, 2, b"main.main") + field(6, 2, label)
    with writer.BundleWriter(directory=tmp_path, name=layout.bundle_name("prod", "api-1", when), mtime=0,
                             extra_detectors=_detectors()) as w:
        w.add_bytes(layout.log_path("app"), f"ok\nuser logged in with {TOKEN}\n".encode())
        w.add_bytes(layout.METRICS_EXPVAR, json.dumps({"cmdline": ["app", TOKEN]}).encode())
        w.add_bytes(layout.ENV_ENVIRONMENT, f"PATH=/bin\nAPP_TENANT={TOKEN}\n".encode())
        w.add_bytes(layout.PPROF_HEAP, gzip.compress(profile))
        bundle = w.finish(make_fields())
    with tarfile.open(bundle.path, "r:gz") as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert not any(TOKEN.encode() in data for data in members.values())
    assert json.loads(members[layout.METRICS_EXPVAR]) == {"cmdline": ["app", "***REDACTED***"]}
    heap = gzip.decompress(members[layout.PPROF_HEAP])
    assert len(heap) == len(profile) and b"tenant-key " + b"*" * len(TOKEN) in heap
    manifest = json.loads(members["manifest.json"])
    kinds = {(r["file"], r["line"], r["redactor"]) for r in manifest["redactions"]}
    assert (layout.log_path("app"), 2, "custom:acme-token") in kinds
    assert (layout.PPROF_HEAP, 0, "custom:acme-token") in kinds
    assert manifest["redaction_counts"][layout.METRICS_EXPVAR] == {"custom:acme-token": 1}
    assert TOKEN not in json.dumps(manifest)


def test_without_patterns_the_token_survives(tmp_path: Path, when, make_fields) -> None:  # type: ignore[no-untyped-def]
    # The built-in detectors do not know the company format: what the feature is for.
    out, kinds = redact.redact_text(f"user logged in with {TOKEN}"), []
    assert TOKEN in out and kinds == []


# --- one line at a time (review of issue 16) -------------------------------------------------


def test_an_anchored_pattern_masks_a_whole_line_past_the_first() -> None:
    out, kinds = _redact(f"first\n{TOKEN}\nlast {TOKEN}\n", [("acme-line", "^acme_[A-Za-z0-9]{32}$")])
    assert out == f"first\n***REDACTED***\nlast {TOKEN}\n" and kinds == ["custom:acme-line"]


def test_a_match_never_crosses_a_newline_and_line_numbers_stay_right() -> None:
    report = redact.RedactionReport()
    text = 'acme=abc\nline2\nline3 "x\nacme=def" y\n'
    pairs = [("acme-quoted", 'acme=(?P<secret>[^"]+)"'), ("any-dot", "(?s)BEGIN.END")]
    out = b"".join(redact.redact_stream([text.encode(), b"BEGIN\nEND\n"], "logs/app.log", report,
                                        _detectors(pairs)))
    assert out.decode() == 'acme=abc\nline2\nline3 "x\nacme=***REDACTED***" y\nBEGIN\nEND\n'
    assert [(r.line, r.redactor) for r in report.records] == [(4, "custom:acme-quoted")]


def test_each_search_reads_a_bounded_window_so_a_line_of_matches_is_linear() -> None:
    # One optional group that reads to the end of the line: finditer re-read the rest of the line
    # after each of its ~150 000 matches (quadratic; ~100 s on 1 MiB). The bytes each search may
    # read are counted, not timed.
    counting = CountingSearch(b"(?m)acme=(?P<secret>\\w+)(?:;[^\\n]*sig=\\w+)?")
    line = b"acme=x;" * ((1 << 20) // 7)
    found = list(redact_custom._matches(counting, line + b"\n" + line, 0, 2 * len(line) + 1))
    assert len(found) == 2 * ((1 << 20) // 7)
    assert counting.read <= 2 * len(line) * (2 * redact_custom.MAX_MATCH // 7 + 2)
    out, kinds = _redact((b"acme=x;" * 5000).decode() + "\n", [("acme", "acme=(?P<secret>\\w+)(?:;[^\\n]*sig=\\w+)?")])
    assert out == "acme=***REDACTED***;" * 5000 + "\n" and set(kinds) == {"custom:acme"}


@pytest.mark.parametrize("offset", [0, 1, redact_custom.MAX_MATCH - 3, redact_custom.MAX_MATCH + 7,
                                    2 * redact_custom.MAX_MATCH - 10, 5 * redact_custom.MAX_MATCH + 1])
def test_a_match_across_a_window_edge_is_found_whole(offset: int) -> None:
    out, kinds = _redact("x" * offset + " " + TOKEN + " " + "y" * (3 * redact_custom.MAX_MATCH) + "\n")
    assert TOKEN not in out and "acme_" not in out and kinds == ["custom:acme-token"]


def test_two_secret_groups_are_refused_naming_the_pattern_and_the_fix() -> None:
    with pytest.raises(ConfigError) as exc:
        redact_custom.compile_pattern("acme-pair", "(?P<secret>ab)|(?P<secret>cd)", where="S[0]")
    assert str(exc.value).startswith('S[0] ("acme-pair")') and "keep one (?P<secret>...)" in str(exc.value)
    redact_custom.compile_pattern("acme-escaped", "\\(?P<secret>ab\\)|(?P<secret>cd)", where="S[0]")


@pytest.mark.parametrize("regex", ["acme_(?=[a-z]{8})secretshape", "(acme_secretshape", "acme_secretshape*"])
def test_an_error_names_the_pattern_never_its_regex(regex: str) -> None:
    with pytest.raises(ConfigError) as exc:
        redact_custom.compile_pattern("acme", regex if regex[-1] != "*" else "(?:acme_secretshape)*", where="S[0]")
    assert str(exc.value).startswith('S[0] ("acme")') and "secretshape" not in str(exc.value)


def test_a_lone_surrogate_is_a_config_error_naming_the_pattern(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='S\\[0\\] \\("acme"\\): the regex holds a lone surrogate'):
        redact_custom.compile_pattern("acme", "a\udcffb", where="S[0]")
    path = tmp_path / "p.yaml"
    path.write_text('- {name: acme, regex: "a\\udcffb"}\n')
    with pytest.raises(ConfigError, match='\\("acme"\\): the regex holds a lone surrogate'):
        redact_custom.read_file(path, source="--patterns")


def test_a_file_not_utf8_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"- {name: acme, regex: 'acme_\xff'}\n")
    with pytest.raises(ConfigError, match=f"--patterns: {path} is not UTF-8 text \\(byte offset 28\\)"):
        redact_custom.read_file(path, source="--patterns")


def test_any_byte_still_stops_at_the_newline() -> None:
    # \C (any byte) is the one RE2 construct never_nl does not keep off a newline.
    out, kinds = _redact("acme=ab\ncd\nacme=xy\n", [("acme-bytes", "acme=(?P<secret>\\C+)")])
    assert out == "acme=***REDACTED***\ncd\nacme=***REDACTED***\n" and kinds == ["custom:acme-bytes"] * 2


# --- JSON stays valid (review of issue 16) ---------------------------------------------------


def test_a_match_in_quotes_keeps_its_quotes() -> None:
    out, kinds = _redact(json.dumps({"k": "acme_abc1", "n": 1}) + "\n", [("q", '"acme_[a-z0-9]+"')],
                         file=layout.METRICS_EXPVAR)
    assert json.loads(out) == {"k": "***REDACTED***", "n": 1} and kinds == ["custom:q"]


@pytest.mark.parametrize("slashes", [0, 1, 2, 4, 9, 10, 130])
def test_the_whole_backslash_run_before_a_span_is_counted(slashes: int) -> None:
    # In the JSON text: 2 * slashes backslashes, then the escape \n; the span starts at its "n".
    doc = json.dumps({"m": "x" + "\\" * slashes + "\nacme_abcd"}) + "\n"
    out, _ = _redact(doc, [("acme", "nacme_[a-z]{4}")], file=layout.METRICS_EXPVAR)
    assert "acme_abcd" not in out and json.loads(out)["m"].startswith("x")


def test_a_span_ending_in_an_escaping_backslash_leaves_the_escape() -> None:
    doc = json.dumps({"acme": 'ab"cd', "x": 1}) + "\n"
    out, kinds = _redact(doc, [("acme-field", '"acme": ?"(?P<secret>[^"]+)"')], file=layout.METRICS_EXPVAR)
    assert json.loads(out)["x"] == 1 and "ab" not in out and kinds == ["custom:acme-field"]
