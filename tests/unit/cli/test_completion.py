"""Completion: what kubectl_complete-debugcap answers kubectl (cobra's format), the names it reads from
the cluster with the flags typed so far, and the scripts of `completion bash|zsh|fish`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin import completing
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.options import KubeFlags


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, KubeFlags]]:
    """A cluster with a few of everything; records what was listed, with which flags."""
    asked: list[tuple[str, KubeFlags]] = []
    cluster = {"debugcaptures": ["api-heap-1", "api-heap-2", "web-1"], "debugschedules": ["nightly"],
               "debugtriggers": ["pre-oom"], "pods": ["api-1", "web-1"], "deployments": ["api"],
               "namespaces": ["default", "shop"], "debugcapturetemplates": ["team-net"]}

    def listing(flags: KubeFlags, plural: str, namespace: str | None) -> list[str]:
        asked.append((plural, flags))
        return cluster.get(plural, [])

    monkeypatch.setattr(completing, "list_names", listing)
    return asked


def values(*words: str) -> list[str]:
    return [line.split("\t")[0] for line in completing.cobra_lines(cli, list(words))]


def test_the_first_word_completes_to_every_verb_with_its_summary() -> None:
    lines = completing.cobra_lines(cli, [""])
    assert lines[-1] == ":4"  # no file completion
    verbs = [line.split("\t")[0] for line in lines[:-1]]
    assert {"create", "get", "schedule", "trigger", "completion", "templates", "verify"} <= set(verbs)
    assert all("\t" in line for line in lines[:-1])
    assert values("sch") == ["schedule", ":4"]
    assert values("schedule", "") == ["create", "describe", "get", "resume", "run-now", "suspend", ":4"]


def test_capture_schedule_and_trigger_names_complete_from_the_cluster(names: list[tuple[str, KubeFlags]]) -> None:
    assert values("get", "api") == ["api-heap-1", "api-heap-2", ":4"]
    assert values("schedule", "run-now", "") == ["nightly", ":4"]
    assert values("trigger", "describe", "p") == ["pre-oom", ":4"]
    assert values("schedule", "create", "") == [":4"]  # a new name: nothing to offer
    assert values("templates", "go-l") == ["go-leak", ":4"]


def test_names_are_read_with_the_flags_typed_so_far(names: list[tuple[str, KubeFlags]]) -> None:
    values("get", "-n", "shop", "--context", "prod", "--as", "jane", "--as-group", "devs", "")
    plural, flags = names[-1]
    assert plural == "debugcaptures"
    assert (flags.namespace, flags.context, flags.impersonate, flags.impersonate_groups) == \
        ("shop", "prod", "jane", ("devs",))


def test_flag_values_complete_namespaces_templates_targets_and_choices(names: list[tuple[str, KubeFlags]]) -> None:
    assert values("get", "-n", "s") == ["shop", ":4"]
    assert "team-net" in values("create", "pod/api-1", "-t", "") and "debug-full" in values("create", "-t", "")
    assert values("create", "pod/") == ["pod/api-1", "pod/web-1", ":4"]
    assert values("create", "deployment/") == ["deployment/api", ":4"]
    # Only kinds left: no space after "deployment/", the name comes next.
    assert values("create", "dep") == ["deployment/", ":6"]
    assert values("get", "-o", "") == ["table", "wide", "name", "json", "yaml", ":4"]
    assert "--request-timeout" in values("get", "--re")


def test_a_file_argument_leaves_completion_to_the_shell() -> None:
    assert values("verify", "") == [":0"]


def test_the_executable_prints_no_error_when_the_cluster_cannot_be_read(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing")}
    code = "from debugcap.kubectl_plugin.completing import main; main()"
    for words in (["get", ""], ["schedule", "describe", ""], ["create", "pod/"], ["--bogus", "x", ""]):
        res = subprocess.run([sys.executable, "-c", code, *words], env=env, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0 and res.stderr == "", (words, res.stderr)
        assert res.stdout.splitlines()[-1].startswith(":"), words


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"),
                                               ("fish", "complete --no-files --command kubectl-debugcap")])
def test_completion_prints_a_script_for_the_kubectl_debugcap_command(shell: str, marker: str) -> None:
    res = CliRunner().invoke(cli, ["completion", shell])
    assert res.exit_code == 0, res.output
    assert completing.COMPLETE_VAR in res.stdout and marker in res.stdout


def test_the_scripts_callback_completes_through_the_same_names(names: list[tuple[str, KubeFlags]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bash script runs on TAB: the executable with the completion variable set."""
    monkeypatch.setenv(completing.COMPLETE_VAR, "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "kubectl-debugcap schedule describe ")
    monkeypatch.setenv("COMP_CWORD", "3")
    res: Any = CliRunner().invoke(cli, [], prog_name="kubectl-debugcap", complete_var=completing.COMPLETE_VAR)
    assert res.stdout.splitlines() == ["plain,nightly"]


def test_the_plugin_linked_as_kubectl_complete_answers_completion(tmp_path: Path) -> None:
    """One executable is all krew installs: a link named kubectl_complete-debugcap to it completes."""
    link = tmp_path / "kubectl_complete-debugcap"
    code = "import sys; from debugcap.kubectl_plugin.cli import main; sys.argv[0] = sys.argv.pop(1); main()"
    res = subprocess.run([sys.executable, "-c", code, str(link), "sched"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.splitlines()[0].startswith("schedule\t") and res.stdout.endswith(":4\n")


def test_report_top_and_goroutines_complete_capture_names_and_files(names: list[tuple[str, KubeFlags]]) -> None:
    for verb in ("report", "top", "goroutines"):
        # :0: kubectl's shell offers these names, and files when none matches.
        assert values(verb, "api") == ["api-heap-1", "api-heap-2", ":0"], verb
    assert names[-1][0] == "debugcaptures"
    # click's own bash script (completion bash) resets its answer at a "file" item: it must come first.
    env = {"COMP_WORDS": "kubectl-debugcap report api", "COMP_CWORD": "2",
           "_KUBECTL_DEBUGCAP_COMPLETE": "bash_complete"}
    res = CliRunner().invoke(cli, [], env=env, prog_name="kubectl-debugcap")
    assert res.output.splitlines() == ["file,api", "plain,api-heap-1", "plain,api-heap-2"], res.output


def test_a_silent_api_server_is_asked_once_per_tab(tmp_path: Path) -> None:
    """urllib3 retries a dropped connection three times by default: four waits for one TAB."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[int] = []

    def drop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()  # no answer at all

    threading.Thread(target=drop, daemon=True).start()
    port = server.getsockname()[1]
    config = tmp_path / "config"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: shop}}}}]
current-context: x
""")
    try:
        assert completing.list_names(KubeFlags(kubeconfig=str(config)), "debugcaptures", None) == []
    finally:
        server.close()
    assert len(accepted) == 1
