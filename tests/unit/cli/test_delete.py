"""`kubectl debugcap delete`: which captures, asking first, --yes, and waiting for the bundles to go."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.commands import delete as delete_cmd
from debugcap.kubectl_plugin.options import KubeFlags

from .capture_fakes import CAPTURES, RoutedKube, capture, forbidden, not_found, use

WITH_BUNDLE = capture(pods=[{"name": "api-1", "phase": "Completed", "bundle": {"key": "k/a.tar.gz"}},
                            {"name": "api-2", "phase": "Failed"}])


def gone_after_delete(obj: dict[str, object]) -> object:
    """The object until it is deleted, then a 404 (the finalizer done)."""
    return lambda n: obj if n == 1 else not_found("cap-1")


@pytest.mark.parametrize(("args", "message"), [
    ([], "name the captures to delete: NAME..., --all or -l/--selector"),
    (["cap-1", "--all"], "NAME and --all: give only one"),
    (["--all", "-l", "app=api"], "--all and -l/--selector: give only one"),
    (["cap-1", "--timeout", "soon"], '"soon" is not a duration'),
    (["Not_A_Name", "--yes"], "is not a DebugCapture name"),
])
def test_bad_combinations_are_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["delete", "--yes", "--kubeconfig", "/nonexistent", *args])
    assert res.exit_code == 2 and message in res.stderr, res.output


def test_without_a_terminal_yes_is_required_before_anything_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": WITH_BUNDLE}))
    res = CliRunner().invoke(cli, ["delete", "cap-1"])  # CliRunner's stdin is no terminal
    assert res.exit_code == 2 and "add --yes to delete without asking" in res.stderr
    assert kube.requests == []


def test_the_question_lists_what_goes_and_no_deletes_nothing() -> None:
    kube = RoutedKube({f"{CAPTURES}/cap-1": WITH_BUNDLE})
    asked: list[str] = []
    opts = delete_cmd.DeleteOptions(names=("cap-1",), interactive=True, kube=KubeFlags(namespace="team"),
                                    confirm=lambda q: asked.append(q) is not None)
    opts.validate()
    opts._client, opts.namespace = kube, "team"  # type: ignore[assignment]
    with pytest.raises(Exception, match="nothing deleted"):
        opts.run()
    assert asked == ["Delete them?"] and kube.deleted == []
    assert delete_cmd.plan_lines([WITH_BUNDLE], "team") == [
        '1 debugcapture(s) in namespace "team" and their 1 stored bundle(s) will be deleted:',
        "  cap-1  (Completed, 1 bundle(s))"]


def test_yes_deletes_and_waits_until_the_operator_let_the_object_go(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": gone_after_delete(WITH_BUNDLE)}))
    res = CliRunner().invoke(cli, ["delete", "cap-1", "--yes"])
    assert res.exit_code == 0, res.output
    assert res.stdout == "debugcapture.debugcap.io/cap-1 deleted\n"
    assert [r[0] for r in kube.requests] == ["GET", "DELETE", "GET"] and kube.closed


def test_a_selector_deletes_what_it_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = {"items": [capture("a"), capture("b")]}
    kube = use(monkeypatch, RoutedKube({CAPTURES: listing, f"{CAPTURES}/a": {}, f"{CAPTURES}/b": {}}))
    res = CliRunner().invoke(cli, ["delete", "-l", "debugcap.io/schedule=nightly", "--yes", "--no-wait"])
    assert res.exit_code == 0, res.output
    assert kube.requests[0] == ("GET", CAPTURES, [("labelSelector", "debugcap.io/schedule=nightly")])
    assert kube.deleted == [f"{CAPTURES}/a", f"{CAPTURES}/b"]


def test_an_unknown_name_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": WITH_BUNDLE}))
    res = CliRunner().invoke(cli, ["delete", "cap-1", "nope", "--yes"])
    assert res.exit_code == 1 and kube.deleted == []
    assert res.stderr == ('Error: debugcapture "nope" not found in namespace "team"; list them with: '
                          "kubectl debugcap get -n team\n")


def test_no_delete_rights_say_what_to_ask_for(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = RoutedKube({f"{CAPTURES}/cap-1": WITH_BUNDLE})
    use(monkeypatch, kube)
    monkeypatch.setattr(kube, "delete", lambda path, missing_ok=False: (_ for _ in ()).throw(forbidden("x")))
    res = CliRunner().invoke(cli, ["delete", "cap-1", "--yes"])
    assert res.exit_code == 1
    assert 'not allowed to delete debugcapture "cap-1" in namespace "team"; ask for delete rights' in res.stderr


def test_a_refusal_midway_still_tells_what_was_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = RoutedKube({f"{CAPTURES}/a": capture("a"), f"{CAPTURES}/b": capture("b")})
    use(monkeypatch, kube)
    real_delete = kube.delete

    def refuse_b(path: str, missing_ok: bool = False) -> None:
        if path.endswith("/b"):
            raise forbidden("x")
        real_delete(path, missing_ok=missing_ok)

    monkeypatch.setattr(kube, "delete", refuse_b)
    res = CliRunner().invoke(cli, ["delete", "a", "b", "--yes", "--no-wait"])
    assert res.exit_code == 1
    assert res.stdout == "debugcapture.debugcap.io/a deleted\n"  # a and its bundles are gone: said
    assert 'not allowed to delete debugcapture "b" in namespace "team"' in res.stderr


def test_an_object_the_operator_does_not_let_go_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, RoutedKube({f"{CAPTURES}/cap-1": WITH_BUNDLE}))
    res = CliRunner().invoke(cli, ["delete", "cap-1", "--yes", "--timeout", "0s"])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: cap-1 still there after 0s: the operator deletes the bundles before the "
                                 "object goes; is it running?")
