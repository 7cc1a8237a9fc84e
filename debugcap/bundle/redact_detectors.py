"""The detectors of :mod:`debugcap.bundle.redact`: what a secret looks like, by kind.

* **Known token formats**, by their prefixes: GitHub, GitLab, Slack (tokens and webhook URLs),
  Stripe, Google API keys, Twilio, AWS access keys, npm, PyPI, Hugging Face, Vault, SendGrid.
* **Names that bear secrets**, in ``key=value``, ``key: value``, JSON-field, flag (``--name
  value``, ``--name=value``, a JSON argv list) and Kubernetes env (``name:``/``value:``) forms.
  A name is split into words (``db_pass``, ``apiKey``, ``X-Amz-Signature``); it bears a
  secret when a word is one of :data:`_STRONG` (password, pass, pwd, secret, token, ...) or is
  ``key`` after a qualifier (api, private, signing, ...), unless a word after it says the value
  is *about* the secret (ttl, count, size, method, file, path, id, ...: :data:`_DESCRIPTIVE`).
  Values that cannot be secrets (booleans, paths, templates, an already masked value) are kept.
* **URLs with credentials** (``scheme://user:pw@``, also ``redis://:pw@``), **Authorization
  headers** (Basic, Bearer, Digest, ...), **JWTs**, **PEM private keys**, **netrc** lines.
* **argv** of well-known clients in ``ps``/cmdline: ``mysql -pPW``, ``redis-cli -a PW``,
  ``sshpass -p PW``, ``mongosh -p PW``, ``curl -u user:PW``.

Every regex is linear in its input: no nested quantifiers over overlapping classes, names bounded
in length and anchored by a look-behind, so a run of name characters cannot make a start position
rescan the line (tests/unit/bundle/test_redaction_corpus.py feeds each a 1 MiB adversarial line).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

Span = tuple[int, int]

# --- names ------------------------------------------------------------------------------------

_STRONG: Final = frozenset(
    "password passwd pass pwd passphrase passin passout secret secrets token tokens credential credentials "
    "cred creds cookie apikey signature sig sas dsn webhook salt authorization auth privatekey otp "
    "session sessionid sessid".split()
)
_PAGING: Final = frozenset("page next continuation pagination resume sync cursor".split())
_STRONG_ENDINGS: Final = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credentials")
# "key" bears a secret only after one of these (api_key, signingKey, tls.key); alone, or in
# sort_key, cache_key, primary_key, public_key, it does not.
_KEY_QUALIFIERS: Final = frozenset(
    "api access secret private signing sign encryption encrypt master client license app account auth hmac "
    "shared service storage subscription webhook ssh gpg pgp deploy admin root session cookie jwt aes enc "
    "crypto tls stripe twilio sendgrid x".split()
)
# A word after the secret word that makes the value descriptive, not the secret itself.
_DESCRIPTIVE: Final = frozenset(
    "ttl ttls expiry expires expiration exp in age timeout interval lifetime duration count counts total size "
    "length len bytes bits max min limit method methods type kind name names file files path paths dir "
    "url uri endpoint host port header headers field fields prefix suffix format alg algorithm version "
    "enabled disabled enable required rotation days hours seconds secs ms mode policy provider issuer "
    "audience scope scopes id ids index ref hint location source set present exists configured status "
    "state backend label level env var error errors reset changed updated at time date sha checksum "
    "digest commit revision build release image rotated retries attempts strength usage used cache "
    "refresh valid validation store keyring mount ns processed received sent issued generated remaining "
    "rate consumed".split()
)
# "webhook_url" and "dsn_uri" are the secret themselves.
_URL_IS_SECRET: Final = frozenset({"webhook", "dsn"})
_URLISH: Final = frozenset({"url", "uri", "endpoint", "host"})
_FILE_EXTENSIONS: Final = frozenset(
    "go py js ts java rb rs c h cc cpp s yaml yml json toml conf cfg ini txt log md proto".split()
)
_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _split(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def secret_word_index(words: list[str]) -> int:
    """Index of the last word that bears a secret, or -1."""
    found = -1
    for i, word in enumerate(words):
        if word in ("token", "tokens") and i > 0 and words[i - 1] in _PAGING:
            continue  # nextPageToken, continuation_token: where a listing resumes, not a credential
        if word in _STRONG or (word in ("key", "keys") and i > 0 and words[i - 1] in _KEY_QUALIFIERS):
            found = i
        elif word.endswith(_STRONG_ENDINGS) or (word.endswith("key") and word[:-3] in _KEY_QUALIFIERS):
            found = i  # one word of several run together: PGPASSWORD, clientsecret, secretkey
    return found


@functools.lru_cache(maxsize=8192)  # logs repeat their names; this is on the hot path
def is_secret_name(name: str) -> bool:
    """True when a variable, flag, field or annotation name says its value is a secret.

    >>> [is_secret_name(n) for n in ("DB_PASSWORD", "apiKey", "token_ttl", "sort_key", "tls-key-file")]
    [True, True, False, False, False]
    """
    if "." in name and name.rsplit(".", 1)[1].lower() in _FILE_EXTENSIONS:
        return False  # token.go:45 in a stack trace
    words = _split(name)
    if name in ("PWD", "OLDPWD"):
        return False  # the working directory (its value is a path, too)
    at = secret_word_index(words)
    if at < 0:
        return False
    after = [w for w in words[at + 1 :] if not w.isdigit()]
    descriptive = [w for w in after if w in _DESCRIPTIVE]
    if descriptive and words[at] in _URL_IS_SECRET and all(w in _URLISH for w in descriptive):
        return True
    return not descriptive


def is_descriptive_name(name: str) -> bool:
    """True for a name whose last word describes (``APP_BUILD_SHA``, ``APP_RELEASE_NAME``): its
    value is an identifier, not a credential, even when it looks random."""
    words = [w for w in _split(name) if not w.isdigit()]
    return bool(words) and words[-1] in _DESCRIPTIVE


_HARMLESS_VALUE: Final = re.compile(
    r"(?:true|false|yes|no|on|off|null|none|nil|~|\*+|<[^>]*>|\$\{.*|\$\(.*|\{\{.*|(?:/|\./|~/|file://)\S*|"
    r"\*\*\*REDACTED\*\*\*.*)$",
    re.IGNORECASE,
)
_SCHEME_VALUE: Final = re.compile(r"(?:bearer|basic|digest|negotiate|token)[ \t]+\S", re.IGNORECASE)
_TOKEN_LIKE: Final = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*[0-9])[A-Za-z0-9._~+/%-]{16,}=*$")


def is_secret_value(name: str, value: str) -> bool:
    """Whether a value under a secret-bearing ``name`` is worth masking."""
    value = value.strip().strip("\"'").strip()
    if not value or _HARMLESS_VALUE.match(value) or value in ("|", ">", "|-", ">-"):
        return False
    # "Authorization: Bearer X" is left to the header detectors, which mask X, not "Bearer".
    return not _SCHEME_VALUE.match(value)


def is_oauth_code(name: str, value: str) -> bool:
    """``code`` is a status code (code=200) unless its value is token-like (an OAuth code)."""
    return name.lower() == "code" and bool(_TOKEN_LIKE.match(value.strip("\"'")))


# --- detectors --------------------------------------------------------------------------------

Finder = Callable[[bytes, int, int], Iterator[Span]]


@dataclass(frozen=True)
class Detector:
    """Finds secrets; each yielded span is masked, the rest of the text is kept."""

    name: str
    find: Finder
    # Fast skip: the detector cannot fire in a block containing none of these (lowercased) bytes.
    hints: tuple[bytes, ...] = ()
    # Only lines where this case-sensitive regex matches the lowercased text are searched.
    gate: re.Pattern[bytes] | None = None
    # Value masks of structured text: keep quotes, quote a bare JSON or YAML value.
    structured: bool = field(default=False)
    # The line prefilter of redact.LineRedactor (a regex in the syntax re and RE2 share, that never
    # matches a line break, over the lowercased text): every span this detector finds lies on a
    # line holding a match of it, or on the line after one. Lines with no trigger of any detector
    # are never shown to the detectors. None: no such promise, the detector sees whole blocks.
    trigger: str | None = None


def _regex_finder(regex: re.Pattern[bytes], accept: Callable[[re.Match[bytes]], bool] | None = None) -> Finder:
    def find(data: bytes, low: int, high: int) -> Iterator[Span]:
        for match in regex.finditer(data, low, high):
            if accept is None or accept(match):
                yield match.span("secret")

    return find


def _rx(pattern: str, flags: int = 0) -> re.Pattern[bytes]:
    return re.compile(pattern.encode(), flags)


def regex_detector(name: str, pattern: str, *hints: bytes, flags: int = 0, gate: str | None = None,
                   accept: Callable[[re.Match[bytes]], bool] | None = None, structured: bool = False,
                   trigger: str | None = None) -> Detector:
    """A detector masking the group ``secret`` of each match of ``pattern``; its line trigger is
    ``trigger``, else its gate (a gate already limits it to the gated lines and the next)."""
    regex = _rx(pattern, flags)
    return Detector(name, _regex_finder(regex, accept), hints, _rx(gate) if gate else None, structured,
                    trigger or gate)


_NOT_MASKED: Final = r"(?!\*\*\*REDACTED\*\*\*)"
# A name: bounded, and no name character before it, so a long run of name characters costs
# one bounded attempt per start, not a rescan of the rest of the line.
_NAME: Final = r"(?<![A-Za-z0-9_.])(?P<name>[A-Za-z][A-Za-z0-9_.-]{0,79})"
_QUOTED: Final = r"\"(?!\")[^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*\"|'[^'\r\n]+'"
# A list, or an object opening ({", { and a line end), is a structure whose own keys get their
# chance, not one secret: JSON stays valid JSON. "{SSHA}..." (an LDAP hash) is still a value.
_VALUE: Final = _rx(
    rf"{_NOT_MASKED}(?![\[\]}}]|\{{[\s\"'}}]|\{{$)"
    rf"(?P<secret>{_QUOTED}|\{{[A-Za-z0-9_-]{{1,20}}\}}[^\s\"',;&}}\]]*|[^\s\"',;&}}\]]+)",
    re.MULTILINE,
)
# Not right after "//" or "@": that is a URL's host ("postgres://db.auth:5432"), not a name.
_KEY_VALUE_NAME: Final = _rx(rf"(?<!//)(?<!@){_NAME}[\"']?[ \t]*(?:=>?|:=|:(?!//))[ \t]*")
_FLAG_NAME: Final = _rx(
    r"(?<![A-Za-z0-9_.-])--?(?P<name>[A-Za-z][A-Za-z0-9_.-]{0,79})(?:[ \t]+|\"[ \t]*,[ \t]*(?:\r?\n[ \t]*)?\")"
)
_FLAG_VALUE: Final = _rx(rf"{_NOT_MASKED}(?P<secret>[^\s\"'-][^\s\"']*)")
_SCHEME_AT: Final = _rx(r"[\"']?(?:bearer|basic|digest|negotiate|ntlm|token)[ \t]+\S", re.IGNORECASE)
_NAME_GATE: Final = _rx(
    r"pass|pwd|secret|token|key|auth|cred|cookie|sig|salt|dsn|webhook|session|private|sas|otp|^code$"
)
_PASSWORD_WORDS: Final = frozenset("password passwd pass pwd passphrase secret secrets".split())
_PROSE: Final = _rx(r"[ \t]+[a-z]{2,}\b(?![=:])")
_SECRET_GATE: Final = (
    r"pass|pwd|secret|token|key|auth|cred|cookie|sig|salt|dsn|webhook|session|private|sas|otp"
)


def _is_prose(name: str, text: str, data: bytes, end: int, high: int) -> bool:
    """"auth: connection refused", "session: started for user 42": a sentence, not a value (a
    lower-case word followed by more words), unless the name is a password's."""
    if not (text.isalpha() and text.islower() and _PROSE.match(data, end, high)):
        return False
    words = _split(name)
    return words[secret_word_index(words)] not in _PASSWORD_WORDS


