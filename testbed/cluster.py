"""Start, check and stop the single-node cluster and its S3 server.

Every component is a plain background process whose pid is recorded under
``.testbed/pids``; this machine has no systemd, and ``down`` must be able to
find and stop exactly what ``up`` started. Start order follows dependencies:
network, etcd, S3, the registry, Alertmanager, kube-apiserver, containerd (+ image import),
kube-controller-manager, kube-scheduler, kubelet.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed import alertmanager, builds, layout, pki, registry

P = layout.Paths()
API_URL = f"https://{layout.NODE_IP}:{layout.APISERVER_PORT}"


class TestbedError(RuntimeError):
    """The testbed could not reach the state asked for; the message says where to look."""


def say(msg: str) -> None:
    builds.say(msg)


# ---------------------------------------------------------------- health probes

def _http_ok(url: str, *, client_cert: str | None = None, timeout: float = 2.0) -> bool:
    ctx = ssl.create_default_context()
    if url.startswith("https://"):
        if client_cert:
            ctx.load_verify_locations(str(P.pki / "ca.crt"))
            ctx.load_cert_chain(str(P.pki / f"{client_cert}.crt"), str(P.pki / f"{client_cert}.key"))
        else:
            # kcm and scheduler serve self-signed certificates; /healthz is all we ask of them.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _containerd_ok() -> bool:
    if not layout.containerd_socket().exists():
        return False
    res = subprocess.run(["ctr", "--address", str(layout.containerd_socket()), "version"],
                         capture_output=True, timeout=10)
    return res.returncode == 0


def kubectl(*args: str, check: bool = True, timeout: float = 60, user: str = "admin") -> str:
    kc = P.kubeconfig if user == "admin" else P.user_kubeconfig(user)
    res = subprocess.run([str(builds.binary("kubernetes", "kubectl")), "--kubeconfig", str(kc), *args],
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise TestbedError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def _node_ready() -> bool:
    try:
        out = kubectl("get", "node", layout.NODE_NAME, "-o",
                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False, timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        return False
    return out.strip() == "True"


# ---------------------------------------------------------------- processes

@dataclass(frozen=True)
class Proc:
    name: str
    argv: Callable[[], list[str]]
    healthy: Callable[[], bool]
    env: Callable[[], dict[str, str]] = dict
    wait_seconds: float = 90

    @property
    def pid_file(self) -> Path:
        return P.pids / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return P.logs / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self) -> None:
        if self.pid() is not None and self.healthy():
            return
        self.stop()
        P.logs.mkdir(parents=True, exist_ok=True)
        P.pids.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **self.env()}, start_new_session=True)
        log.close()
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TestbedError(f"{self.name} exited with code {proc.returncode} during start; "
                                   f"last lines of {self.log_file}:\n{_tail(self.log_file)}")
            if self.healthy():
                say(f"{self.name} is up (pid {proc.pid})")
                return
            time.sleep(0.5)
        raise TestbedError(f"{self.name} did not become healthy within {self.wait_seconds:.0f}s; "
                           f"last lines of {self.log_file}:\n{_tail(self.log_file)}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            _terminate(pid)
        self.pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _terminate(pid: int, grace: float = 10) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- component definitions

def _etcd() -> list[str]:
    peer = f"http://127.0.0.1:{layout.ETCD_PEER_PORT}"
    client = f"http://127.0.0.1:{layout.ETCD_CLIENT_PORT}"
    return [str(builds.binary("etcd")), "--name=testbed", f"--data-dir={P.etcd_data}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}",
            # A test cluster: losing the last writes on a crash is fine, fsync latency is not.
            "--unsafe-no-fsync=true", "--log-level=warn"]


def _minio() -> list[str]:
    return [str(builds.binary("minio")), "server", str(P.s3_data),
            f"--address={layout.NODE_IP}:{layout.S3_PORT}",
            f"--console-address=127.0.0.1:{layout.S3_CONSOLE_PORT}", "--quiet"]


def _minio_env() -> dict[str, str]:
    return {"MINIO_ROOT_USER": layout.S3_ACCESS_KEY, "MINIO_ROOT_PASSWORD": layout.S3_SECRET_KEY,
            "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}


def _apiserver() -> list[str]:
    k = P.pki
    return [str(builds.binary("kubernetes", "kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{layout.ETCD_CLIENT_PORT}",
            f"--bind-address={layout.NODE_IP}", f"--secure-port={layout.APISERVER_PORT}",
            f"--advertise-address={layout.NODE_IP}",
            f"--tls-cert-file={k / 'apiserver.crt'}", f"--tls-private-key-file={k / 'apiserver.key'}",
            f"--client-ca-file={k / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={k / 'sa.pub'}", f"--service-account-signing-key-file={k / 'sa.key'}",
            f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={k / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={k / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={k / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP", "--allow-privileged=true",
            f"--cert-dir={P.root / 'apiserver-certs'}", "--profiling=false", "--v=1"]


def _kcm() -> list[str]:
    kc = P.component_kubeconfig("controller-manager")
    k = P.pki
    return [str(builds.binary("kubernetes", "kube-controller-manager")),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            f"--service-account-private-key-file={k / 'sa.key'}", f"--root-ca-file={k / 'ca.crt'}",
            f"--cluster-signing-cert-file={k / 'ca.crt'}", f"--cluster-signing-key-file={k / 'ca.key'}",
            f"--service-cluster-ip-range={layout.SERVICE_CIDR}", "--use-service-account-credentials=true",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={layout.KCM_PORT}",
            f"--cert-dir={P.root / 'kcm-certs'}", "--v=1"]


def _scheduler() -> list[str]:
    kc = P.component_kubeconfig("scheduler")
    return [str(builds.binary("kubernetes", "kube-scheduler")),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={layout.SCHEDULER_PORT}",
            f"--cert-dir={P.root / 'scheduler-certs'}", "--v=1"]


def _containerd() -> list[str]:
    return ["containerd", "--config", str(P.root / "containerd.toml")]


def _kubelet() -> list[str]:
    return [str(builds.binary("kubernetes", "kubelet")), f"--config={P.root / 'kubelet.yaml'}",
            f"--kubeconfig={P.component_kubeconfig('kubelet')}", f"--hostname-override={layout.NODE_NAME}",
            f"--node-ip={layout.NODE_IP}", f"--root-dir={P.kubelet_root}",
            f"--cert-dir={P.kubelet_root / 'pki'}", "--v=1"]


PROCS = [
    Proc("etcd", _etcd, lambda: _http_ok(f"http://127.0.0.1:{layout.ETCD_CLIENT_PORT}/health")),
    Proc("s3", _minio, lambda: _http_ok(f"http://{layout.NODE_IP}:{layout.S3_PORT}/minio/health/live"),
         env=_minio_env),
    Proc("registry", registry.argv, registry.ready),
    Proc("alertmanager", alertmanager.argv, alertmanager.ready),
    Proc("kube-apiserver", _apiserver, lambda: _http_ok(f"{API_URL}/readyz", client_cert="admin"),
         wait_seconds=120),
    Proc("containerd", _containerd, _containerd_ok),
    Proc("kube-controller-manager", _kcm, lambda: _http_ok(f"https://127.0.0.1:{layout.KCM_PORT}/healthz")),
    Proc("kube-scheduler", _scheduler, lambda: _http_ok(f"https://127.0.0.1:{layout.SCHEDULER_PORT}/healthz")),
    Proc("kubelet", _kubelet, lambda: _http_ok(f"http://127.0.0.1:{layout.KUBELET_HEALTHZ_PORT}/healthz"),
         wait_seconds=120),
]


def proc(name: str) -> Proc:
    for p in PROCS:
        if p.name == name:
            return p
    raise KeyError(name)


# ---------------------------------------------------------------- configuration files

def _write_configs() -> None:
    P.root.mkdir(parents=True, exist_ok=True)
    pki.ensure(P.pki)
    alertmanager.write_files()
    registry.write_files()
    for name, cert in (("controller-manager", "controller-manager"), ("scheduler", "scheduler"),
                       ("kubelet", "kubelet")):
        pki.kubeconfig(P.component_kubeconfig(name), pki=P.pki, server=API_URL, user=name, cert=cert)
    pki.kubeconfig(P.kubeconfig, pki=P.pki, server=API_URL, user=layout.ADMIN_USER, cert="admin")
    pki.kubeconfig(P.user_kubeconfig(layout.PLAIN_USER), pki=P.pki, server=API_URL, user=layout.PLAIN_USER,
                   cert="user")
    layout.RUN.mkdir(parents=True, exist_ok=True)
    P.cni_conf.mkdir(parents=True, exist_ok=True)
    P.cni_ipam.mkdir(parents=True, exist_ok=True)
    (P.cni_conf / "10-debugcap-testbed.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0",
        "name": "debugcap-testbed",
        "plugins": [{
            "type": "bridge", "bridge": layout.POD_BRIDGE, "isGateway": True,
            # No masquerading: pod traffic must never leave the machine through eth0.
            "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "dataDir": str(P.cni_ipam),
                     "ranges": [[{"subnet": layout.POD_SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}]},
        }],
    }, indent=2))
    (P.root / "containerd.toml").write_text(f"""version = 2
