"""The fault suite's support: the operator as a real process, the invariants, the recorder.

Each ``tests/e2e/test_faults_*.py`` injects one kind of fault for real on the testbed (a ``kill -9``,
a stopped MinIO, a full spool volume, a restarted API server...) against a ``debugcap-operator``
subprocess started here with the testbed's environment, then checks the suite's invariants
(:func:`check`) and records the run (:data:`RECORDER`); :mod:`tests.e2e.faults.report` prints the
table at the end of the session.

The invariants, after every run:

1. every DebugCapture of the run's namespaces reaches a terminal phase (polled, with a deadline);
2. every object in the bucket under the namespaces' prefix is named by some capture's status
   (``pods[].bundle.key`` or ``pods[].uploadKey``; a ``.sha256`` sidecar by its bundle's key);
3. no pod has two bundles for one capture (bundles counted per ``<capture>_<uid>/`` directory and pod,
   and no pod listed twice in a status);
4. no bundle is left in the operator's spool once S3 answers (polled: a flush may be under way);
   nothing is held in ``.held/`` either (no fault here should make a status write fail for 60 s).

A run's *recovery time* is from the fault's end until 1 and 4 hold (the captures terminal, the spool empty).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from minio import Minio

from debugcap.kube.client import Kube
from debugcap.storage import spool as spooling
from testbed import builds, cluster, layout

GROUP, VERSION, PLURAL = "debugcap.io", "v1alpha1", "debugcaptures"
TERMINAL = frozenset({"Completed", "PartiallyFailed", "Failed"})
OPERATOR = str(Path(sys.executable).with_name("debugcap-operator"))
REPO = layout.REPO
RESULTS = REPO / "out" / "faults.jsonl"
# Every fault run's bundles go under this prefix (one per session), so the bucket check sees only
# this session's objects, never another helper's or an earlier session's.
PREFIX = f"faults-{uuid.uuid4().hex[:8]}"
LIGHT = "go-heap"  # no CPU profile or trace window: a pod takes about a second
SEED = int(os.environ.get("DEBUGCAP_FAULTS_SEED") or random.SystemRandom().randrange(1 << 31))


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the recorder


@dataclass
class FaultRow:
    fault: str
    runs: int = 0
    held: int = 0
    worst_recovery: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Recorder:
    """One row per fault: runs, runs whose invariants all held, the worst recovery time.
    Every run is appended to :data:`RESULTS` (JSON lines) as it ends, so a crash keeps them."""

    def __init__(self) -> None:
        self.rows: dict[str, FaultRow] = {}

    def run(self, fault: str, verdict: Verdict) -> None:
        row = self.rows.setdefault(fault, FaultRow(fault))
        row.runs += 1
        row.held += not verdict.problems
        row.worst_recovery = max(row.worst_recovery, verdict.recovery)
        row.problems += verdict.problems
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as out:
            out.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": SEED,
                                  "fault": fault, "held": not verdict.problems, "recovery": round(verdict.recovery, 2),
                                  "problems": verdict.problems}) + "\n")

    def note(self, fault: str, note: str) -> None:
        self.rows.setdefault(fault, FaultRow(fault)).notes.append(note)

    def table(self) -> list[str]:
        lines = [f"fault-suite seed {SEED} (rerun with DEBUGCAP_FAULTS_SEED={SEED})",
                 f"{'fault':<52} {'runs':>4} {'invariants held':>16} {'worst recovery':>15}"]
        for row in self.rows.values():
            if not row.runs:
                continue
            lines.append(f"{row.fault:<52} {row.runs:>4} {f'{row.held}/{row.runs}':>16} "
                         f"{row.worst_recovery:>14.1f}s")
        for row in self.rows.values():
            lines += [f"  {row.fault}: {n}" for n in row.notes]
            lines += [f"  {row.fault}: PROBLEM {p}" for p in row.problems[:10]]
        return lines

    def dump(self) -> dict[str, Any]:
        return {k: asdict(v) for k, v in self.rows.items()}


RECORDER = Recorder()


# ---------------------------------------------------------------- the operator, a real process


class Operator:
    """``debugcap-operator`` serving ``namespaces``, as benchmarks/bench_operator.py starts it: the
    testbed's environment plus this suite's prefix, its own work and spool directories."""

    def __init__(self, root: Path, namespaces: Iterable[str], env: dict[str, str], *, concurrency: int = 4,
                 extra: dict[str, str] | None = None) -> None:
        self.root, self.namespaces = root, list(namespaces)
        self.spool, self.work, self.log = root / "spool", root / "work", root / "operator.log"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "DEBUGCAP_S3_PREFIX": PREFIX,
                    "DEBUGCAP_OPERATOR_NAMESPACES": ",".join(self.namespaces),
                    "DEBUGCAP_OPERATOR_CONCURRENCY": str(concurrency),
                    "DEBUGCAP_OPERATOR_WORK_DIR": str(self.work), "DEBUGCAP_SPOOL_DIR": str(self.spool),
                    **(extra or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exits: list[int] = []  # exit codes of the times it ended by itself (restarted by a Kubelet)
        self.lock = threading.RLock()  # a kill, a start and the Kubelet's restart one at a time

    def start(self, timeout: float = 90) -> None:
        with self.lock:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        port = free_port()
        self.env["DEBUGCAP_OPERATOR_LIVENESS_PORT"] = str(port)
        with self.log.open("ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            # Its own process group: kill -9 takes its children (port-forwards) too, as a pod's death would.
            self.proc = subprocess.Popen([OPERATOR], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"debugcap-operator exited {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"debugcap-operator not healthy after {timeout:.0f} s:\n{self.tail()}")

    def kill9(self) -> None:
        with self.lock:
            assert self.proc is not None
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        with self.lock:
            if self.proc is None:
                return
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
            self.proc = None

    def restart_if_exited(self) -> bool:
        """Start it again if it ended by itself (a leader that could not renew its Lease exits, and
        its pod's container is restarted); whether it had."""
        with self.lock:
            if self.proc is None or self.proc.poll() is None:
                return False
            self.exits.append(self.proc.returncode)
            self._start(90)
            return True

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def tracebacks(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [chunk[:1500] for chunk in text.split("Traceback (most recent call last):")[1:]]


class Kubelet(threading.Thread):
    """Restarts operators that exited by themselves, as a pod's ``restartPolicy: Always`` does."""

    def __init__(self, operators: Iterable[Operator]) -> None:
        super().__init__(daemon=True, name="fault-kubelet")
        self.operators, self.stopped = list(operators), threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for op in self.operators:
                try:
                    op.restart_if_exited()
                except AssertionError as exc:  # it did not come up: tried again next round
                    say(f"restarting {op.root.name} failed: {exc}")

    def __enter__(self) -> Kubelet:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.join()


# ---------------------------------------------------------------- captures


def custom(kube: Kube) -> k8s.CustomObjectsApi:
    return kube.custom()


def create_capture(kube: Kube, namespace: str, name: str, target: dict[str, Any], *, template: str = LIGHT,
                   params: dict[str, Any] | None = None, ttl: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"target": target, "template": template, "parameters": params or {}}
    if ttl:
        spec["ttl"] = ttl
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture",
            "metadata": {"name": name, "labels": {"debugcap-faults": "1"}}, "spec": spec}
    obj: dict[str, Any] = kube.custom().create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return obj


def read(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return obj


def captures(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.custom().list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL)["items"]
    return items


def phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def outcome(kube: Kube, namespace: str, name: str) -> str:
    """A capture's phase and its pods' phases, counted ("PartiallyFailed: 12 Completed, 8 Failed")."""
    obj = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    pods = Counter(str(p.get("phase")) for p in (obj.get("status") or {}).get("pods") or [])
    return f"{phase(obj)}: " + ", ".join(f"{n} {k}" for k, n in sorted(pods.items()))


def wait_for(ok: Callable[[], Any], seconds: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            last = ok()
        except (ApiException, OSError) as exc:  # the API server may be the fault
            last, why = None, exc
        else:
            why = None
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}" + (f" ({why})" if why else ""))
        time.sleep(every)


def delete_captures(kube: Kube, namespaces: Iterable[str], timeout: float = 120) -> None:
    """Delete every capture while the operator runs: its finalizer removes their bundles."""
    for ns in namespaces:
        kube.custom().delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
    for ns in namespaces:
        try:
            wait_for(lambda ns=ns: not captures(kube, ns), timeout, f"the captures of {ns} to be deleted")
        finally:
            strip_finalizers(kube, ns)


def strip_finalizers(kube: Kube, namespace: str) -> None:
    for plural in (PLURAL, "debugschedules"):
        try:
            items = kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
        except ApiException:
            continue
        for item in items:
            if item["metadata"].get("finalizers"):
                try:
                    kube.custom().patch_namespaced_custom_object(
                        GROUP, VERSION, namespace, plural, item["metadata"]["name"], {"metadata": {"finalizers": None}},
                        _content_type="application/merge-patch+json")
                except ApiException:
                    pass


# ---------------------------------------------------------------- pods


def make_namespace(core: k8s.CoreV1Api, name: str) -> None:
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={"debugcap-e2e": "1"})))
    wait_for(lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), 30,
             f"the default ServiceAccount of {name}")


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def goapp_pod(name: str, labels: dict[str, str]) -> k8s.V1Pod:
    container = k8s.V1Container(name="app", image=layout.IMAGES["goapp"], image_pull_policy="Never")
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name, labels=labels),
                     spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                                        automount_service_account_token=False))