# Lowercased, what a name _NAME_GATE lets through holds (a name word, or "code"), with what
# follows it in a key=value name up to its separator; and in a flag, from its dash to the word.
# Bounded like the names, so each start reads a bounded stretch.
_NAME_WORD: Final = rf"(?:{_SECRET_GATE}|code)"
_KEY_VALUE_WORDS: Final = _rx(rf"{_NAME_WORD}[a-z0-9_.-]{{0,80}}[\"']?[ \t]*[=:]")
# A flag's start as _FLAG_NAME's (no name character before its dash, a letter after): a run of
# dashes is one start, not one per dash (each would read 80 bytes: 4 s for a 1 MiB line of "-").
_FLAG_WORDS: Final = _rx(rf"(?<![a-z0-9_.-])--?(?=[a-z])[a-z0-9_.-]{{0,79}}?{_NAME_WORD}")


def _words_span(words: re.Pattern[bytes], data: bytes, low: int, high: int) -> Span | None:
    """Where the first match of ``words`` in data[low:high] (lowercased) starts and the last one
    ends, or None. Every name that may bear a secret starts before the end of one of them."""
    hits = [m.span() for m in words.finditer(data[low:high].lower())]
    return (low + hits[0][0], low + hits[-1][1]) if hits else None


def _resume_point(data: bytes, low: int, at: int, barriers: tuple[bytes, ...]) -> int:
    """A position in [low, at] that no match of a name regex holds inside: after one of its
    ``barriers`` (bytes no match holds), or after a blank that a letter follows (a match's
    blanks come before its separator, or at its end). The search for names from ``low`` passes
    there, so it may start there: every name before it was refused (none holds a name word)."""
    best = low
    for barrier in barriers:
        found = data.rfind(barrier, best, at)
        if found >= 0:
            best = found + 1
    blank = at
    while (blank := data.rfind(b" ", best, blank)) >= 0:
        if data[blank + 1 : blank + 2].isalpha():
            return blank + 1
    return best


