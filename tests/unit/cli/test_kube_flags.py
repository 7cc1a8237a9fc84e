"""kubectl's cluster flags on every verb: --request-timeout as kubectl reads it, --as/--as-group
reaching the client as Impersonate-* headers (one line per group), and the usage errors."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from debugcap.kube.client import Kube, KubeTarget
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.options import KubeFlags, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30.0), ("0", 0.0), ("30s", 30.0), ("1m", 60.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5),
    ("2m3s", 123.0), ("+5s", 5.0),
])
def test_request_timeout_reads_kubectls_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "-1s", "1x", "m", "1 m", "1d"])
def test_request_timeout_refuses_what_kubectl_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def _verbs(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _verbs(command, f"{prefix}{name} ")
        else:
            yield prefix + name, command


def test_every_verb_that_reads_the_cluster_has_all_of_kubectls_flags() -> None:
    wanted = {"--namespace", "--context", "--kubeconfig", "--request-timeout", "--as", "--as-group"}
    for name, command in _verbs(cli):
        opts = {o for p in command.params for o in p.opts}
        if "--kubeconfig" in opts:
            assert wanted <= opts, f"{name} lacks {wanted - opts}"
    listing = {name for name, command in _verbs(cli) if name.endswith("get")}
    assert {"get", "schedule get", "trigger get"} <= listing
    for name, command in _verbs(cli):
        if name in listing:
            assert "--all-namespaces" in {o for p in command.params for o in p.opts}, name


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[KubeTarget]:
    """The KubeTarget each command loads (and a failure right after, so nothing is contacted)."""
    seen: list[KubeTarget] = []

    def load(cls: Any, target: KubeTarget | None = None) -> Kube:
        assert target is not None
        seen.append(target)
        raise click.ClickException("stop here")

    monkeypatch.setattr(Kube, "load", classmethod(load))
    return seen


@pytest.mark.parametrize("verb", [["get"], ["schedule", "get"], ["trigger", "describe", "t"],
                                  ["schedule", "run-now", "s"]], ids=" ".join)
def test_as_as_group_and_request_timeout_reach_the_client(loaded: list[KubeTarget], verb: list[str]) -> None:
    res = CliRunner().invoke(cli, [*verb, "--as", "jane", "--as-group", "devs", "--as-group", "ops",
                                   "--request-timeout", "1m", "--context", "c"])
    assert res.exit_code == 1 and "stop here" in res.stderr, res.output
    [target] = loaded
    assert (target.impersonate_user, target.impersonate_groups) == ("jane", ("devs", "ops"))
    assert (target.request_timeout, target.context) == (60.0, "c")


def test_without_as_nobody_is_impersonated(loaded: list[KubeTarget]) -> None:
    CliRunner().invoke(cli, ["get", "--request-timeout", "0"])
    [target] = loaded
    assert (target.impersonate_user, target.impersonate_groups, target.request_timeout) == (None, (), 0.0)


def test_as_group_without_as_and_a_bad_timeout_are_usage_errors(loaded: list[KubeTarget]) -> None:
    res = CliRunner().invoke(cli, ["trigger", "get", "--as-group", "devs"])
    assert res.exit_code == 2 and "--as-group needs --as" in res.stderr
    res = CliRunner().invoke(cli, ["schedule", "get", "--request-timeout", "soon"])
    assert res.exit_code == 2 and '"soon" is not a timeout' in res.stderr
    assert loaded == []


def test_kube_flags_built_outside_a_command_impersonate_nobody() -> None:
    assert KubeFlags().impersonate is None and KubeFlags().impersonate_groups == ()


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append({k: self.headers.get_all(k) or [] for k in ("Impersonate-User", "Impersonate-Group")})
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_impersonation_goes_out_as_one_header_line_per_group(tmp_path: Any) -> None:
    """The API server reads each Impersonate-Group line as one group: "a, b" would be one group."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{server.server_port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    try:
        kube = Kube.load(KubeTarget(kubeconfig=str(config), impersonate_user="jane",
                                    impersonate_groups=("devs", "ops")))
        kube.get_json("/api/v1/namespaces")
        kube.close()
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.seen[-1] == {"Impersonate-User": ["jane"], "Impersonate-Group": ["devs", "ops"]}