def make_pods(core: k8s.CoreV1Api, namespace: str, names: Iterable[str], labels: dict[str, str],
              timeout: float = 180) -> list[str]:
    names = list(names)
    for name in names:
        core.create_namespaced_pod(namespace, goapp_pod(name, labels))
    wait_running(core, namespace, names, timeout)
    return names


def wait_running(core: k8s.CoreV1Api, namespace: str, names: Iterable[str], timeout: float = 180) -> None:
    wanted = set(names)

    def ready() -> bool:
        pods = core.list_namespaced_pod(namespace).items
        up = {p.metadata.name for p in pods if p.status.phase == "Running"
              and all(cs.ready for cs in p.status.container_statuses or [])}
        return wanted <= up

    wait_for(ready, timeout, f"pods {sorted(wanted)[:3]}... of {namespace} to run", every=1)


# ---------------------------------------------------------------- the invariants


@dataclass
class Verdict:
    problems: list[str]
    # Seconds from the fault's end until every capture was terminal and the spool empty (a fault
    # of S3 may end after the captures did: its recovery is the flush).
    recovery: float


def minio_client(env: dict[str, str]) -> Minio:
    return Minio(env["DEBUGCAP_S3_ENDPOINT"], access_key=env["DEBUGCAP_S3_ACCESS_KEY"],
                 secret_key=env["DEBUGCAP_S3_SECRET_KEY"], secure=False)


