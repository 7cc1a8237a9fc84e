"""Exec collectors' commands share a few `sh` sessions per pod (debugcap.kube.shell).

One exec per command made a many-pod capture spend the node's CPU on exec set-up;
these tests hold the session to the same contract as one exec per command: streams
and exit codes apart, byte-exact output, a timeout that stops the command in the pod,
and one clear answer for a container without a shell.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest

from debugcap.kube import shell
from debugcap.kube.client import Kube

from .conftest import GoappPod

TWENTY_MB = 20 * 1024 * 1024


@pytest.fixture
def pool(goapp_pod: GoappPod, kube: Kube, namespace: str) -> Iterator[shell.Pool]:
    pod = goapp_pod()
    p = shell.Pool(kube, namespace=namespace, pod=pod.metadata.name, container="app", size=2)
    yield p
    p.close()


def run(pool: shell.Pool, *argv: str, timeout: float = 30) -> tuple[int | None, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    res = pool.run(list(argv), stdout=out, stderr=err, timeout=timeout, max_bytes=64 << 20)
    assert not res.timed_out and not res.truncated, res
    return res.exit_code, out.getvalue(), err.getvalue()


def test_commands_run_as_children_of_one_shell(pool: shell.Pool) -> None:
    parents = {run(pool, "sh", "-c", "cat /proc/$PPID/comm; echo $PPID")[1] for _ in range(10)}
    assert len(parents) == 1, parents  # ten commands, one exec
    assert next(iter(parents)).startswith(b"sh\n")


def test_streams_exit_codes_and_missing_tools(pool: shell.Pool) -> None:
    assert run(pool, "sh", "-c", "echo to-out; echo to-err >&2; exit 3") == (3, b"to-out\n", b"to-err\n")
    code, out, err = run(pool, "lsof", "-i")
    assert (code, out) == (127, b"") and b"lsof: not found" in err and b"__debugcap_" not in err
    # Arguments reach the command verbatim, whatever the shell would make of them.
    assert run(pool, "printf", "%s|", "a b", "$HOME", "'q'", "`x`", ";")[1] == b"a b|$HOME|'q'|`x`|;|"
    # Output that looks like our markers, or ends without a newline, passes through unchanged.
    assert run(pool, "printf", "__debugcap_0123_rc=0\n__debugcap_x")[1] == b"__debugcap_0123_rc=0\n__debugcap_x"


def test_twenty_mb_byte_for_byte(pool: shell.Pool) -> None:
    code, digest, _ = run(pool, "sh", "-c", f"head -c {TWENTY_MB} /dev/urandom > /tmp/blob && sha256sum /tmp/blob")
    assert code == 0
    code, data, _ = run(pool, "cat", "/tmp/blob", timeout=120)
    assert code == 0 and len(data) == TWENTY_MB
    assert hashlib.sha256(data).hexdigest() == digest.split()[0].decode()


def test_timeout_stops_the_command_in_the_pod_and_the_pool_goes_on(pool: shell.Pool) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    res = pool.run(["sh", "-c", "echo started; sleep 301"], stdout=out, stderr=err, timeout=2, max_bytes=1 << 20)
    assert res.timed_out and res.exit_code is None and res.duration_s < 10
    assert out.getvalue() == b"started\n"  # what came before the timeout is kept
    code, ps, _ = run(pool, "ps")
    assert code == 0 and b"sleep 301" not in ps, ps.decode()


def test_output_cap_cuts_and_the_pool_goes_on(pool: shell.Pool) -> None:
    out = io.BytesIO()
    res = pool.run(["head", "-c", "5000000", "/dev/zero"], stdout=out, stderr=io.BytesIO(), timeout=30,
                   max_bytes=1000)
    assert res.truncated and len(out.getvalue()) == 1000
    assert run(pool, "echo", "next")[:2] == (0, b"next\n")


def test_no_shell_is_one_clear_answer(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod("goapp-distroless", image="goapp-distroless")
    told: list[shell.Unavailable] = []
    p = shell.Pool(kube, namespace=namespace, pod=pod.metadata.name, container="app", on_unavailable=told.append)
    with pytest.raises(shell.Unavailable) as exc:
        p.check()
    assert exc.value.no_shell and "sh" in str(exc.value)
    with pytest.raises(shell.Unavailable):
        p.run(["ps"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=5, max_bytes=100)
    assert len(told) == 1  # said once, not once per collector
    p.close()
