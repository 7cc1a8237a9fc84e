"""The testbed's OCI registry: Debian's ``docker-registry`` (distribution v2.8) on the node's
address, plain HTTP, no auth, blobs under the state dir (gone with ``testbed down``).

``make image`` (testbed/image_build.py) pushes to it; the node's containerd pulls from it through
the ``hosts.toml`` written here (containerd's CRI ``config_path`` points at ``P.containerd_hosts``).
It listens only on the testbed's own bridge, so no credential guards it.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testbed import layout

P = layout.Paths()
HOST = f"{layout.NODE_IP}:{layout.REGISTRY_PORT}"
URL = f"http://{HOST}"
BINARY = "docker-registry"
APT_PACKAGE = "docker-registry"


# The registry is on the node's own bridge: a host's HTTP_PROXY (which urllib honours) cannot reach it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def urlopen(req: urllib.request.Request | str, timeout: float) -> Any:
    """``urllib.request.urlopen`` that never goes through a proxy."""
    return _OPENER.open(req, timeout=timeout)


class RegistryError(RuntimeError):
    """The registry cannot be started or asked; the message names the fix."""


def config_file() -> Path:
    return P.registry / "config.yml"


def storage() -> Path:
    return P.registry / "data"


def config() -> str:
    # JSON-style quoting keeps a state dir with spaces or colons valid YAML.
    return f"""# Written by `python -m testbed up`.
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {json.dumps(str(storage()))}
  delete:
    enabled: true
http:
  addr: {json.dumps(HOST)}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def hosts_toml() -> str:
    """containerd's view of the registry: plain HTTP, pulls only."""
    return f"""server = "{URL}"

[host."{URL}"]
  capabilities = ["pull", "resolve"]
"""


def write_files() -> None:
    storage().mkdir(parents=True, exist_ok=True)
    config_file().write_text(config())
    hosts = P.containerd_hosts / HOST
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(hosts_toml())


def argv() -> list[str]:
    binary = shutil.which(BINARY)
    if binary is None:
        raise RegistryError(f"the testbed's registry needs {BINARY}: apt-get install {APT_PACKAGE} "
                            "(.ci/run installs it)")
    return [binary, "serve", str(config_file())]


def ready() -> bool:
    try:
        with urlopen(f"{URL}/v2/", timeout=2.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def manifest_digest(repository: str, tag: str) -> str | None:
    """The digest the registry serves for ``repository:tag``, or None when it has no such tag."""
    req = urllib.request.Request(f"{URL}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
        "Accept": ", ".join(MANIFEST_TYPES)})
    try:
        with urlopen(req, timeout=10) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            return str(digest) if digest else None
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise RegistryError(f"registry {URL} answered {err.code} for {repository}:{tag}; "
                            f"see {P.logs / 'registry.log'}") from err
    except (urllib.error.URLError, OSError) as err:
        raise RegistryError(f"registry {URL} is not reachable ({err}); start it with: python -m testbed up") from err


def manifest(repository: str, tag: str) -> dict[str, object]:
    req = urllib.request.Request(f"{URL}/v2/{repository}/manifests/{tag}",
                                 headers={"Accept": ", ".join(MANIFEST_TYPES)})
    with urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.load(resp)
    return doc


MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
