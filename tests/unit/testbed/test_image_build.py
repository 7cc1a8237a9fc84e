"""testbed/image_build.py and testbed/registry.py: the pure parts of ``make image`` / ``make deploy``
(the build itself runs in tests/e2e/test_chart.py).

Cases:
* pip.conf for the build keeps only index settings, the environment's over the files', and points
  ``cert`` at the mounted CA bundle; a host with no settings gives an empty ``[global]``
* the content key ignores order and changes with any byte of any input or its name
* the host's apt sources and Acquire:: options are found; disabled and empty files are not
* mmdebstrap's command line carries the host's sources and options, the packages and the hooks
* the pushed size sums the config and the layers; the version comes from pyproject.toml
* the build context is the Dockerfile's inputs, without byte-code caches
* the deploy values name the registry image and a Secret, never the keys; the Secret carries them
* the registry listens on the node's address; containerd's hosts.toml says plain HTTP, pull only
* without buildah the build stops with the package to install, no fallback
"""

from __future__ import annotations

import json
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
    conf = image_build.pip_conf(HOST_CONFIG, ca_path="/mnt/ca.crt")
    assert conf.splitlines() == ["[global]", "cert = /mnt/ca.crt", "index-url = https://mirror.example/simple",
                                 "timeout = 180", "trusted-host = mirror.example"]
    assert "find-links" not in conf and "disable-pip-version-check" not in conf


def test_pip_conf_of_a_host_without_settings_is_empty() -> None:
    assert image_build.pip_conf("") == "[global]\n"
    assert image_build.pip_conf("not a setting\n") == "[global]\n"


def test_content_key_is_order_free_and_sees_every_byte_and_name() -> None:
    base = image_build.content_key([("a", b"1"), ("b", b"2")])
    assert base == image_build.content_key([("b", b"2"), ("a", b"1")])
    assert len(base) == 16
    assert base != image_build.content_key([("a", b"1"), ("b", b"3")])
    assert base != image_build.content_key([("a", b"1"), ("c", b"2")])
    # A name and content boundary cannot be moved without changing the key.
    assert image_build.content_key([("ab", b"")]) != image_build.content_key([("a", b"b")])


def test_apt_inputs_are_the_enabled_sources_and_the_acquire_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "apt.conf.d").mkdir()
    (tmp_path / "sources.list").write_text("\n")  # empty: Debian's deb822 hosts have one
    (tmp_path / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\n")
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb http://mirror.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "other.list.disabled-by-admin").write_text("deb http://x/ y main\n")
    (tmp_path / "apt.conf.d" / "99proxy").write_text('Acquire::http::Proxy "http://proxy:3128";\n')
    (tmp_path / "apt.conf.d" / "01autoremove").write_text('APT::NeverAutoRemove { "^linux-image.*"; };\n')
    sources, options = image_build.apt_inputs(tmp_path)
    assert [p.name for p in sources] == ["debian.sources", "extra.list"]
    assert [p.name for p in options] == ["99proxy"]


def test_mmdebstrap_argv_carries_the_hosts_settings_packages_and_hooks() -> None:
    argv = image_build.mmdebstrap_argv(Path("/out/base.tar"), [Path("/etc/apt/a.sources")],
                                       [Path("/etc/apt/apt.conf.d/99x")])
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv and "--format=tar" in argv
    assert argv[-3:] == ["bookworm", "/out/base.tar", "/etc/apt/a.sources"]
    assert "--aptopt=/etc/apt/apt.conf.d/99x" in argv
    assert "--include=python3,python3-venv,ca-certificates" in argv
    hooks = [a.partition("=")[2] for a in argv if a.startswith("--customize-hook=")]
    assert hooks[0] == 'chroot "$1" python3 -m venv /usr/local'
    assert any("/etc/pip.conf" in h for h in hooks)


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

