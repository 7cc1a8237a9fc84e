"""A throwaway certificate authority and the certificates the cluster needs.

Made with the ``openssl`` command (Debian's), so the testbed needs no Python
crypto package. Users are client certificates: CN is the user, O the groups,
which is how kube-apiserver's x509 authenticator reads them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed import layout

DAYS = "3650"


@dataclass(frozen=True)
class Cert:
    name: str
    cn: str
    groups: tuple[str, ...] = ()
    sans: tuple[str, ...] = ()
    server: bool = False


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def certs() -> list[Cert]:
    node = layout.NODE_NAME
    return [
        Cert(
            "apiserver",
            "kube-apiserver",
            sans=(
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP:127.0.0.1",
                f"IP:{layout.NODE_IP}",
                f"IP:{layout.SERVICE_IP}",
            ),
            server=True,
        ),
        Cert("kubelet-serving", f"system:node:{node}", sans=(f"DNS:{node}", f"IP:{layout.NODE_IP}"), server=True),
        Cert("admin", layout.ADMIN_USER, groups=("system:masters",)),
        Cert("user", layout.PLAIN_USER),
        Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", groups=("system:masters",)),
        Cert("controller-manager", "system:kube-controller-manager"),
        Cert("scheduler", "system:kube-scheduler"),
        Cert("kubelet", f"system:node:{node}", groups=("system:nodes",)),
    ]


def ensure(pki: Path) -> None:
    """Create the CA, the service-account key pair and every certificate, once."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = pki / "ca.key", pki / "ca.crt"
    if not ca_crt.exists():
        _run("genrsa", "-out", str(ca_key), "2048")
        _run("req", "-x509", "-new", "-nodes", "-key", str(ca_key), "-sha256", "-days", DAYS,
             "-subj", "/CN=debugcap-testbed-ca", "-out", str(ca_crt))
    if not (pki / "sa.pub").exists():
        _run("genrsa", "-out", str(pki / "sa.key"), "2048")
        _run("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for cert in certs():
        _issue(pki, cert)


def _issue(pki: Path, cert: Cert) -> None:
    key, crt = pki / f"{cert.name}.key", pki / f"{cert.name}.crt"
    if crt.exists():
        return
    subject = "".join(f"/O={g}" for g in cert.groups) + f"/CN={cert.cn}"
    ext = pki / f"{cert.name}.ext"
    lines = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={'serverAuth' if cert.server else 'clientAuth'}",
    ]
    if cert.sans:
        lines.append("subjectAltName=" + ",".join(cert.sans))
    ext.write_text("\n".join(lines) + "\n")
    csr = pki / f"{cert.name}.csr"
    _run("genrsa", "-out", str(key), "2048")
    _run("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    _run("x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
         "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", str(ext), "-out", str(crt))
    csr.unlink()
    ext.unlink()


def kubeconfig(path: Path, *, pki: Path, server: str, user: str, cert: str) -> None:
    """Write a kubeconfig that names files (not embedded data) so it stays readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: debugcap-testbed
  cluster:
    server: {server}
    certificate-authority: {pki / 'ca.crt'}
users:
- name: {user}
  user:
    client-certificate: {pki / (cert + '.crt')}
    client-key: {pki / (cert + '.key')}
contexts:
- name: {user}@debugcap-testbed
  context:
    cluster: debugcap-testbed
    user: {user}
    namespace: default
current-context: {user}@debugcap-testbed
"""
    )
