"""A seeded corpus of FAKE secrets and harmless look-alikes, placed where a capture writes them.

Every value is generated here from a seeded ``random.Random``: nothing is a real credential, and
token prefixes are assembled at run time so secret scanners do not flag the repository. Each
case records its kind, its channel (the kind of bundle member it sits in), the exact secret
substring (None for a look-alike) and whether the text is a JSON or YAML document that must
still parse after masking.

Channels and how they are pushed through (see :func:`redact_case`):

* ``log``, ``ps``, ``metrics``, ``goroutines``: :class:`LineRedactor`, as any text member;
* ``expvar`` (JSON) and ``pod-yaml`` (YAML): :class:`LineRedactor`, then parsed again;
* ``env``: the environment allowlist, then :class:`LineRedactor` (as ``BundleWriter`` does);
* ``pprof-label``: one string of a profile's string table through ``mask_same_length``.

Used by tests/unit/bundle/test_redaction_corpus.py and benchmarks/bench_redaction_corpus.py.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import yaml

from debugcap.bundle import layout

SEED = 16
PER_TEMPLATE = 5


@dataclass(frozen=True)
class Case:
    kind: str
    channel: str
    text: str
    secret: str | None  # None: a harmless look-alike, which must come out unchanged
    parse: str | None = None  # "json" or "yaml": the masked text must still parse


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def alnum(self, n: int) -> str:
        # Mixed case and digits, with at least one of each so entropy rules see a token.
        body = self.chars(string.ascii_letters + string.digits, n - 3)
        return body + self.r.choice(string.ascii_uppercase) + self.r.choice(string.ascii_lowercase) + \
            self.r.choice(string.digits)

    def hex(self, n: int) -> str:
        return self.chars("0123456789abcdef", n)

    def upper(self, n: int) -> str:
        return self.chars(string.ascii_uppercase + string.digits, n)

    def digits(self, n: int) -> str:
        return self.chars(string.digits, n)

    def word(self) -> str:
        return self.r.choice(["orders", "payments", "billing", "search", "ledger", "users", "cart", "auth"])

    def password(self) -> str:
        return self.chars(string.ascii_letters + string.digits, 6) + self.r.choice("!#%+") + self.alnum(7)

    def b64url(self, raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def jwt(self) -> str:
        head = self.b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = self.b64url(json.dumps({"sub": self.digits(8), "iat": int(self.digits(9))}).encode())
        return f"{head}.{body}.{self.b64url(self.r.randbytes(32))}"

    def ts(self) -> str:
        return f"2026-12-0{self.r.randint(1, 9)}T0{self.r.randint(0, 9)}:1{self.r.randint(0, 9)}:22Z"


# Prefixes assembled at run time, never written whole in the source.
_GH, _GL, _XOXB, _XOXP = "gh" + "p_", "gl" + "pat-", "xo" + "xb-", "xo" + "xp-"
_WHSEC, _SKLIVE, _AIZA, _NPM = "wh" + "sec_", "sk" + "_live_", "AI" + "za", "np" + "m_"
_AKIA, _HVS, _SG = "AK" + "IA", "hv" + "s.", "S" + "G."
_BEGIN, _END, _PK = "-----BEGIN ", "-----END ", "PRIVATE " + "KEY-----"


def _token_kinds(g: _Gen) -> list[tuple[str, str]]:
    """(kind, token) of formats recognised by their prefix."""
    return [
        ("github-token", _GH + g.alnum(36)),
        ("github-token", "github" + "_pat_" + g.alnum(22) + "_" + g.alnum(59)),
        ("gitlab-token", _GL + g.alnum(20)),
        ("slack-token", _XOXB + g.digits(11) + "-" + g.digits(12) + "-" + g.alnum(24)),
        ("slack-token", _XOXP + g.digits(11) + "-" + g.digits(12) + "-" + g.digits(12) + "-" + g.hex(32)),
        ("stripe-key", _WHSEC + g.alnum(32)),
        ("stripe-key", _SKLIVE + g.alnum(24)),
        ("google-api-key", _AIZA + g.chars(string.ascii_letters + string.digits + "_-", 35)),
        ("twilio-key", "S" + "K" + g.hex(32)),
        ("aws-access-key", _AKIA + g.upper(16)),
        ("npm-token", _NPM + g.alnum(36)),
        ("vault-token", _HVS + g.alnum(24)),
        ("sendgrid-key", _SG + g.alnum(22) + "." + g.alnum(43)),
    ]


def _log_line(g: _Gen, message: str) -> str:
    style = g.r.randrange(3)
    if style == 0:
        return f"{g.ts()} INFO {g.word()}: {message}"
    if style == 1:
        return f'time={g.ts()} level=info component={g.word()} msg="{message}"'
    return json.dumps({"time": g.ts(), "level": "info", "msg": message})


def _secrets(g: _Gen) -> list[Case]:  # noqa: PLR0915 - a flat list of templates reads best
    out: list[Case] = []

    def add(kind: str, channel: str, text: str, secret: str, parse: str | None = None) -> None:
        assert secret in text
        out.append(Case(kind, channel, text, secret, parse))

    for kind, token in _token_kinds(g):
        add(kind, "log", _log_line(g, f"using credential {token} for upstream {g.word()}"), token)
    pw = g.password()
    add("url-credentials", "log", _log_line(g, f"connecting to postgres://app:{pw}@db.{g.word()}:5432/app"), pw)
    pw = g.alnum(20)
    add("url-credentials", "log", f"dial redis://:{pw}@cache-{g.word()}:6379/0 ok", pw)
    pw = g.alnum(16)
    add("url-credentials", "log", f"amqp url=amqps://svc:{pw}@mq.internal:5671/vhost", pw)
    pw = g.alnum(18)
    add("url-credentials", "log", f"mongo uri mongodb+srv://root:{pw}@cluster0.example.net/db?retryWrites=true", pw)
    hook = g.alnum(24)
    add("slack-webhook", "log", _log_line(
        g, f"notify https://hooks.slack.com/services/T{g.upper(8)}/B{g.upper(8)}/{hook} status=200"), hook)
    sig = g.b64url(g.r.randbytes(32)).replace("-", "%2B").replace("_", "%2F") + "%3D"
    add("azure-sas", "log", f"GET https://acct{g.digits(3)}.blob.core.windows.net/backups/db.tar?sv=2022-11-02&"
        f"se=2026-12-06T00%3A00%3A00Z&sr=b&sp=r&sig={sig} 200", sig)
    amz = g.hex(64)
    add("presigned-url", "log", f"upload to https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
        f"X-Amz-Expires=300&X-Amz-Signature={amz}", amz)
    code = g.alnum(40)
    add("oauth-code", "log", f"GET /oauth/callback?code={code}&state={g.digits(6)} 302", code)
    jwt = g.jwt()
    add("jwt", "log", _log_line(g, f"session established jwt={jwt}"), jwt)
    jwt = g.jwt()
    add("jwt", "log", f"HTTP 500: upstream said: Authorization: Bearer {jwt} rejected", jwt)
    tok = g.alnum(40)
    add("bearer-token", "log", f'{g.ts()} DEBUG outgoing headers map[Authorization:[Bearer {tok}]]', tok)
    basic = base64.b64encode(f"admin:{g.password()}".encode()).decode()
    add("basic-auth", "log", f"> Authorization: Basic {basic}", basic)
    key_body = g.b64url(g.r.randbytes(48))
    pem = f"{_BEGIN}RSA {_PK}\nMIIEow{key_body}\n{g.b64url(g.r.randbytes(30))}\n{_END}RSA {_PK}"
    add("pem-private-key", "log", f"loaded key:\n{pem}\ndone", key_body)
    json_pem = g.b64url(g.r.randbytes(40))
    doc = json.dumps({"type": "service_account", "private_key_id": g.hex(40),
                      "private_key": f"{_BEGIN}{_PK}\nMIIE{json_pem}\n{_END}{_PK}\n"})
    add("pem-private-key", "expvar", doc, json_pem, "json")
    pw = g.password()
    add("netrc", "log", f"machine api.{g.word()}.example.com login deploy password {pw}", pw)

    # name=value, name: value and JSON fields with a secret-bearing name.
    for name in ("password", "db_pass", "client_secret", "apiKey", "x-api-key", "access_token", "refresh_token",
                 "SMTP_PASS", "MYSQL_PWD", "session_secret", "signing_key", "encryptionKey", "auth_token",
                 "webhook_secret", "private_key", "passphrase", "dsn_password", "credentials"):
        value = g.alnum(22)
        form = g.r.randrange(3)
        if form == 0:
            add("key-value", "log", _log_line(g, f"config loaded {name}={value} retries=3"), value)
        elif form == 1:
            add("key-value", "log", f"{g.ts()} {name}: {value}", value)
        else:
            add("json-field", "log", json.dumps({"level": "debug", "msg": "request", name: value, "n": 3}),
                value, "json")
    for name in ("pass", "pwd", "secret", "auth", "token", "password"):
        value = g.password()
        add("json-field", "log", json.dumps({"user": "svc-" + g.word(), name: value, "method": "POST"}),
            value, "json")
    value = g.alnum(32)
    add("http-header", "log", f"< Set-Cookie: session={value}; Path=/; HttpOnly; Secure", value)
    value = g.alnum(32)
    add("http-header", "log", f"> X-Api-Key: {value}", value)
    pw = g.alnum(14)
    add("key-value", "ps", f"app 1 0.0 0.1 1 1 ? S 01:00 0:00 psql \"host=db user=app password={pw} dbname=x\"", pw)
    pw = g.alnum(18)
    add("key-value", "ps", f"app 1 0.0 0.1 1 1 ? S 01:00 0:00 env PGPASSWORD={pw} psql -h db -U app", pw)
    pw = g.alnum(18)
    add("xml-element", "log", f"SOAP request <auth><user>svc</user><password>{pw}</password></auth>", pw)
    pw = g.alnum(18)
    add("argv", "ps", f"app 1 0.0 0.1 1 1 ? S 01:00 0:00 docker login -u ci -p {pw} registry.example.com", pw)
    tok = _HVS + g.alnum(24) if g.r.random() < 0.5 else g.alnum(26)
    add("argv", "ps", f"app 1 0.0 0.1 1 1 ? S 01:00 0:00 vault login {tok}", tok)
    pw = g.alnum(18)
    add("key-value", "log", f"make deploy DB_PASSWORD:={pw} REGION=eu", pw)
    code = g.alnum(32)
    add("oauth-code", "log", json.dumps({"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": "https://app.example.com/cb"}), code, "json")
    pw = g.alnum(20)
    add("json-field", "expvar", json.dumps({"db": {"password": pw, "pool": 10},
                                            "auth": {"method": "oidc"}}, indent=2), pw, "json")

    # Process lists and cmdlines: argv-aware forms.
    def ps(cmd: str) -> str:
        pid, cpu, minute = g.r.randint(2, 900), g.r.randint(0, 9), g.r.randint(0, 9)
        return f"app       {pid:>5}  0.{cpu}  1.2 123456 45678 ?  Sl   01:0{minute}   0:01 {cmd}"

    pw = g.password().replace("!", "x")
    add("argv", "ps", ps(f"mysql -h db.internal -u app -p{pw} orders"), pw)
    pw = g.alnum(18)
    add("argv", "ps", ps(f"redis-cli -h cache -p 6379 -a {pw} ping"), pw)
    pw = g.alnum(14)
    add("argv", "ps", ps(f"sshpass -p {pw} ssh deploy@10.0.0.{g.r.randint(2, 250)}"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"curl -s -u admin:{pw} https://api.internal/v1/health"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"/app/server --listen :8080 --db-pass={pw} --log-level=info"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"/app/server --db-password {pw} --port 8080"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"java -Djavax.net.ssl.keyStorePassword={pw} -jar /app/app.jar"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"mongosh --host mongo -u admin -p {pw} --authenticationDatabase admin"), pw)
    pw = g.alnum(16)
    add("argv", "ps", ps(f"/bin/worker --api-key {pw} --queue jobs"), pw)
    pw = g.alnum(16)
    add("argv", "expvar", json.dumps({"cmdline": ["/app/server", "--db-password", pw, "-v"],
                                      "memstats": {"Alloc": int(g.digits(6))}}), pw, "json")
    pw = g.alnum(16)
    add("argv", "expvar", json.dumps({"cmdline": ["/app/server", f"--auth-token={pw}"]}), pw, "json")
    pw = g.alnum(16)
    add("argv", "expvar", json.dumps({"cmdline": ["redis-cli", "-a", pw, "monitor"]}), pw, "json")

    # Environment (allow-listed APP_* names too) and pod YAML.
    for name in ("SMTP_PASS", "MYSQL_PWD", "APP_SMTP_PASS", "APP_MYSQL_PWD", "APP_DB_PASSWORD", "APP_API_TOKEN",
                 "APP_SESSION_SECRET", "APP_STRIPE_KEY", "APP_SIGNING_KEY"):
        value = g.password()
        add("env", "env", f"PATH=/usr/bin\nHOME=/root\n{name}={value}\nAPP_MODE=production\n", value)
    hook = g.alnum(24)
    add("env", "env", f"APP_WEBHOOK=https://hooks.example.com/in/{hook}\nGOGC=100\n", hook)
    add("env", "env", f"APP_REDIS_URL=redis://:{(pw := g.alnum(20))}@cache:6379\n", pw)
    token = _GH + g.alnum(36)
    add("env", "env", f"APP_UPSTREAM={token}\n", token)
    for annotation in ("example.com/api-token", "ci.example.com/webhook-secret", "backup.example.com/s3-secret-key",
                       "vault.example.com/client-secret"):
        value = g.alnum(24)
        add("pod-yaml", "pod-yaml", _pod_yaml(g, annotations={annotation: value}), value, "yaml")
    pw = g.alnum(16)
    add("pod-yaml", "pod-yaml", _pod_yaml(g, annotations={"example.com/db-url": f"postgres://app:{pw}@db/app"}),
        pw, "yaml")
    pw = g.alnum(16)
    add("pod-yaml", "pod-yaml", _pod_yaml(g, annotations={"example.com/config": json.dumps({"password": pw})}),
        pw, "yaml")
    pw = g.alnum(16)
    add("pod-yaml", "pod-yaml", _pod_yaml(g, args=["--listen=:8080", f"--token={pw}"]), pw, "yaml")
    pw = g.alnum(16)
    add("pod-yaml", "pod-yaml", _pod_yaml(g, env=[{"name": "APP_SMTP_PASS", "value": pw}]), pw, "yaml")

    # Metrics, goroutine-dump labels and pprof labels.
    pw = g.alnum(16)
    add("metrics", "metrics", f'upstream_requests_total{{url="https://svc:{pw}@api.internal/v1"}} 42', pw)
    tok = g.alnum(24)
    add("metrics", "metrics", f'client_calls_total{{api_token="{tok}",code="200"}} 7', tok)
    tok = g.alnum(24)
    add("goroutine-label", "goroutines", f'goroutine 42 [select]:\n# labels: {{"token":"{tok}", "user":"bob"}}\n'
        f"main.handle(0xc000123456)\n\t/src/app/main.go:88 +0x1a5", tok)
    for _, token in _token_kinds(g)[:6]:
        add("pprof-label", "pprof-label", token, token)
    jwt = g.jwt()
    add("pprof-label", "pprof-label", f"Bearer {jwt}", jwt)
    tok = g.alnum(24)
    add("pprof-label", "pprof-label", f"user=bob;token={tok}", tok)
    return out


def _pod_yaml(g: _Gen, *, annotations: dict[str, str] | None = None, args: list[str] | None = None,
              env: list[dict[str, str]] | None = None) -> str:
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{g.word()}-{g.hex(10)}-{g.chars(string.ascii_lowercase, 5)}", "namespace": "prod",
                     "labels": {"app": g.word(), "pod-template-hash": g.hex(10)},
                     "annotations": {"prometheus.io/port": "9090", "checksum/config": g.hex(64),
                                     **(annotations or {})}},
        "spec": {"serviceAccountName": "app", "automountServiceAccountToken": False, "containers": [{
            "name": "app", "image": f"registry.example.com/app@sha256:{g.hex(64)}",
            "args": args or ["--listen=:8080"],
            "env": [{"name": "APP_MODE", "value": "production"},
                    {"name": "APP_TOKEN_TTL", "value": "300"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}},
                    *(env or [])],
            "volumeMounts": [{"name": "tls", "mountPath": "/etc/tls", "readOnly": True}]}],
            "volumes": [{"name": "tls", "secret": {"secretName": "app-tls"}}]},
    }
    return yaml.dump(pod, sort_keys=False)


def _harmless(g: _Gen) -> list[Case]:  # noqa: PLR0915 - a flat list of templates reads best
    out: list[Case] = []

    def add(kind: str, channel: str, text: str, parse: str | None = None) -> None:
        out.append(Case(kind, channel, text, None, parse))

    add("ttl-count-size", "log", _log_line(g, f"token_ttl={g.r.choice([60, 300, 3600])} refresh ok"))
    add("ttl-count-size", "log", f"issued token_expires_in={g.r.randint(60, 9000)} token_count={g.r.randint(1, 99)}")
    add("ttl-count-size", "log", f"keys={g.r.randint(1, 99)} sessions={g.r.randint(1, 99)} max_keys=1000")
    add("ttl-count-size", "log", f"secret_rotation_days={g.r.randint(1, 90)} key_size=2048 password_min_length=12")
    add("harmless-key-name", "log", f"query sort_key=created_at primary_key=id partition_key={g.word()}")
    add("harmless-key-name", "log", f"cache hit cache_key=user:{g.digits(4)}:profile shard_key={g.digits(2)}")
    add("harmless-key-name", "log", f"public_key_id={g.hex(16)} key_id={g.hex(16)} routing_key={g.word()}.created")
    add("harmless-key-name", "log", json.dumps({"sortKey": "ts", "publicKey": "ssh-ed25519 " + g.word(),
                                                "keys": g.r.randint(1, 9)}), "json")
    add("auth-method", "log", _log_line(g, f"login ok auth_method={g.r.choice(['oidc', 'saml', 'ldap'])}"))
    add("auth-method", "log", json.dumps({"auth": {"method": "oidc", "issuer": "https://idp.example.com"},
                                          "token_type": "Bearer", "expires_in": 3600}), "json")
    add("harmless-key-name", "log", f"<config><token_ttl>300</token_ttl><keyId>{g.hex(8)}</keyId></config>")
    days = g.r.randint(1, 90)
    add("harmless-key-name", "pod-yaml", f"passwordless: true\npasswordPolicy: strict\nkeyRotationDays: {days}\n",
        "yaml")
    add("harmless-key-name", "log", json.dumps({"items": [], "nextPageToken": g.alnum(40),
                                                "continuation_token": g.alnum(24)}), "json")
    add("argv-harmless", "ps", f"app 1 0.0 0.1 1 1 ? S 01:00 0:00 docker run -p {g.r.randint(8000, 9000)}:80 -v /a:/b "
        "nginx")
    add("prose", "log", f"{g.ts()} WARN auth: connection refused by idp-{g.digits(2)}")
    add("prose", "log", f"{g.ts()} INFO session: started for user {g.digits(5)} token expired retrying")
    add("auth-method", "metrics", f'auth_requests_total{{auth_method="oidc",code="{g.r.choice([200, 401])}"}} '
        f"{g.r.randint(1, 999)}")
    add("file-path", "ps", f"app 1 0.0 0.1 1 1 ? Sl 01:00 0:01 /app/server --tls-key-file=/etc/tls/tls.key "
        f"--tls-cert-file=/etc/tls/tls.crt --port {g.r.randint(8000, 9000)}")
    add("file-path", "ps", "app 1 0.0 0.1 1 1 ? Sl 01:00 0:01 /app/server --password-file /run/secrets/db "
        "--token-file=/var/run/secrets/kubernetes.io/serviceaccount/token")
    add("file-path", "log", f"reading secret_file=/etc/{g.word()}/secret.json key_path=/etc/tls/tls.key")
    add("file-path", "expvar", json.dumps({"cmdline": ["/app/server", "--tls-key-file=/etc/tls/tls.key",
                                                       "--port", "8080"], "memstats": {"Alloc": 1}}), "json")
    add("goroutine-dump", "goroutines",
        f"goroutine {g.r.randint(1, 999)} [IO wait]:\ngithub.com/org/{g.word()}/auth.(*TokenSource).Token(0xc000"
        f"{g.hex(6)})\n\t/src/app/auth/token.go:{g.r.randint(10, 300)} +0x1a5\ncrypto/tls.(*Conn).clientHandshake"
        f"(0xc0001a8000, {{0x7f8b1c, 0xc000}})\n\t/usr/local/go/src/crypto/tls/handshake_client.go:"
        f"{g.r.randint(10, 300)} +0x5f1\nmain.(*server).checkPassword(...)\n\t/src/app/password.go:12")
    add("goroutine-dump", "goroutines", f"goroutine 7 [running]:\n# labels: {{\"handler\":\"/v1/tokens\", "
        f"\"request_id\":\"{g.hex(16)}\"}}\nmain.sessionKey(...)\n\t/src/app/session_key.go:4 +0x1")
    for name, value in (("APP_BUILD_SHA", g.hex(40)), ("APP_CONFIG_SHA256", g.hex(64)),
                        ("APP_RELEASE_NAME", f"{g.word()}-Release{g.digits(4)}-{g.alnum(12)}"),
                        ("APP_COMMIT", g.hex(40)), ("APP_IMAGE_DIGEST", "sha256:" + g.hex(64)),
                        ("APP_TOKEN_TTL", str(g.r.randint(60, 999))), ("APP_AUTH_METHOD", "oidc"),
                        ("APP_TRACE_ID", g.hex(32)), ("PWD", "/app")):
        add("env-harmless", "env", f"PATH=/usr/bin\nHOSTNAME={g.word()}-{g.hex(10)}-{g.hex(5)}\n{name}={value}\n")
    add("url-without-credentials", "log", f"GET https://api.example.com/v1/tokens?limit={g.r.randint(1, 99)} 200")
    add("url-without-credentials", "log", f"connecting to postgres://db.{g.word()}:5432/app?sslmode=require")
    add("url-without-credentials", "log", f"clone git@github.com:org/{g.word()}.git user@host ok")
    add("url-without-credentials", "log", f"GET /oauth/callback?code=200&state={g.digits(6)} error=access_denied")
    add("argv-harmless", "ps", f"app 1 0.0 0.1 1 1 ? Sl 01:00 0:01 docker run -u {g.r.randint(1000, 2000)}:1000 "
        f"-p 8080:80 nginx")
    add("argv-harmless", "ps", f"app 1 0.0 0.1 1 1 ? Ss 01:00 0:01 ssh -p {g.r.randint(2000, 3000)} deploy@bastion")
    add("argv-harmless", "ps", "app 1 0.0 0.1 1 1 ? Ss 01:00 0:01 redis-cli -h cache -p 6379 ping")
    add("argv-harmless", "ps", f"app 1 0.0 0.1 1 1 ? Ss 01:00 0:01 /app/server --log-level=info -v --workers "
        f"{g.r.randint(1, 16)} --session-timeout 30s")
    add("metrics-harmless", "metrics", f"token_cache_size {g.r.randint(1, 999)}\nsecret_reloads_total "
        f"{g.r.randint(1, 9)}\ngo_memstats_alloc_bytes {g.digits(7)}")
    add("metrics-harmless", "metrics", f'http_requests_total{{handler="/v1/tokens",method="POST",code="201"}} '
        f"{g.r.randint(1, 999)}")
    add("trace-id", "log", f"trace_id={g.hex(32)} span_id={g.hex(16)} request_id={g.hex(8)}-{g.hex(4)}-4"
        f"{g.hex(3)}-a{g.hex(3)}-{g.hex(12)}")
    add("pod-yaml-harmless", "pod-yaml", _pod_yaml(g), "yaml")
    add("pod-yaml-harmless", "pod-yaml", _pod_yaml(g, annotations={"kubectl.kubernetes.io/restartedAt": g.ts()},
                                                    args=["--tls-key-file=/etc/tls/tls.key", "--port=8080"]), "yaml")
    add("json-harmless", "expvar", json.dumps({"auth": {"method": "oidc"}, "token_ttl": 300, "secret_set": True,
                                               "password_required": False, "api_key_header": "X-Api-Key"},
                                              indent=2), "json")
    for value in ("/src/app/auth/token.go", "main.(*TokenSource).Token", "github.com/org/app/auth.VerifyPassword",
                  "endpoint=/v1/tokens", g.hex(40), "session.(*Store).Get"):
        add("pprof-harmless", "pprof-label", value)
    return out


def build(seed: int = SEED, per_template: int = PER_TEMPLATE) -> tuple[list[Case], list[Case]]:
    """(secrets, look-alikes): each template instantiated ``per_template`` times with new values."""
    g = _Gen(seed)
    secrets: list[Case] = []
    harmless: list[Case] = []
    for _ in range(per_template):
        secrets += _secrets(g)
        harmless += _harmless(g)
    return secrets, harmless


# The bundle member each channel is written to (debugcap.bundle.layout): the redactor quotes a
# masked YAML plain scalar in *.yaml members.
MEMBERS = {
    "log": "logs/app.log", "ps": layout.PROC_PS, "metrics": layout.METRICS_PROMETHEUS,
    "goroutines": layout.PPROF_GOROUTINE_DEBUG1, "expvar": layout.METRICS_EXPVAR, "pod-yaml": layout.K8S_POD,
    "env": layout.ENV_ENVIRONMENT, "pprof-label": layout.PPROF_CPU,
}


def redact_case(case: Case, redact: ModuleType, filter_environment: Callable[..., str]) -> tuple[str, Any]:
    """Push one case through the channel's path; returns (output text, redaction report)."""
    report = redact.RedactionReport()
    data = case.text
    if case.channel == "pprof-label":
        return redact.mask_same_length(data.encode(), MEMBERS["pprof-label"], report).decode(), report
    if case.channel == "env":
        data = filter_environment(data, file=MEMBERS["env"], report=report)
    redactor = redact.LineRedactor(MEMBERS[case.channel], report)
    out = redactor.feed(data.encode()) + redactor.close()
    return out.decode(), report


def kept_unchanged(case: Case, out: str) -> bool:
    """A look-alike is kept when it comes out unchanged (an environment: when nothing is masked;
    the allowlist dropping a variable is not a redaction)."""
    if case.channel == "env":
        return "***REDACTED***" not in out
    return out == case.text


def parses(case: Case, out: str) -> bool:
    try:
        if case.parse == "json":
            json.loads(out)
        elif case.parse == "yaml":
            yaml.safe_load(out)
    except (ValueError, yaml.YAMLError):
        return False
    return True
