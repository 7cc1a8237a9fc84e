"""Kubernetes client configuration, loaded once and shared by the capture.

Each exec or port-forward gets its own ``ApiClient``: ``kubernetes.stream``
temporarily swaps the client's ``call_api`` while it opens a websocket, so two
threads sharing one client would race on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from debugcap import errors


@dataclass(frozen=True)
class KubeTarget:
    """How to reach a cluster: a kubeconfig file and context, or in-cluster credentials."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    request_timeout: float = 30.0


@dataclass
class Kube:
    """A loaded configuration and factories for API objects built on it."""

    configuration: k8s.Configuration
    default_namespace: str = "default"
    request_timeout: float = 30.0
    _shared: k8s.ApiClient | None = field(default=None, repr=False)

    @classmethod
    def load(cls, target: KubeTarget | None = None) -> Kube:
        target = target or KubeTarget()
        configuration = k8s.Configuration()
        namespace = "default"
        try:
            if target.in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
                try:
                    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as fh:
                        namespace = fh.read().strip() or namespace
                except OSError:
                    pass
            else:
                k8s_config.load_kube_config(config_file=target.kubeconfig, context=target.context,
                                            client_configuration=configuration)
                _, active = k8s_config.list_kube_config_contexts(config_file=target.kubeconfig)
                if target.context:
                    contexts, _ = k8s_config.list_kube_config_contexts(config_file=target.kubeconfig)
                    active = next((c for c in contexts if c["name"] == target.context), active)
                namespace = (active or {}).get("context", {}).get("namespace") or namespace
        except (ConfigException, OSError) as exc:
            where = target.kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise errors.ConfigError(
                f"cannot load Kubernetes credentials from {where}: {errors.shorten(str(exc))}; "
                "check the file, or pick a context with --context "
                '(list them with "kubectl config get-contexts")'
            ) from exc
        return cls(configuration=configuration, default_namespace=namespace,
                   request_timeout=target.request_timeout)

    def api_client(self) -> k8s.ApiClient:
        """A new client: never share one between concurrent websocket calls."""
        return k8s.ApiClient(self.configuration)

    def core(self) -> k8s.CoreV1Api:
        if self._shared is None:
            self._shared = k8s.ApiClient(self.configuration)
        return k8s.CoreV1Api(self._shared)

    def apps(self) -> k8s.AppsV1Api:
        if self._shared is None:
            self._shared = k8s.ApiClient(self.configuration)
        return k8s.AppsV1Api(self._shared)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def custom(self) -> k8s.CustomObjectsApi:
        if self._shared is None:
            self._shared = k8s.ApiClient(self.configuration)
        return k8s.CustomObjectsApi(self._shared)
