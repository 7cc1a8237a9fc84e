"""What to do next: the one place error messages take their advice from.

Every message debugcap shows says what failed, on which object, and what to do next. The
"what to do next" part is written here once, so the CLI, the operator's statuses and Events, and
the capture engine give the same advice in the same words. Callers: :mod:`debugcap.kube.errors`
(API errors), :mod:`debugcap.capture` (targets that cannot be captured), the front ends.
"""

from __future__ import annotations


def list_objects(resource: str, namespace: str | None) -> str:
    where = f" -n {namespace}" if namespace else ""
    return f"list them with: kubectl get {resource}{where}"


def ask_rights(verb: str, resource: str, namespace: str | None) -> str:
    where = f' in namespace "{namespace}"' if namespace else " (cluster-wide)"
    return (f"ask for {verb} rights on {resource}{where}; "
            f"check with: kubectl auth can-i {verb} {resource}" + (f" -n {namespace}" if namespace else ""))


def check_credentials() -> str:
    return ('check your credentials and context ("kubectl config get-contexts"), '
            "or log in again if the token expired")


def reach_cluster(host: str) -> str:
    return (f"check that the API server at {host} is up and reachable "
            '(try "kubectl cluster-info"), or pick another context with --context')


def install_crds() -> str:
    return "are debugcap's CRDs installed? apply them with: kubectl apply -f crds/"


def list_namespaces() -> str:
    return "list namespaces with: kubectl get namespaces"


def describe_pod(pod: str, namespace: str) -> str:
    return f"see: kubectl describe pod {pod} -n {namespace}"


def pick_container(names: list[str], flag: str = "-c") -> str:
    return f"its containers are: {', '.join(names)}" + (f" (pick one with {flag})" if flag else "")


def show_labels(namespace: str) -> str:
    return f"check the labels with: kubectl get pods -n {namespace} --show-labels"


def pods_matching(namespace: str, selector: str) -> str:
    return f"see: kubectl get pods -n {namespace} -l '{selector}'"


def list_captures(namespace: str) -> str:
    return f"list them with: kubectl debugcap get -n {namespace}"


def list_cluster_templates() -> str:
    return "cluster templates: kubectl get debugcapturetemplates"


def install_operator() -> str:
    return ("the debugcap CRDs and operator are not installed: kubectl apply -f crds/, or helm install "
            "charts/debugcap; or capture from here with --local")


def retry_later() -> str:
    return "it was changed meanwhile; try again"


def fix_spec(field: str) -> str:
    return f"fix {field} and apply it again"

# The operator-wide switch for ephemeral debug containers (docs/shell-less-pods.md).
ENABLE_EPHEMERAL = ("enable them with the chart value debugContainer.enabled=true "
                    "(DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS), or use commandMode exec or auto")
ALLOW_DEBUG_IMAGE = ("leave debugImage unset for the operator's image, or have an admin list it in the chart value "
                     "debugContainer.allowedImages (DEBUGCAP_OPERATOR_ALLOWED_DEBUG_IMAGES)")
EPHEMERAL_RBAC = ("adding one needs `patch` on pods/ephemeralcontainers (kubectl auth can-i patch "
                  "pods/ephemeralcontainers); or capture with --command-mode exec (commandMode: exec), which "
                  "reads a shell image only")
EPHEMERAL_ENDED = ("its target restarted too often for debugcap to add more (each restart ends one); "
                   "recreate the pod to start clean")


def debug_image_fix(image: str) -> str:
    return (f'check that the debug image "{image}" exists, the node can pull it and it has busybox\'s tools '
            "(sh, sleep, ps, ...), or pick another with --debug-image (the operator: DEBUGCAP_OPERATOR_DEBUG_IMAGE)")
EPHEMERAL_POD_SECURITY = ("a target running as root can only be read by a root debug container, which the "
                          "namespace's Pod Security level forbids; run the workload as non-root, or use "
                          "--command-mode exec on an image with a shell")
