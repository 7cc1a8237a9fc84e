"""Bundle keys are unique by construction for every writer.

Cases: two CLI uploads of one pod in one second (the same bundle name, the same cluster name)
get keys of their own and both bundles are kept; a CLI upload's directory (``cli-<32 hex>``) is
never a capture's, so :func:`delivering.key_refusal` refuses it to every capture while the
capture's own key and the older layout stay accepted; ``layout.object_key`` places the writer's
directory before the bundle and refuses an unsafe one; the operator's key and a CLI key of the
same pod and second differ.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from debugcap import delivering
from debugcap.bundle import layout
from debugcap.errors import BundleError
from debugcap.storage import local, spool

WHEN = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
NAME = layout.bundle_name("team", "api-1", WHEN)
UID = "0b9c6f1e-7d1a-4c55-9a39-2f8e2b7c1d10"


class _Bundle:
    """What delivering.deliver reads of a WrittenBundle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()


def _store(tmp_path: Path, cluster: str = "default") -> delivering.Store:
    return delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", cluster,
                            spool.Spool(tmp_path / "spool"))


def test_two_cli_uploads_of_one_pod_in_one_second_keep_both_bundles(tmp_path: Path) -> None:
    store = _store(tmp_path)
    keys = []
    for run, body in enumerate((b"first run", b"second run")):
        path = tmp_path / f"run{run}" / NAME
        path.parent.mkdir()
        path.write_bytes(body)
        delivery, _ = delivering.deliver(store, _Bundle(path), namespace="team", pod="api-1",  # type: ignore[arg-type]
                                         when=WHEN, capture=delivering.Upload.new())
        assert delivery.stored, delivery
        keys.append(delivery.key)
    assert keys[0] != keys[1]
    for key, body in zip(keys, (b"first run", b"second run"), strict=True):
        assert re.fullmatch(rf"debugcap/default/team/api-1/2026/12/01/cli-[0-9a-f]{{32}}/{NAME}", key), key
        assert (tmp_path / "store" / key).read_bytes() == body
    assert list(store.backend.list(prefix="debugcap/default/team/api-1/")) == sorted(keys)


def test_a_cli_key_belongs_to_no_capture_and_differs_from_the_operators(tmp_path: Path) -> None:
    store = _store(tmp_path, cluster="testbed")
    capture = delivering.Capture("cli", UID)  # even a capture named like the CLI's directory
    owner = delivering.KeyOwner("debugcap", "testbed", "team", capture)
    own = delivering.object_key(store, "team", "api-1", WHEN, NAME, capture)
    cli = delivering.object_key(store, "team", "api-1", WHEN, NAME, delivering.Upload.new())
    legacy = delivering.object_key(store, "team", "api-1", WHEN, NAME)
    assert own != cli and "_" not in cli.split("/")[-2]
    assert delivering.key_refusal(own, owner, "api-1") is None
    assert delivering.key_refusal(legacy, owner, "api-1") is None  # old keys stay readable
    refusal = delivering.key_refusal(cli, owner, "api-1")
    assert refusal is not None and "a CLI upload" in refusal


def test_layout_places_the_writers_directory_before_the_bundle() -> None:
    key = layout.object_key("debugcap", "eu-1", "team", "api-1", WHEN, NAME, "cli-" + "a" * 32)
    assert key == f"debugcap/eu-1/team/api-1/2026/12/01/cli-{'a' * 32}/{NAME}"
    for bad in ("..", "a/b", ""):
        with pytest.raises(BundleError, match="cannot be used in an object key"):
            layout.object_key("debugcap", "eu-1", "team", "api-1", WHEN, NAME, bad)