def _name_value_finder(
    name_regex: re.Pattern[bytes], value_regex: re.Pattern[bytes], words: re.Pattern[bytes], barriers: tuple[bytes, ...]
) -> Finder:
    """A name, then (only if the name bears a secret) its value: a rejected name costs its own
    length, and the search resumes right after it, so text inside other values is still seen.

    Only names holding a name word can bear a secret (or be ``code``): the search starts at the
    last point before the first such word where it would pass anyway, and stops at the first
    name after the last one; in between it is the search it always was, word for word."""

    def find(data: bytes, low: int, high: int) -> Iterator[Span]:
        span = _words_span(words, data, low, high)
        if span is None:
            return
        pos = _resume_point(data, low, span[0], barriers)
        while True:
            match = name_regex.search(data, pos, high)
            if match is None or match.start() >= span[1]:
                return
            pos = match.end()
            if _SCHEME_AT.match(data, pos, high):
                continue  # "Authorization: Bearer X": the header detectors mask X, not "Bearer"
            raw = match["name"]
            if not _NAME_GATE.search(raw.lower()):
                continue  # no secret word and not "code": the common case, decided in C
            name = raw.decode("utf-8", "replace")
            secret_name = is_secret_name(name)
            if not secret_name and name.lower() != "code":
                continue  # the value is not read: a line of "a=a=a=..." stays linear
            value = value_regex.match(data, pos, high)
            if value is None:
                continue
            # Past the value, kept or not: each value is read once.
            pos = value.end()
            text = value["secret"].decode("utf-8", "replace")
            if b":" in match.group()[len(match["name"]) :] and _is_prose(name, text, data, value.end(), high):
                continue
            if (secret_name and is_secret_value(name, text)) or is_oauth_code(name, text):
                yield value.span("secret")

    return find


