"""Go collectors' GETs share kept-alive connections of one port-forward tunnel (debugcap.kube.portforward.Pool)."""

from __future__ import annotations

import io
import threading

import pytest

from debugcap import errors
from debugcap.formats import pprof
from debugcap.formats.procfs import parse_proc_net_tcp
from debugcap.kube import exec as kexec
from debugcap.kube import portforward
from debugcap.kube.client import Kube

from .conftest import GoappPod, _wait

PPROF_PORT = 6060


def established_to_pprof(kube: Kube, namespace: str, pod: str) -> int:
    """Connections the pod's pprof server holds open, read from its own /proc/net/tcp{,6}."""
    out = io.BytesIO()
    res = kexec.run(kube, namespace=namespace, pod=pod, container="app",
                    command=["sh", "-c", "cat /proc/net/tcp; tail -n +2 /proc/net/tcp6"], stdout=out,
                    stderr=io.BytesIO())
    assert res.exit_code == 0, res
    port = f":{PPROF_PORT:04X} "
    lines = out.getvalue().decode().splitlines()
    server_side = [ln for ln in lines[1:] if port in ln.split()[1] + " "]
    return parse_proc_net_tcp(server_side).get("ESTABLISHED", 0)


def test_sequential_gets_share_one_forward(goapp_pod: GoappPod, kube: Kube, namespace: str) -> None:
    pod = goapp_pod().metadata.name
    pool = portforward.Pool(kube, namespace=namespace, pod=pod, port=PPROF_PORT)
    try:
        for path, kind in (("/debug/pprof/heap", "heap"), ("/debug/pprof/allocs", "allocs"),
                           ("/debug/pprof/goroutine", "goroutine")):
            body = io.BytesIO()
            res = pool.get(path, body, timeout=30)
            assert res.status == 200
            assert pprof.parse(body.getvalue(), kind).sample_types
        assert established_to_pprof(kube, namespace, pod) == 1
        assert pool.tunnels_opened == 1
    finally:
        pool.close()
    # The close travels through the API server, the kubelet and containerd: give it a moment.
    _wait(lambda: established_to_pprof(kube, namespace, pod) == 0, 10, "the forward closed in the pod")


def test_overlapping_gets_each_get_a_connection_of_one_tunnel(
    goapp_pod: GoappPod, kube: Kube, namespace: str
) -> None:
    pod = goapp_pod().metadata.name
    pool = portforward.Pool(kube, namespace=namespace, pod=pod, port=PPROF_PORT, size=2)
    try:
        cpu = io.BytesIO()
        during: list[int] = []

        def profile() -> None:
            during.append(pool.get("/debug/pprof/profile?seconds=2", cpu, timeout=30).status)

        t = threading.Thread(target=profile)
        t.start()
        heap = io.BytesIO()
        assert pool.get("/debug/pprof/heap", heap, timeout=30).status == 200  # while the profile runs
        t.join()
        assert during == [200] and pprof.parse(cpu.getvalue(), "cpu").sample_types
        assert established_to_pprof(kube, namespace, pod) == 2
        for _ in range(4):
            assert pool.get("/debug/vars", io.BytesIO(), timeout=30).status == 200
        assert established_to_pprof(kube, namespace, pod) == 2  # no new connection for later requests
        assert pool.tunnels_opened == 1  # both connections ride one websocket
    finally:
        pool.close()


def test_a_closed_port_is_named_and_the_pool_does_not_retry_forever(
    goapp_pod: GoappPod, kube: Kube, namespace: str
) -> None:
    pod = goapp_pod().metadata.name
    pool = portforward.Pool(kube, namespace=namespace, pod=pod, port=6999, size=3)
    try:
        for _ in range(3):
            with pytest.raises(errors.CollectorError, match="nothing listens on port 6999"):
                pool.get("/debug/pprof/heap", io.BytesIO(), timeout=10)
        assert pool.tunnels_opened == 1
    finally:
        pool.close()


def test_busy_connections_of_one_tunnel_never_corrupt_each_other(
    goapp_pod: GoappPod, kube: Kube, namespace: str
) -> None:
    """Three threads stream at once through one websocket: every body arrives whole, on its own
    connection. (This checks the channel demultiplexing; the TLS lock it also runs through was
    found by bench_operator.py under 8 concurrent captures, a load this test does not reproduce.)"""
    pod = goapp_pod(env={"GOAPP_LEAK_GOROUTINES": "50"}).metadata.name
    pool = portforward.Pool(kube, namespace=namespace, pod=pod, port=PPROF_PORT, size=3)
    bad: list[str] = []

    def fetch(path: str, kind: str) -> None:
        for _ in range(30):
            body = io.BytesIO()
            try:
                assert pool.get(path, body, timeout=30).status == 200
                pprof.parse(body.getvalue(), kind)
            except Exception as exc:  # collected, so one thread's failure does not hide the others'
                bad.append(f"{path}: {exc!r}")

    try:
        threads = [threading.Thread(target=fetch, args=a) for a in
                   (("/debug/pprof/goroutine", "goroutine"), ("/debug/pprof/heap", "heap"),
                    ("/debug/pprof/allocs", "allocs"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad, bad
        assert pool.tunnels_opened == 1
    finally:
        pool.close()
