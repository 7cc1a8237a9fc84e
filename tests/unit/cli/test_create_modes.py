"""`kubectl debugcap create` has two modes; a flag of the other mode is a usage error naming both flags.

Every case runs with a kubeconfig that does not exist: reading it would fail with exit 1 and
"cannot load Kubernetes credentials", so exit 2 proves the flags were checked first and nothing
was read or contacted.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands.captures import CreateOptions
from debugcap.kubectl_plugin.options import KubeFlags


def create(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["create", *args], env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})


def assert_usage_error(res: Result, *names: str) -> None:
    assert res.exit_code == 2, res.output
    for name in names:
        assert name in res.stderr, res.stderr
    assert "credentials" not in res.stderr and "Traceback" not in res.output


@pytest.mark.parametrize(("args", "flag"), [
    (["--output-dir", "."], "--output-dir"),
    (["--upload"], "--upload"),
    (["--no-redact"], "--no-redact"),
], ids=["output-dir", "upload", "no-redact"])
def test_a_local_only_flag_without_local_is_a_usage_error(tmp_path: Path, args: list[str], flag: str) -> None:
    res = create(tmp_path, "pod/api-1", *args)
    assert_usage_error(res, flag, "only applies with --local")


@pytest.mark.parametrize(("args", "flag"), [
    (["-o", "yaml"], "-o/--output"),
    (["-o", "json"], "-o/--output"),
    (["--dry-run", "client"], "--dry-run"),
    (["--ttl", "1h"], "--ttl"),
], ids=["output-yaml", "output-json", "dry-run", "ttl"])
def test_an_operator_only_flag_with_local_is_a_usage_error(tmp_path: Path, args: list[str], flag: str) -> None:
    res = create(tmp_path, "pod/api-1", "--local", *args)
    assert_usage_error(res, flag, "only applies without --local")


def test_a_selector_with_local_is_a_usage_error(tmp_path: Path) -> None:
    res = create(tmp_path, "-l", "app=api", "--local")
    assert_usage_error(res, "-l/--selector", "--local", "selectors")


def test_the_issue_example_names_every_misplaced_flag(tmp_path: Path) -> None:
    res = create(tmp_path, "pod/x", "--upload", "--no-redact", "--output-dir", "/nonexistent", "-o", "yaml")
    assert_usage_error(res, "--output-dir", "--upload", "--no-redact", "only apply with --local")
    assert res.stdout == ""  # nothing printed as if it had worked


def test_an_output_dir_under_a_file_is_a_bad_parameter(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    res = create(tmp_path, "pod/api-1", "--local", "--output-dir", str(tmp_path / "file" / "out"))
    assert_usage_error(res, "--output-dir", "is not a directory")


def test_an_output_dir_that_cannot_be_written_is_a_bad_parameter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # As root (CI) the mode alone would not stop a write; the kernel's answer is what counts.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    res = create(tmp_path, "pod/api-1", "--local", "--output-dir", str(locked / "out"))
    assert_usage_error(res, "--output-dir", "not writable")


@pytest.mark.parametrize(("args", "flag"), [
    (["--timeout", "1.5"], "--timeout"),
    (["--deadline", "0"], "--deadline"),
], ids=["timeout-not-whole", "deadline-below-1"])
def test_limits_are_whole_seconds_in_both_modes(tmp_path: Path, args: list[str], flag: str) -> None:
    assert_usage_error(create(tmp_path, "pod/api-1", *args), flag)
    assert_usage_error(create(tmp_path, "pod/api-1", "--local", *args), flag)


def test_a_capture_name_that_kubernetes_refuses_is_a_bad_parameter(tmp_path: Path) -> None:
    assert_usage_error(create(tmp_path, "pod/api-1", "--name", "Not_Valid"), "--name")


def test_valid_flags_of_each_mode_get_as_far_as_the_kubeconfig(tmp_path: Path) -> None:
    # The control for every case above: the same kubeconfig, and flags that fit their mode.
    (tmp_path / "out").mkdir()
    for args in (["pod/api-1", "--local", "--output-dir", str(tmp_path / "out"), "--upload", "--no-redact",
                  "--timeout", "5", "--deadline", "60", "-c", "app", "--name", "x"],
                 ["pod/api-1", "--ttl", "1h", "--timeout", "5", "--deadline", "60", "-c", "app", "--name", "x"]):
        res = create(tmp_path, *args)
        assert res.exit_code == 1, res.output
        assert "cannot load Kubernetes credentials" in res.stderr and "missing-kubeconfig" in res.stderr


# validate() on its own: the checks belong to the options object, not to click's parsing.

def test_validate_rejects_local_only_flags_without_local() -> None:
    with pytest.raises(click.UsageError, match="--upload only applies with --local"):
        CreateOptions(target="pod/x", upload=True).validate()
    with pytest.raises(click.UsageError, match="--output-dir and --no-redact only apply with --local"):
        CreateOptions(target="pod/x", output_dir=Path("."), redact=False).validate()


def test_validate_rejects_operator_only_flags_with_local() -> None:
    with pytest.raises(click.UsageError, match="-o/--output only applies without --local"):
        CreateOptions(target="pod/x", local=True, output="yaml").validate()
    with pytest.raises(click.UsageError, match="--ttl only applies without --local"):
        CreateOptions(target="pod/x", local=True, ttl="1h").validate()


def test_validate_reads_no_kubeconfig(tmp_path: Path) -> None:
    flags = KubeFlags(kubeconfig=str(tmp_path / "missing"))
    CreateOptions(target="pod/x", template="disk-usage", local=True, output_dir=tmp_path, kube=flags).validate()
    CreateOptions(target="deploy/x", ttl="1h", kube=flags).validate()


def test_complete_takes_the_namespace_from_the_flag_when_printing(tmp_path: Path) -> None:
    opts = CreateOptions(target="pod/x", output="yaml", dry_run="client",
                         kube=KubeFlags(namespace="prod", kubeconfig=str(tmp_path / "missing")))
    opts.validate()
    opts.complete()
    assert opts.namespace == "prod"


def test_access_flags_become_spec_parameters_and_bad_values_are_usage_errors(tmp_path: Path) -> None:
    import yaml

    res = create(tmp_path, "pod/api-1", "-n", "shop", "--dry-run=client", "-o", "yaml", "--command-mode", "ephemeral",
                 "--transport", "proxy", "--debug-image", "mirror.local/busybox:1.37")
    assert res.exit_code == 0, res.output
    params = yaml.safe_load(res.stdout)["spec"]["parameters"]
    assert params == {"commandMode": "ephemeral", "transport": "proxy", "debugImage": "mirror.local/busybox:1.37"}
    assert_usage_error(create(tmp_path, "pod/api-1", "--command-mode", "always"), "--command-mode")
    assert_usage_error(create(tmp_path, "pod/api-1", "--transport", "ssh"), "--transport")