_KEY_VALUE_GATE: Final = _SECRET_GATE + r"|code[\"']?[ \t]*[=:]"
KEY_VALUE: Final = Detector(
    "env-secret",
    # Bytes no key=value name (with its quote, blanks and separator) holds.
    _name_value_finder(_KEY_VALUE_NAME, _VALUE, _KEY_VALUE_WORDS, tuple(bytes([c]) for c in b",{}[]();&?/@|<\n")),
    gate=_rx(_KEY_VALUE_GATE),
    structured=True,
    trigger=_KEY_VALUE_GATE,
)
CLI_FLAG: Final = Detector(
    "cli-flag-secret",
    # Bytes no flag (with its blanks, or the quotes, comma and line break of a JSON argv list) holds.
    _name_value_finder(_FLAG_NAME, _FLAG_VALUE, _FLAG_WORDS, tuple(bytes([c]) for c in b"{}[]();&?/@|<=:'")),
    gate=_rx(_SECRET_GATE),
    trigger=_SECRET_GATE,
)


def _k8s_accept(match: re.Match[bytes]) -> bool:
    name = match["name"].decode("utf-8", "replace")
    return is_secret_name(name) and is_secret_value(name, match["secret"].decode("utf-8", "replace"))


_K8S_NAME: Final = r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]{0,127})"
K8S_ENV_YAML: Final = regex_detector(
    "k8s-env-value",
    rf"-[ \t]+name:[ \t]*[\"']?{_K8S_NAME}[\"']?[ \t]*\r?\n[ \t]+value:[ \t]*"
    rf"{_NOT_MASKED}(?P<secret>\S[^\r\n]*?)[ \t]*\r?$",
    b"name",
    flags=re.MULTILINE,
    accept=_k8s_accept,
    structured=True,
    trigger=r"-[ \t]+name:",
)
K8S_ENV_JSON: Final = regex_detector(
    "k8s-env-value",
    # One line (kubectl -o json | jq -c) or two (kubectl get -o json: indented, one key a line).
    rf"\"name\"[ \t]*:[ \t]*\"{_K8S_NAME}\"[ \t]*,[ \t]*(?:\r?\n[ \t]*)?\"value\"[ \t]*:[ \t]*\""
    rf"{_NOT_MASKED}(?P<secret>(?:[^\"\\\r\n]|\\.)+)\"",
    b"name",
    accept=_k8s_accept,
    trigger=r"\"name\"[ \t]*:",
)
URL_CREDENTIALS: Final = regex_detector(
    "url-credentials",
    # "redis://:pw@host" has no user name; the password may be all that is there.
    rf"\b[A-Za-z][A-Za-z0-9+.-]{{1,20}}://[^\s/:@]*:{_NOT_MASKED}(?P<secret>[^\s/@]+)(?=@)",
    b"://",
    # What follows "://" up to the "@" holds no "/": each start reads at most to the next "://".
    trigger=r"://[^\s/@]*@",
)
AUTH_HEADER: Final = regex_detector(
    "basic-auth",
    r"authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:basic|digest|negotiate|ntlm|token|apikey|sso-key)[ \t]+"
    r"(?P<secret>[A-Za-z0-9+/_.~=-]{4,}(?:[,: =][^\s\"']*)?)",
    b"authorization",
    flags=re.IGNORECASE,
    trigger="authorization",
)
BEARER: Final = regex_detector(
    "bearer-token", r"\bbearer[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)", b"bearer", flags=re.IGNORECASE,
    trigger=r"bearer[ \t]",
)
JWT: Final = regex_detector(
    "jwt", r"\b(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)", b"eyj", trigger="eyj"
)
AWS_KEY: Final = regex_detector(
    "aws-access-key",
    r"\b(?P<secret>(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b",
    gate=r"a(?:kia|sia|ida|roa|gpa|npa|nva|ipa)",
)
KNOWN_TOKEN: Final = regex_detector(
    "known-token",
    r"(?<![A-Za-z0-9])(?P<secret>"
    r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"
    r"|gl(?:pat|ptt|dt|rt|cbt|soat)-[A-Za-z0-9_-]{20,}"
    r"|xox[abposre]-[A-Za-z0-9-]{10,}"
    r"|(?:whsec_|(?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|SK[0-9a-fA-F]{32}(?![A-Za-z0-9])"
    r"|npm_[A-Za-z0-9]{36}"
    r"|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|hv[sbr]\.[A-Za-z0-9_-]{24,}"
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"
    r"|sk-(?:proj|ant|svcacct)-[A-Za-z0-9_-]{20,}"
    r"|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"
    r")",
    gate=r"gh[pousr]_|github_pat_|gl(?:pat|ptt|dt|rt|cbt|soat)-|xox[abposre]-|whsec_|_live_|_test_|aiza"
    r"|sk[0-9a-f]{32}|npm_|pypi-|hf_|hv[sbr]\.|sg\.|sk-|shp",
)
SLACK_WEBHOOK: Final = regex_detector(
    "slack-webhook",
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_-]{4,}(?:/[A-Za-z0-9_-]+){0,3})",
    b"hooks.slack.com",
    trigger=r"hooks\.slack\.com/",
)
NETRC: Final = regex_detector(
    "netrc-password",
    r"\b(?:machine[ \t]+[^\s]+|default)(?:[ \t]+login[ \t]+[^\s]+)?(?:[ \t]+account[ \t]+[^\s]+)?[ \t]+"
    r"password[ \t]+"
    rf"{_NOT_MASKED}(?P<secret>[^\s]+)",
    b"password",
    trigger=r"password[ \t]",
)
_ARG_START: Final = r"(?<![^\s\"'\[,])"
_ARG_GAP: Final = r"(?:[ \t]+|\"[ \t]*,[ \t]*\")"
_ARG_VALUE: Final = rf"{_NOT_MASKED}(?P<secret>[^\s\"'-][^\s\"']*)"
MYSQL_PASSWORD: Final = regex_detector(
    "argv-secret", rf"{_ARG_START}-p{_ARG_VALUE}", gate=r"mysql|mariadb"
)
SPACED_PASSWORD: Final = regex_detector(
    "argv-secret", rf"{_ARG_START}-p(?:{_ARG_GAP})?{_ARG_VALUE}",
    gate=r"sshpass|mongo|(?:docker|podman|nerdctl|buildah|oras|crane|helm[ \t]+registry)[ \t]+login"
)
VAULT_LOGIN: Final = regex_detector(
    "argv-secret", rf"\bvault[ \t]+login{_ARG_GAP}{_NOT_MASKED}(?P<secret>[^\s\"'=-][^\s\"'=]*)(?=[\s\"']|$)",
    b"vault", flags=re.MULTILINE, trigger=r"vault[ \t]+login",
)
XML_ELEMENT: Final = regex_detector(
    "env-secret",
    # <password>x</password>, <apiKey>x</apiKey>: a config file or a SOAP body in a log.
    rf"<(?P<name>[A-Za-z][A-Za-z0-9_.-]{{0,79}})>{_NOT_MASKED}(?P<secret>[^<\s][^<\r\n]{{0,1024}})</",
    b"</",
    accept=_k8s_accept,
    trigger=r">[^<\r\n]*</",
)
REDIS_PASSWORD: Final = regex_detector(
    "argv-secret", rf"{_ARG_START}-a{_ARG_GAP}{_ARG_VALUE}", gate=r"redis-cli|keydb-cli|valkey-cli"
)
USER_PASSWORD: Final = regex_detector(
    "argv-secret",
    # curl -u user:pw, --user, --proxy-user, smbclient -U user%pw; not "docker run -u 1000:1000".
    rf"{_ARG_START}(?:-u|-U|--user|--proxy-user)(?:{_ARG_GAP}|=)[\"']?[^\s:%\"'@]*[:%]"
    rf"{_NOT_MASKED}(?!\d+(?:[\s\"']|$))(?P<secret>[^\s\"'@]+)",
    b"-u",
    flags=re.MULTILINE,
    trigger=r"-u[ \t\"=]|--(?:proxy-)?user[ \t\"=]",
)
_PEM_KEY: Final = r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----"
PEM_BLOCK: Final = regex_detector(
    "pem-private-key",
    # The body runs to the next "-----" only, so a line of BEGINs is read once, not once per BEGIN.
    _PEM_KEY + r"(?P<secret>[^-]*(?:-(?!----)[^-]*)*)-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----",
    b"private key",
)

# Order matters: specific shapes first, so the generic name rules do not also fire on what they
# already masked (each secret is then recorded once).
TEXT_DETECTORS: Final = (
    K8S_ENV_YAML,
    K8S_ENV_JSON,
    URL_CREDENTIALS,
    SLACK_WEBHOOK,
    AUTH_HEADER,
    BEARER,
    JWT,
    AWS_KEY,
    KNOWN_TOKEN,
    NETRC,
    MYSQL_PASSWORD,
    SPACED_PASSWORD,
    REDIS_PASSWORD,
    USER_PASSWORD,
    VAULT_LOGIN,
    XML_ELEMENT,
    CLI_FLAG,
    KEY_VALUE,
)
# Shapes that identify a secret by its value alone.
VALUE_DETECTORS: Final = (URL_CREDENTIALS, SLACK_WEBHOOK, BEARER, JWT, AWS_KEY, KNOWN_TOKEN, PEM_BLOCK)