root = "{P.containerd_root}"
state = "{layout.RUN / 'containerd-state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{layout.containerd_socket()}"
[ttrpc]
  address = "{layout.RUN / 'containerd.sock.ttrpc'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{layout.IMAGES['pause']}"
  # This machine's bounding set lacks CAP_SYS_RESOURCE, so nothing may lower an
  # OOM score (the sandbox's default is -998, and runc fails on it): cap scores
  # at containerd's own, as rootless setups do.
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  # The testbed's registry (testbed/registry.py): plain HTTP, described by its hosts.toml there.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{P.containerd_hosts}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{P.cni_conf}"
""")
    (P.root / "kubelet.yaml").write_text(f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /
enforceNodeAllocatable: ["pods"]
failSwapOn: false
containerRuntimeEndpoint: unix://{layout.containerd_socket()}
address: {layout.NODE_IP}
port: {layout.KUBELET_PORT}
healthzBindAddress: 127.0.0.1
healthzPort: {layout.KUBELET_HEALTHZ_PORT}
readOnlyPort: 0
tlsCertFile: {P.pki / 'kubelet-serving.crt'}
tlsPrivateKeyFile: {P.pki / 'kubelet-serving.key'}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {P.pki / 'ca.crt'}}}
authorization: {{mode: Webhook}}
clusterDomain: cluster.local
evictionHard: {{memory.available: "100Mi", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}}
# Images here are imported by hand and can never be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
protectKernelDefaults: false
makeIPTablesUtilChains: false
serializeImagePulls: false
shutdownGracePeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
staticPodPath: ""
# 200 goapp pods for the sweep benchmark (benchmarks/bench_sweep.py), with room for the other tests.
maxPods: 250
""")