def bucket_keys(mc: Minio, bucket: str, namespace: str) -> list[str]:
    cluster_name = os.environ.get("DEBUGCAP_CLUSTER") or "testbed"  # the store's, as the operator reads it
    return [o.object_name for o in mc.list_objects(bucket, prefix=f"{PREFIX}/{cluster_name}/{namespace}/",
                                                   recursive=True) if o.object_name]


def named_keys(items: Iterable[dict[str, Any]]) -> set[str]:
    named: set[str] = set()
    for obj in items:
        for pod in (obj.get("status") or {}).get("pods") or []:
            for key in ((pod.get("bundle") or {}).get("key"), pod.get("uploadKey")):
                if key:
                    named.add(str(key))
    return named


def check(kube: Kube, env: dict[str, str], namespaces: Iterable[str], spools: Iterable[Path], *,
          fault_end: float, timeout: float = 180, spool_timeout: float = 90,
          expected: Iterable[str] = ()) -> Verdict:
    """The four invariants over the captures of ``namespaces`` (see the module's docstring).
    ``expected``: names of captures that must be among them (none at all is a problem anyway: a
    check of nothing would pass whatever the fault did)."""
    namespaces, problems, expected = list(namespaces), [], set(expected)

    def all_terminal() -> list[dict[str, Any]] | None:
        items = [c for ns in namespaces for c in captures(kube, ns)]
        present = {c["metadata"]["name"] for c in items}
        if not items or not expected <= present:
            return None
        return items if all(phase(c) in TERMINAL for c in items) else None

    try:
        items = wait_for(all_terminal, timeout, "every DebugCapture to reach a terminal phase", every=0.25)
    except AssertionError:
        items = [c for ns in namespaces for c in captures(kube, ns)]
        problems += [f"{c['metadata']['namespace']}/{c['metadata']['name']} still {phase(c) or 'without a phase'} "
                     f"{timeout:.0f} s after the fault: {(c.get('status') or {}).get('message', '')}"
                     for c in items if phase(c) not in TERMINAL]
        missing = sorted(expected - {c["metadata"]["name"] for c in items})
        if not items or missing:
            problems.append(f"no DebugCapture {missing or ''} in {namespaces}: the check would have judged nothing")

    # No bundle waits in a spool once S3 answers (a flush may be running: poll).
    def spools_empty() -> bool:
        return not any(spooling.Spool(d).entries() for d in spools)

    try:
        wait_for(spools_empty, spool_timeout, "the operator's spool to be flushed", every=1)
    except AssertionError:
        left = [str(e.path) for d in spools for e in spooling.Spool(d).entries()]
        problems.append(f"{len(left)} bundle(s) still in the spool {spool_timeout:.0f} s after S3 came back: "
                        f"{left[:3]}")
    recovery = max(0.0, time.monotonic() - fault_end)
    held = [str(e.path) for d in spools for e in spooling.Spool(d).held()]
    if held:
        problems.append(f"{len(held)} bundle(s) held in the spool: {held[:3]}")

    items = [c for ns in namespaces for c in captures(kube, ns)]
    named = named_keys(items)
    mc = minio_client(env)
    bucket = env["DEBUGCAP_S3_BUCKET"]
    per_pod: Counter[tuple[str, str]] = Counter()
    in_bucket = {key for ns in namespaces for key in bucket_keys(mc, bucket, ns)}
    # The other way too: every bundle a status names is in the bucket with its checksum (an empty
    # listing, from a wrong prefix or cluster, would otherwise pass every check above).
    for c in items:
        for pod in (c.get("status") or {}).get("pods") or []:
            key = (pod.get("bundle") or {}).get("key")
            problems += [f"{c['metadata']['namespace']}/{c['metadata']['name']}: pod {pod.get('name')}'s bundle "
                         f"{want} is not in bucket {bucket}" for want in (key, f"{key}.sha256")
                         if key and want not in in_bucket]
    for ns in namespaces:
        for key in bucket_keys(mc, bucket, ns):
            bundle_key = key.removesuffix(".sha256")
            if bundle_key not in named:
                problems.append(f"object {key} is named by no DebugCapture's status")
            if not key.endswith(".sha256"):
                parts = key.split("/")
                # <prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/<capture>_<uid>/<bundle>
                per_pod[(parts[-2], parts[3])] += 1
    problems += [f"pod {pod} has {n} bundles for capture {directory}" for (directory, pod), n in per_pod.items()
                 if n > 1]
    for c in items:
        listed = Counter(p["name"] for p in (c.get("status") or {}).get("pods") or [])
        problems += [f"{c['metadata']['namespace']}/{c['metadata']['name']}: pod {pod} listed {n} times"
                     for pod, n in listed.items() if n > 1]
    return Verdict(problems, recovery)


