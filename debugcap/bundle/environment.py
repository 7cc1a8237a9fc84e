"""The environment allowlist: which variables of a pod's environment a bundle keeps.

:class:`debugcap.bundle.writer.BundleWriter` filters ``env/environment.txt`` through
:func:`filter_environment`; the pod-yaml collector uses :func:`is_allowed_name` for literal env
values in the pod spec.
"""

from __future__ import annotations

import re
from typing import Final

from debugcap.bundle.redact import MASK_TEXT, RedactionReport, looks_secret
from debugcap.bundle.redact_detectors import is_descriptive_name, is_secret_name

ALLOWED_NAMES: Final = frozenset(
    {"PATH", "HOME", "HOSTNAME", "GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "GOTRACEBACK"}
)
ALLOWED_PREFIXES: Final = ("KUBERNETES_", "APP_")

_OMITTED: Final = re.compile(r"^# debugcap: (\d+) variables? outside the allowlist omitted$")


def is_allowed_name(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def secret_rule(name: str, value: str) -> str | None:
    """Why an allowlisted variable's value is masked, or None to keep it.

    By name (``APP_SMTP_PASS``, ``APP_WEBHOOK``); else by value: a known token format, a URL
    with credentials, a JWT; else, unless the name describes its value (``APP_BUILD_SHA``,
    ``APP_RELEASE_NAME``, ``APP_TRACE_ID``: identifiers that look random), high entropy.
    """
    if is_secret_name(name):
        return "env-secret"
    rule = looks_secret(value)
    if rule == "high-entropy" and is_descriptive_name(name):
        return None
    return rule


def filter_environment(
    text: str,
    *,
    file: str = "env/environment.txt",
    report: RedactionReport | None = None,
) -> str:
    """Keep only allowlisted variables of ``env`` output; mask allowlisted values that look secret.

    Accepts ``env`` output (one ``NAME=value`` per line) or ``/proc/<pid>/environ`` (NUL
    separated). Variables outside the allowlist are dropped, and one trailing comment says how
    many, so a reader knows the file is filtered. Idempotent: filtering filtered text is a no-op.

    >>> filter_environment("PATH=/bin\\nAWS_SECRET_ACCESS_KEY=x\\nAPP_DB_PASSWORD=pw\\n")
    'PATH=/bin\\nAPP_DB_PASSWORD=***REDACTED***\\n# debugcap: 1 variable outside the allowlist omitted\\n'
    """
    separator = "\0" if "\0" in text else "\n"
    kept: list[str] = []
    dropped = 0
    for entry in text.split(separator):
        entry = entry.rstrip("\r")
        if not entry:
            continue
        omitted = _OMITTED.match(entry)
        if omitted:
            # Our own summary line from an earlier pass: carry its count so filtering is idempotent.
            dropped += int(omitted.group(1))
            continue
        name, sep, value = entry.partition("=")
        if not sep or not is_allowed_name(name):
            # Lines without "=" are continuation lines of multi-line values: they belong to
            # some variable we cannot attribute, so they go too.
            dropped += 1
            continue
        rule = secret_rule(name, value)
        if rule and value != MASK_TEXT:
            if report is not None:
                report.add(file, len(kept) + 1, rule)
            value = MASK_TEXT
        kept.append(f"{name}={value}")
    if dropped:
        noun = "variable" if dropped == 1 else "variables"
        kept.append(f"# debugcap: {dropped} {noun} outside the allowlist omitted")
    return "".join(line + "\n" for line in kept)
