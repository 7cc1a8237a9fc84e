"""Where the testbed keeps things, which versions it builds, and its addresses.

Everything the testbed writes at run time lives in ``.testbed/`` at the repo
root (git-ignored), except the Go build outputs, which are slow to make and
are shared between clones in a cache keyed by version, and the few sockets
whose paths must stay short (unix socket paths are limited to 108 bytes and a
clone may sit deep in a file system).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DEBUGCAP_TESTBED_STATE", REPO / ".testbed"))
CACHE = Path(os.environ.get("DEBUGCAP_TESTBED_CACHE", Path.home() / ".cache" / "debugcap-testbed"))
# Sockets and netns-related runtime files: short, machine-wide, one testbed per machine.
RUN = Path("/run/debugcap-testbed")

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.6"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
HELM_VERSION = "v3.19.0"
ALERTMANAGER_VERSION = "v0.35.0"
# kubectl-krew: not a running component; the e2e test of the krew install uses it (tests/e2e/test_krew_install.py).
KREW_VERSION = "v0.4.3"

# The node's own address lives on a bridge the testbed creates, so that the
# cluster never depends on (or sends traffic through) the machine's eth0.
NODE_NAME = "debugcap-node"
NODE_BRIDGE = "dcap0"
NODE_IP = "10.250.0.1"
NODE_CIDR = "10.250.0.1/24"
POD_BRIDGE = "dcap-cni0"
POD_SUBNET = "10.251.0.0/16"
SERVICE_CIDR = "10.252.0.0/24"
SERVICE_IP = "10.252.0.1"

# Non-default ports so a testbed never collides with another etcd or S3 the
# developer may run on the usual ones.
ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
APISERVER_PORT = 6443
KCM_PORT = 10257
SCHEDULER_PORT = 10259
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
S3_PORT = 9900
S3_CONSOLE_PORT = 9901
# Alertmanager listens on loopback only; its one receiver is the operator's webhook, which an
# operator run by a test (on this machine, not in a pod) serves on ALERT_WEBHOOK_PORT.
ALERTMANAGER_PORT = 19094
ALERT_WEBHOOK_PORT = 19093
# The OCI registry (testbed/registry.py) on the node's address, plain HTTP: `make image` pushes the
# operator's image there and containerd pulls it from there.
REGISTRY_PORT = 15000

S3_ACCESS_KEY = "debugcap-testbed"
# A throwaway credential for a server that only listens on the testbed's own
# bridge; it protects nothing outside this machine.
S3_SECRET_KEY = "debugcap-testbed-secret"
S3_BUCKET = "debugcap"

ADMIN_USER = "debugcap-admin"
PLAIN_USER = "debugcap-user"  # no groups: rights only through RoleBindings tests create

IMAGES = {
    "pause": "registry.k8s.io/pause:3.10",
    "goapp": "debugcap.test/goapp:dev",
    "goapp-distroless": "debugcap.test/goapp-distroless:dev",
    "goapp-localhost": "debugcap.test/goapp-localhost:dev",
    "goapp-nodiag": "debugcap.test/goapp-nodiag:dev",  # built without goroutineleak or a flight recorder
    "toolbox": "debugcap.test/toolbox:dev",
    "goapp-nonroot": "debugcap.test/goapp-nonroot:dev",
    "goapp-scratch": "debugcap.test/goapp-scratch:dev",
}


@dataclass(frozen=True)
class Paths:
    """Files under ``STATE``; one place so ``down`` can find everything ``up`` made."""

    root: Path = STATE

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def s3_data(self) -> Path:
        return self.root / "s3"

    @property
    def registry(self) -> Path:
        """The registry's config (``config.yml``) and blobs (``data/``)."""
        return self.root / "registry"

    @property
    def containerd_hosts(self) -> Path:
        """containerd's ``config_path``: one ``<host:port>/hosts.toml`` per registry it may pull from."""
        return self.root / "containerd-hosts"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def user_kubeconfig(self, user: str) -> Path:
        return self.root / f"kubeconfig-{user}"

    def component_kubeconfig(self, name: str) -> Path:
        return self.root / "kubeconfigs" / f"{name}.kubeconfig"

    @property
    def alertmanager(self) -> Path:
        """Alertmanager's config, bearer token for the webhook and ``--storage.path`` (``data/``)."""
        return self.root / "alertmanager"

    @property
    def env_file(self) -> Path:
        return self.root / "env"


def bin_dir(component: str, version: str) -> Path:
    return CACHE / "bin" / f"{component}-{version}"


def containerd_socket() -> Path:
    return RUN / "containerd.sock"