# ---------------------------------------------------------------- the testbed


class OwnMinio:
    """A MinIO of this suite's own, from the testbed's binary and credentials (testbed/cluster.py's
    "s3"), on another port with its own data directory: stopping it disturbs no other test."""

    def __init__(self, root: Path) -> None:
        self.data, self.log = root / "data", root / "minio.log"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self, bucket: str) -> dict[str, str]:
        """The DEBUGCAP_S3_* of an operator (and of :func:`check`) storing in ``bucket`` here."""
        return {"DEBUGCAP_S3_ENDPOINT": self.endpoint, "DEBUGCAP_S3_BUCKET": bucket,
                "DEBUGCAP_S3_ACCESS_KEY": layout.S3_ACCESS_KEY, "DEBUGCAP_S3_SECRET_KEY": layout.S3_SECRET_KEY,
                "DEBUGCAP_S3_SECURE": "false"}

    def start(self, timeout: float = 60) -> None:
        argv = [str(builds.binary("minio")), "server", str(self.data), f"--address={self.endpoint}",
                f"--console-address=127.0.0.1:{free_port()}", "--quiet"]
        env = {**os.environ, "MINIO_ROOT_USER": layout.S3_ACCESS_KEY, "MINIO_ROOT_PASSWORD": layout.S3_SECRET_KEY,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

        def live() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"minio exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/minio/health/live", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(live, timeout, f"MinIO at {self.endpoint}", every=0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- the testbed


def testbed_env() -> dict[str, str]:
    return {k: v for k, v in cluster.env_vars().items() if k != "PATH"}


def wait_healthy(timeout: float = 180) -> None:
    """Until every testbed process answers and the node is Ready (after a restart we caused)."""
    wait_for(lambda: all(cluster.status().values()), timeout, "the testbed to be healthy again", every=1)


def seeded(name: str) -> random.Random:
    return random.Random(f"{SEED}-{name}")


def ids(prefix: str) -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"{prefix}-{n:02d}"


@dataclass
class Bed:
    """One fault file's namespace, its pods and the operator serving it."""

    namespace: str
    operator: Operator
    env: dict[str, str]


@contextlib.contextmanager
def operator_bed(env: dict[str, str], kube: Kube, core: k8s.CoreV1Api, root: Path, prefix: str,
                 pods: Iterable[str], labels: dict[str, str],
                 after_stop: Callable[[], None] = lambda: None) -> Iterator[Bed]:
    """A namespace ``<prefix>-<random>`` with ``pods`` labelled ``labels`` and a running operator serving it;
    afterwards its captures are deleted while the operator still runs (its finalizers delete the bundles),
    then the operator is stopped and the namespace removed, whatever happened."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    make_namespace(core, namespace)
    operator = Operator(root, [namespace], env)
    try:
        make_pods(core, namespace, pods, labels)
        operator.start()
        yield Bed(namespace, operator, env)
        delete_captures(kube, [namespace])
    finally:
        operator.stop()
        after_stop()
        strip_finalizers(kube, namespace)
        core.delete_namespace(namespace, grace_period_seconds=0)
