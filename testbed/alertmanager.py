"""The testbed's Alertmanager: its config, the webhook's bearer token, how it starts and is probed.

Alertmanager listens on loopback only. Its one receiver is the debugcap operator's webhook at
``http://127.0.0.1:ALERT_WEBHOOK_PORT/alerts``: an operator a test runs on this machine serves it
there, with the token this module writes (``DEBUGCAP_TESTBED_ALERT_TOKEN_FILE``). Grouping and
repeat intervals are seconds so a test sees a notification soon after it posts an alert. A test
that needs another receiver writes ``DEBUGCAP_TESTBED_ALERTMANAGER_CONFIG`` and POSTs
``/-/reload``; ``testbed up`` writes the default back and reloads.
"""

from __future__ import annotations

import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from testbed import builds, layout

P = layout.Paths()
URL = f"http://127.0.0.1:{layout.ALERTMANAGER_PORT}"
WEBHOOK_URL = f"http://127.0.0.1:{layout.ALERT_WEBHOOK_PORT}/alerts"
RECEIVER = "debugcap-operator"


def config_file() -> Path:
    return P.alertmanager / "alertmanager.yml"


def token_file() -> Path:
    return P.alertmanager / "token"


def storage() -> Path:
    return P.alertmanager / "data"


def config() -> str:
    # JSON-style quoting keeps a state dir with spaces or colons valid YAML.
    return f"""# Written by `python -m testbed up`; a test may replace it and POST /-/reload.
route:
  receiver: {RECEIVER}
  group_by: [alertname, namespace, pod]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 10s
receivers:
  - name: {RECEIVER}
    webhook_configs:
      - url: "{WEBHOOK_URL}"
        send_resolved: false
        max_alerts: 20
        http_config:
          authorization:
            type: Bearer
            credentials_file: "{token_file()}"
"""


def write_files() -> None:
    """The config (always the default) and a random token (kept across ``up``s, made once)."""
    P.alertmanager.mkdir(parents=True, exist_ok=True)
    storage().mkdir(exist_ok=True)
    token = token_file()
    if not token.exists() or not token.read_text().strip():
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    config_file().write_text(config())


def argv() -> list[str]:
    return [str(builds.binary("alertmanager")), f"--config.file={config_file()}", f"--storage.path={storage()}",
            f"--web.listen-address=127.0.0.1:{layout.ALERTMANAGER_PORT}",
            # One instance: no gossip port, no peers to wait for before /-/ready.
            "--cluster.listen-address=", "--log.level=info"]


def _request(path: str, *, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    req = urllib.request.Request(URL + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def ready() -> bool:
    try:
        return _request("/-/ready", timeout=2.0)[0] == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def reload() -> tuple[int, str]:
    """Make a running Alertmanager read its config file again: (HTTP status, its message)."""
    return _request("/-/reload", method="POST")
