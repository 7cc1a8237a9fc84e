"""testbed/image_build.py and testbed/registry.py: the pure parts of ``make image`` / ``make deploy``
(the build itself runs in tests/e2e/test_chart.py).

Cases:
* pip.conf for the build keeps only index settings, the environment's over the files', and points
  ``cert`` at the mounted CA file; a host with no settings gives an empty ``[global]``
* the CA file mounted is pip's own cert (PIP_CERT winning) when set, else the system bundle
* the content key ignores order and changes with any byte of any input or its name
* the host's enabled apt sources are found; disabled and empty files are not; of ``apt-config
  dump`` only Acquire:: options are kept (any case, block syntax flattened), not index targets
* mmdebstrap's command line carries the host's sources, its options only as a setup hook's file
  (never --aptopt), the packages and the hooks; the customize hooks run on a fake rootfs leave no
  99mmdebstrap, no host option file and only the neutral sources
* a rootfs tar holding 99mmdebstrap, the host option file or a host source file is flagged
* the runroot is per cache directory; NO_PROXY gets the registry; its client ignores HTTP_PROXY
* the pushed size sums the config and the layers; the version comes from pyproject.toml
* the build context is the Dockerfile's inputs, without byte-code caches
* the deploy values name the registry image and a Secret, never the keys; the Secret carries them;
  the pushed digest becomes a pod annotation, so a new push changes the values
* the registry listens on the node's address; containerd's hosts.toml says plain HTTP, pull only
* without buildah the build stops with the package to install, no fallback
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import tomllib
from pathlib import Path

import pytest
import yaml

from testbed import image_build, layout, registry

HOST_CONFIG = """\
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.find-links='/opt/wheels'
global.index-url='https://files.example/simple'
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.disable-pip-version-check='1'
:env:.index-url='https://mirror.example/simple'
site.trusted-host='mirror.example'
"""


def test_pip_conf_keeps_the_index_settings_and_the_environment_wins() -> None:
    conf = image_build.pip_conf(image_build.pip_settings(HOST_CONFIG), ca_path="/mnt/ca.crt")
    assert conf.splitlines() == ["[global]", "cert = /mnt/ca.crt", "index-url = https://mirror.example/simple",
                                 "timeout = 180", "trusted-host = mirror.example"]
    assert "find-links" not in conf and "disable-pip-version-check" not in conf


def test_pip_conf_of_a_host_without_settings_is_empty() -> None:
    assert image_build.pip_conf(image_build.pip_settings("")) == "[global]\n"
    assert image_build.pip_conf(image_build.pip_settings("not a setting\n")) == "[global]\n"


def test_the_mounted_ca_file_is_pips_own_cert_when_set() -> None:
    custom = "global.cert='/etc/ssl/certs/ca-certificates.crt'\n:env:.cert='/opt/corp/ca.pem'\n"
    assert image_build.pip_ca_file(image_build.pip_settings(custom)) == "/opt/corp/ca.pem"
    assert image_build.pip_ca_file(image_build.pip_settings("global.cert='/opt/a.pem'\n")) == "/opt/a.pem"
    assert image_build.pip_ca_file(image_build.pip_settings("")) == image_build.CA_BUNDLE
    # pip inside the build reads it where it is mounted.
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in image_build.pip_conf(image_build.pip_settings(custom))


def test_content_key_is_order_free_and_sees_every_byte_and_name() -> None:
    base = image_build.content_key([("a", b"1"), ("b", b"2")])
    assert base == image_build.content_key([("b", b"2"), ("a", b"1")])
    assert len(base) == 16
    assert base != image_build.content_key([("a", b"1"), ("b", b"3")])
    assert base != image_build.content_key([("a", b"1"), ("c", b"2")])
    # A name and content boundary cannot be moved without changing the key.
    assert image_build.content_key([("ab", b"")]) != image_build.content_key([("a", b"b")])


def test_apt_sources_are_the_enabled_non_empty_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("\n")  # empty: Debian's deb822 hosts have one
    (tmp_path / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\n")
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb http://mirror.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "other.list.disabled-by-admin").write_text("deb http://x/ y main\n")
    assert [p.name for p in image_build.apt_sources(tmp_path)] == ["debian.sources", "extra.list"]


APT_DUMP = """\
APT "";
APT::NeverAutoRemove:: "^linux-image.*";
APT::Update::Post-Invoke-Success:: "/usr/bin/appstreamcli refresh";
Acquire "";
Acquire::http::Proxy "http://user:pw@proxy:3128";
acquire::Check-Valid-Until "false";
ACQUIRE::https::Verify-Peer "true";
Acquire::Languages:: "none";
Acquire::IndexTargets::deb::DEP-11::MetaKey "$(COMPONENT)/dep11/Components.yml";
DPkg::Post-Invoke:: "true";
"""


def test_only_acquire_options_of_the_dump_are_kept() -> None:
    assert image_build.acquire_options(APT_DUMP).splitlines() == [
        'Acquire::http::Proxy "http://user:pw@proxy:3128";', 'acquire::Check-Valid-Until "false";',
        'ACQUIRE::https::Verify-Peer "true";', 'Acquire::Languages:: "none";']
    assert image_build.acquire_options("") == ""


def test_a_block_syntax_option_file_is_kept_via_apt_config(tmp_path: Path) -> None:
    conf = tmp_path / "apt.conf"
    conf.write_text('Acquire { http { Proxy "http://proxy:3128"; }; };\nAPT::Get::Assume-Yes "true";\n')
    env = {**os.environ, "APT_CONFIG": str(conf)}
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, env=env, check=True).stdout
    options = image_build.acquire_options(dump)
    assert 'Acquire::http::Proxy "http://proxy:3128";' in options.splitlines()
    assert "Assume-Yes" not in options


def test_mmdebstrap_argv_carries_the_hosts_sources_packages_and_hooks_options_only_while_bootstrapping() -> None:
    conf = Path("/tmp/x") / image_build.HOST_APT_CONF
    argv = image_build.mmdebstrap_argv(Path("/out/base.tar"), [Path("/etc/apt/a.sources")], conf)
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv and "--format=tar" in argv
    assert argv[-3:] == ["bookworm", "/out/base.tar", "/etc/apt/a.sources"]
    assert not any(a.startswith("--aptopt") for a in argv)
    assert f"--setup-hook=copy-in {conf} /etc/apt/apt.conf.d" in argv
    assert "--include=python3,python3-venv,ca-certificates" in argv
    hooks = [a.partition("=")[2] for a in argv if a.startswith("--customize-hook=")]
    assert hooks[0] == 'chroot "$1" python3 -m venv /usr/local'
    assert any("/etc/pip.conf" in h for h in hooks)
    assert not any(a.startswith("--setup-hook") for a in image_build.mmdebstrap_argv(Path("/o"), [], None))


def test_the_customize_hooks_leave_none_of_the_hosts_apt_settings(tmp_path: Path) -> None:
    """The hooks after the first (which needs a real chroot) run on a rootfs shaped as mmdebstrap
    leaves it: the host's source pasted in, 99mmdebstrap and the copied-in option file."""
    root = tmp_path / "root"
    for rel, text in (("etc/apt/sources.list.d/0000debian.sources", "URIs: http://mirror.host/debian\n"),
                      ("etc/apt/sources.list", "deb http://mirror.host/debian bookworm main\n"),
                      ("etc/apt/apt.conf.d/99mmdebstrap", 'Acquire::Check-Date "false";\n'),
                      (f"etc/apt/apt.conf.d/{image_build.HOST_APT_CONF}", 'Acquire::http::Proxy "http://p";\n'),
                      ("etc/apt/apt.conf.d/70debconf", "// kept\n"), ("var/log/apt/history.log", "")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for hook in image_build.BASE_HOOKS[1:]:
        subprocess.run(["sh", "-c", hook, "hook", str(root)], check=True)
    etc_apt = root / "etc" / "apt"
    assert sorted(p.name for p in (etc_apt / "apt.conf.d").iterdir()) == ["70debconf"]
    assert [p.name for p in (etc_apt / "sources.list.d").iterdir()] == ["debian.sources"]
    assert not (etc_apt / "sources.list").exists()
    assert (etc_apt / "sources.list.d" / "debian.sources").read_text() == image_build.IMAGE_SOURCES
    out = tmp_path / "rootfs.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(root, arcname=".")
    assert image_build.host_apt_leftovers(out) == []


def _tar(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


def test_a_rootfs_with_the_hosts_apt_settings_is_flagged(tmp_path: Path) -> None:
    clean = {"./etc/apt/sources.list.d/debian.sources": image_build.IMAGE_SOURCES, "./etc/apt/apt.conf.d/70x": ""}
    assert image_build.host_apt_leftovers(_tar(tmp_path / "a.tar", clean)) == []
    for extra, expect in ((
            {"./etc/apt/apt.conf.d/99mmdebstrap": "x"}, ["etc/apt/apt.conf.d/99mmdebstrap"]),
            ({f"./etc/apt/apt.conf.d/{image_build.HOST_APT_CONF}": "x"},
             [f"etc/apt/apt.conf.d/{image_build.HOST_APT_CONF}"]),
            ({"./etc/apt/sources.list.d/0000debian.sources": "x"}, ["etc/apt/sources.list.d/0000debian.sources"]),
            # The host's file may bear the image's name: its content gives it away.
            ({"./etc/apt/sources.list.d/debian.sources": "URIs: http://mirror.host/\n"},
             ["etc/apt/sources.list.d/debian.sources"])):
        assert image_build.host_apt_leftovers(_tar(tmp_path / "b.tar", {**clean, **extra})) == expect


def test_the_runroot_is_per_cache_and_on_tmpfs(tmp_path: Path) -> None:
    a, b = image_build.runroot_for(tmp_path / "a"), image_build.runroot_for(tmp_path / "b")
    assert a != b and a.parent == Path("/run") and a == image_build.runroot_for(tmp_path / "a")
    assert image_build.RUNROOT == image_build.runroot_for(image_build.BUILD_CACHE)


def test_no_proxy_names_the_registry_and_keeps_what_was_there() -> None:
    env = image_build.no_proxy_env({"NO_PROXY": "corp.example", "HTTP_PROXY": "http://proxy:3128"})
    assert env["NO_PROXY"].split(",") == ["corp.example", registry.HOST, layout.NODE_IP]
    assert env["no_proxy"].split(",") == [registry.HOST, layout.NODE_IP]
    assert env["HTTP_PROXY"] == "http://proxy:3128"
    assert image_build.no_proxy_env(env) == env


def test_the_registry_client_goes_around_a_proxy() -> None:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # A fresh interpreter: urllib reads the proxy settings when the opener is built, at import.
        # Port 9 (discard) answers nothing: through the proxy the request would fail.
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy")}
        env["http_proxy"] = "http://127.0.0.1:9"
        code = ("import sys; from testbed import registry\n"
                "with registry.urlopen(sys.argv[1], timeout=10) as resp: print(resp.status)")
        res = subprocess.run([sys.executable, "-c", code, f"http://127.0.0.1:{server.server_port}/v2/"],
                             capture_output=True, text=True, env=env, cwd=layout.REPO, timeout=60)
        assert res.stdout.strip() == "200", res.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()


def test_compressed_size_sums_config_and_layers() -> None:
    manifest = {"schemaVersion": 2, "config": {"size": 7, "digest": "sha256:c"},
                "layers": [{"size": 100, "digest": "sha256:a"}, {"size": 20, "digest": "sha256:b"}]}
    assert image_build.compressed_size(manifest) == 127
    assert image_build.compressed_size({"schemaVersion": 2}) == 0


def test_the_operator_ref_is_the_registry_and_the_projects_version() -> None:
    version = tomllib.loads((layout.REPO / "pyproject.toml").read_text())["project"]["version"]
    assert image_build.project_version(layout.REPO / "pyproject.toml") == version
    assert image_build.operator_ref() == f"{layout.NODE_IP}:{layout.REGISTRY_PORT}/debugcap/operator:{version}"


def test_context_is_the_dockerfiles_inputs_without_byte_code(tmp_path: Path) -> None:
    for rel in ("Dockerfile", "pyproject.toml", "README.md", "debugcap/__init__.py", "debugcap/x/y.py",
                "debugcap/__pycache__/z.pyc", "tests/t.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    files = [p.as_posix() for p in image_build.context_files(tmp_path)]
    assert files == ["Dockerfile", "pyproject.toml", "README.md", "debugcap/__init__.py", "debugcap/x/y.py"]


def test_deploy_values_name_the_image_and_the_secret_never_the_keys() -> None:
    values = image_build.chart_values("10.250.0.1:15000/debugcap/operator:0.1.0", api_host="10.250.0.1",
                                      api_port=6443)
    flat = " ".join(values)
    assert "image.repository=10.250.0.1:15000/debugcap/operator" in flat and "image.tag=0.1.0" in flat
    assert f"s3.existingSecret={image_build.DEPLOY_SECRET}" in flat and "image.pullPolicy=Always" in flat
    assert layout.S3_SECRET_KEY not in flat and layout.S3_ACCESS_KEY not in flat
    assert not any("image-digest" in v for v in values)
    secret = json.loads(image_build.s3_secret_manifest("debugcap-system"))
    assert secret["metadata"] == {"name": image_build.DEPLOY_SECRET, "namespace": "debugcap-system"}
    assert secret["stringData"] == {"accessKey": layout.S3_ACCESS_KEY, "secretKey": layout.S3_SECRET_KEY}


def test_registry_config_listens_on_the_node_and_containerd_pulls_plain_http() -> None:
    config = yaml.safe_load(registry.config())
    assert config["http"]["addr"] == f"{layout.NODE_IP}:{layout.REGISTRY_PORT}"
    assert config["storage"]["filesystem"]["rootdirectory"] == str(registry.storage())
    assert "auth" not in config
    hosts = tomllib.loads(registry.hosts_toml())
    url = f"http://{layout.NODE_IP}:{layout.REGISTRY_PORT}"
    assert hosts["server"] == url and hosts["host"][url]["capabilities"] == ["pull", "resolve"]


def test_without_buildah_make_image_stops_and_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_build.shutil, "which", lambda tool: None)
    with pytest.raises(image_build.BuildError, match=r"needs buildah.*apt-get install buildah"):
        image_build.build_operator()



def test_a_new_push_changes_the_deploy_values_so_the_pods_roll() -> None:
    ref = "10.250.0.1:15000/debugcap/operator:0.1.0"
    first = image_build.chart_values(ref, api_host="h", api_port=1, digest="sha256:" + "a" * 64)
    again = image_build.chart_values(ref, api_host="h", api_port=1, digest="sha256:" + "a" * 64)
    second = image_build.chart_values(ref, api_host="h", api_port=1, digest="sha256:" + "b" * 64)
    assert first == again and first != second
    assert "podAnnotations.debugcap\\.io/image-digest=sha256:" + "b" * 64 in second


def test_deploy_hands_helm_the_registrys_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> str:
        calls.append(argv)
        return ""

    monkeypatch.setattr(registry, "manifest_digest", lambda repository, tag: "sha256:" + "c" * 64)
    monkeypatch.setattr("testbed.builds.binary", lambda *names: Path("/bin") / names[-1])
    monkeypatch.setattr(image_build, "_run", run)
    image_build.deploy("10.250.0.1:15000/debugcap/operator:0.1.0")
    [helm] = [argv for argv in calls if argv[0] == "/bin/helm"]
    assert "podAnnotations.debugcap\\.io/image-digest=sha256:" + "c" * 64 in helm