def _network_up() -> None:
    if subprocess.run(["ip", "link", "show", layout.NODE_BRIDGE], capture_output=True).returncode != 0:
        # A bridge rather than a dummy link: this kernel has no CONFIG_DUMMY.
        subprocess.run(["ip", "link", "add", layout.NODE_BRIDGE, "type", "bridge"], check=True)
    addrs = subprocess.run(["ip", "-br", "addr", "show", layout.NODE_BRIDGE], capture_output=True,
                           text=True).stdout
    if layout.NODE_IP not in addrs:
        subprocess.run(["ip", "addr", "add", layout.NODE_CIDR, "dev", layout.NODE_BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", layout.NODE_BRIDGE, "up"], check=True)
    # Bridged pod traffic must reach the node's address; without forwarding the
    # bridge plugin's gateway still answers, so only loopback-like traffic flows.
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


def _import_images() -> None:
    from testbed import images, oci  # lazily: `status` and `down` never build images

    archives = images.build_all()
    sock = str(layout.containerd_socket())
    present = subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q"],
                             capture_output=True, text=True, check=True).stdout.split()
    for ref, archive in archives.items():
        if oci.normalize_ref(ref) in present and not _newer_than_import(archive):
            continue
        import_image(archive)
        say(f"imported image {ref}")
    (P.root / "images-imported").touch()


def import_image(archive: Path) -> None:
    """Load an OCI archive into the node's containerd (the kubelet's namespace)."""
    res = subprocess.run(["ctr", "--address", str(layout.containerd_socket()), "-n", "k8s.io", "images", "import",
                          str(archive)], capture_output=True, text=True)
    if res.returncode != 0:
        raise TestbedError(f"importing {archive} into containerd failed: {res.stderr.strip()}")


def _newer_than_import(archive: Path) -> bool:
    # A rebuilt archive (fixture source changed) must replace the image containerd already has.
    stamp = P.root / "images-imported"
    return not stamp.exists() or archive.stat().st_mtime > stamp.stat().st_mtime


def _wait(what: str, ok: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(1)
    raise TestbedError(f"timed out after {seconds:.0f}s waiting for {what}; see logs in {P.logs}")


def _default_service_account() -> bool:
    return kubectl("get", "serviceaccount", "default", "-n", "default", check=False, timeout=10).strip() != ""


# ---------------------------------------------------------------- public operations

OWNER = layout.RUN / "owner"


def _claim() -> None:
    """One testbed per machine (fixed ports, one bridge): refuse to start over another clone's."""
    try:
        owner = Path(OWNER.read_text().strip())
    except OSError:
        owner = None
    if owner is not None and owner != P.root and (owner / "pids").is_dir():
        alive = [f.stem for f in (owner / "pids").glob("*.pid") if f.read_text().strip().isdigit()
                 and _alive(int(f.read_text()))]
        if alive:
            raise TestbedError(f"a testbed started from {owner.parent} is running ({', '.join(sorted(alive))}); "
                               f"stop it first with: cd {owner.parent} && python -m testbed down")
    layout.RUN.mkdir(parents=True, exist_ok=True)
    OWNER.write_text(f"{P.root}\n")


def up() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the testbed runs containers, bridges and mounts: run it as root")
    _claim()
    started = time.monotonic()
    builds.ensure_all()
    _write_configs()
    _network_up()
    for p in PROCS:
        if p.name == "kubelet":
            _import_images()
        p.start()
    _reload_alertmanager()
    _wait(f"node {layout.NODE_NAME} to be Ready", _node_ready, 180)
    _wait("the default ServiceAccount", _default_service_account, 60)
    write_env()
    say(f"testbed up in {time.monotonic() - started:.0f}s")


def _reload_alertmanager() -> None:
    # An Alertmanager left running reads the config just written (a test may have replaced it).
    code, message = alertmanager.reload()
    if code != 200:
        raise TestbedError(f"Alertmanager refused its config {alertmanager.config_file()} (HTTP {code}): "
                           f"{message.strip()}; see {proc('alertmanager').log_file}")


def write_env() -> None:
    P.env_file.write_text("".join(f"export {k}={v}\n" for k, v in env_vars().items()))


def env_vars() -> dict[str, str]:
    return {
        "KUBECONFIG": str(P.kubeconfig),
        "DEBUGCAP_TESTBED_USER_KUBECONFIG": str(P.user_kubeconfig(layout.PLAIN_USER)),
        "DEBUGCAP_S3_ENDPOINT": f"{layout.NODE_IP}:{layout.S3_PORT}",
        "DEBUGCAP_S3_BUCKET": layout.S3_BUCKET,
        "DEBUGCAP_S3_ACCESS_KEY": layout.S3_ACCESS_KEY,
        "DEBUGCAP_S3_SECRET_KEY": layout.S3_SECRET_KEY,
        "DEBUGCAP_S3_SECURE": "false",
        "DEBUGCAP_CLUSTER": "testbed",
        "ALERTMANAGER_URL": alertmanager.URL,
        "DEBUGCAP_TESTBED_ALERTMANAGER_CONFIG": str(alertmanager.config_file()),
        "DEBUGCAP_TESTBED_ALERT_WEBHOOK_PORT": str(layout.ALERT_WEBHOOK_PORT),
        "DEBUGCAP_TESTBED_ALERT_TOKEN_FILE": str(alertmanager.token_file()),
        "PATH": f"{builds.component('kubernetes').bin_dir}:{builds.component('helm').bin_dir}:$PATH",
    }


def status() -> dict[str, bool]:
    result = {p.name: p.pid() is not None and p.healthy() for p in PROCS}
    result["node-ready"] = result["kube-apiserver"] and _node_ready()
    return result


def where() -> list[str]:
    return [
        f"etcd            http://127.0.0.1:{layout.ETCD_CLIENT_PORT}",
        f"kube-apiserver  {API_URL}",
        f"kubelet         https://{layout.NODE_IP}:{layout.KUBELET_PORT} (node {layout.NODE_NAME})",
        f"containerd      {layout.containerd_socket()}",
        f"S3 (MinIO)      http://{layout.NODE_IP}:{layout.S3_PORT} bucket {layout.S3_BUCKET}",
        f"Alertmanager    {alertmanager.URL} -> webhook {alertmanager.WEBHOOK_URL}",
        f"registry        {registry.URL} (make image pushes here)",
        f"kubeconfig      {P.kubeconfig}",
        f"logs            {P.logs}",
        "environment     eval \"$(python -m testbed env)\"",
    ]


def _kill_pods() -> None:
    """Kill every container process the kubelet placed, then the shims that held them."""
    for _ in range(3):
        pids: set[int] = set()
        for procs in Path("/sys/fs/cgroup/pids").glob("kubepods*/**/cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except OSError:
                continue
        for pid in _shim_pids():
            pids.add(pid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def _shim_pids() -> list[int]:
    sock = str(layout.containerd_socket())
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and sock.encode() in cmd:
            found.append(int(d.name))
    return found


def _remove_cgroups() -> None:
    for controller in Path("/sys/fs/cgroup").iterdir():
        for top in controller.glob("kubepods*"):
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                top.rmdir()
            except OSError:
                pass


def _unmount_under(*roots: Path) -> None:
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if any(target == str(r) or target.startswith(str(r) + "/") for r in roots):
            mounts.append(target)
    for target in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def our_processes() -> list[str]:
    """Every live process started by the testbed: its binaries, its state dir or its socket in argv."""
    marks = (str(layout.CACHE / "bin"), str(P.root), str(layout.RUN))
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            argv = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if argv and any(m in argv for m in marks) and _alive(int(d.name)):
            found.append(f"{d.name} {argv[:120]}")
    return found


def _testbed_netns() -> list[str]:
    # containerd 1.6's CRI names each pod sandbox's network namespace cni-<uuid>.
    netns = Path("/run/netns")
    return [p.name for p in netns.glob("cni-*")] if netns.exists() else []


def down() -> None:
    for name in ("kubelet", "kube-scheduler", "kube-controller-manager"):
        proc(name).stop()
    _kill_pods()
    proc("containerd").stop()
    for pid in _shim_pids():
        _terminate(pid, grace=2)
    for name in ("kube-apiserver", "alertmanager", "registry", "s3", "etcd"):
        proc(name).stop()
    _remove_cgroups()
    for ns in _testbed_netns():
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    _unmount_under(P.root, layout.RUN, Path("/run/containerd/io.containerd.grpc.v1.cri"))
    netns = Path("/run/netns")
    mounted = any(line.split()[1] == str(netns) for line in Path("/proc/self/mounts").read_text().splitlines())
    if mounted and netns.is_dir() and not any(netns.iterdir()):
        # iproute2/containerd bind-mount /run/netns on itself for the pods' namespaces; once ours
        # are gone and nothing else uses it, take the mount away too.
        subprocess.run(["umount", str(netns)], capture_output=True)
    for link in (layout.POD_BRIDGE, layout.NODE_BRIDGE):
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
    leftovers = our_processes()
    if leftovers:
        raise TestbedError("processes still running after down: " + "; ".join(leftovers))
    shutil.rmtree(P.root, ignore_errors=True)
    shutil.rmtree(layout.RUN, ignore_errors=True)
    # The kubelet writes container logs to these fixed paths, whatever its root dir.
    shutil.rmtree("/var/log/pods", ignore_errors=True)
    shutil.rmtree("/var/log/containers", ignore_errors=True)
    say("testbed down: processes stopped, mounts, interfaces and state removed")
