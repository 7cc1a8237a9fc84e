"""The testbed's certificates, checked with the real openssl: SANs, groups, chain."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testbed import layout, pki


def text(cert: Path) -> str:
    return subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout


def test_certificates_chain_to_the_ca_and_carry_identity(tmp_path: Path) -> None:
    pki.ensure(tmp_path)
    for cert in pki.certs():
        crt = tmp_path / f"{cert.name}.crt"
        res = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(crt)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    api = text(tmp_path / "apiserver.crt")
    for san in ("DNS:kubernetes.default.svc", f"IP Address:{layout.NODE_IP}", f"IP Address:{layout.SERVICE_IP}",
                "IP Address:127.0.0.1"):
        assert san in api
    assert "O = system:masters" in text(tmp_path / "admin.crt")
    user = text(tmp_path / "user.crt")
    assert f"CN = {layout.PLAIN_USER}" in user and "O = " not in user.split("Subject:")[1].splitlines()[0]
    assert "O = system:nodes" in text(tmp_path / "kubelet.crt")


def test_ensure_is_idempotent(tmp_path: Path) -> None:
    pki.ensure(tmp_path)
    before = (tmp_path / "apiserver.crt").read_bytes()
    pki.ensure(tmp_path)
    assert (tmp_path / "apiserver.crt").read_bytes() == before


def test_kubeconfig_names_files_and_user(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    pki.kubeconfig(kc, pki=tmp_path, server="https://10.250.0.1:6443", user="alice", cert="user")
    body = kc.read_text()
    assert "server: https://10.250.0.1:6443" in body and f"client-certificate: {tmp_path / 'user.crt'}" in body
    assert "current-context: alice@debugcap-testbed" in body
