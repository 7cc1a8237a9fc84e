"""Where a pod's bundle goes is in its status from the start, so no stored bundle goes unlisted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from debugcap.operator import handlers
from debugcap.operator.capturing import PodResult

KEY = "debugcap/testbed/shop/api-1/2026/12/01/shop_api-1_20261201T101500Z.tar.gz"


def test_a_running_pod_lists_its_upload_key_and_a_stored_one_its_bundle_instead() -> None:
    running = PodResult(name="api-1", phase="Running", upload_key=KEY).as_status()
    assert running == {"name": "api-1", "phase": "Running", "uploadKey": KEY}
    stored = PodResult(name="api-1", phase="Completed", key=KEY, uri=f"s3://b/{KEY}", sha256="a" * 64,
                       size_bytes=10, upload_key=KEY).as_status()
    assert "uploadKey" not in stored and stored["bundle"]["key"] == KEY


def test_expiry_deletes_stored_bundles_and_ones_that_may_still_arrive_from_the_spool() -> None:
    status = {"pods": [{"name": "a", "phase": "Completed", "bundle": {"key": "k/a.tar.gz"}},
                       {"name": "b", "phase": "PartiallyFailed", "uploadKey": "k/b.tar.gz"},
                       {"name": "c", "phase": "Failed", "message": "no pprof"}]}
    assert handlers._bundle_keys(status) == ["k/a.tar.gz", "k/b.tar.gz"]
    assert handlers._has_bundles({**status, "phase": "PartiallyFailed"}) is True  # type: ignore[arg-type]
    # Ended with nothing stored: no cleanup to wait for. Not ended yet: bundles may still come.
    assert handlers._has_bundles({"phase": "Failed", "pods": [status["pods"][2]]}) is False  # type: ignore[arg-type]
    assert handlers._has_bundles({"phase": "Running", "pods": []}) is True  # type: ignore[arg-type]
    assert handlers._has_bundles({}) is True  # type: ignore[arg-type]


def test_two_captures_of_one_pod_start_in_different_seconds_so_their_bundles_differ() -> None:
    rt: Any = SimpleNamespace(pod_started={})

    async def twice() -> tuple[datetime, datetime, datetime]:
        first = await handlers._distinct_start(rt, "shop", "api-1")
        other_pod = await handlers._distinct_start(rt, "shop", "api-2")
        second = await handlers._distinct_start(rt, "shop", "api-1")
        return first, other_pod, second

    first, other_pod, second = asyncio.run(twice())
    assert second.replace(microsecond=0) > first.replace(microsecond=0)
    assert (other_pod - first).total_seconds() < 0.5  # another pod does not wait
    assert first.tzinfo is UTC
