"""What a DebugDownload asks for, which bundles answer it, and the status it gets: pure.

A DebugDownload (``spec.capture``, optionally ``spec.pod``) asks for presigned GET URLs to the
stored bundles of a DebugCapture in its namespace. Whether its creator may ask was decided by the
API server at admission (the ValidatingAdmissionPolicy of docs/captures.md); what is left here is
which bundles of the capture can be signed, and the words for the ones that cannot. The handlers
in :mod:`~debugcap.operator.downloads` read the objects, sign and write what these functions say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from debugcap import errors, hints
from debugcap.operator.reporting import parse_stamp, stamp


@dataclass(frozen=True)
class DownloadRequest:
    capture: str
    pod: str | None = None


@dataclass(frozen=True)
class StoredBundle:
    """One pod's bundle as the capture's status lists it."""

    pod: str
    key: str
    uri: str
    sha256: str
    size: int


def parse_request(spec: Mapping[str, Any]) -> DownloadRequest:
    capture = str(spec.get("capture") or "").strip()
    if not capture:
        raise errors.ConfigError("spec.capture is empty: name the DebugCapture whose bundles to download")
    pod = str(spec.get("pod") or "").strip() or None
    return DownloadRequest(capture=capture, pod=pod)


def bundles_to_sign(capture: Mapping[str, Any] | None, request: DownloadRequest, namespace: str) -> list[StoredBundle]:
    """The stored bundles ``request`` asks for (``capture`` None: it does not exist). Raises a
    ConfigError saying why there is nothing to sign and what to do, the status's message."""
    name = request.capture
    if capture is None:
        raise errors.ConfigError(f'debugcapture "{name}" not found in namespace "{namespace}"; '
                                 f"{hints.list_captures(namespace)}")
    status = capture.get("status") or {}
    pods = [p for p in status.get("pods") or [] if request.pod is None or p.get("name") == request.pod]
    if request.pod is not None and not pods:
        known = ", ".join(str(p.get("name")) for p in status.get("pods") or []) or "none yet"
        raise errors.ConfigError(f'debugcapture "{name}" has no pod "{request.pod}" (spec.pod); its pods: {known}')
    stored = [StoredBundle(pod=str(p.get("name")), key=str(b["key"]), uri=str(b.get("uri") or ""),
                           sha256=str(b.get("sha256") or ""), size=int(b.get("sizeBytes") or 0))
              for p in pods if (b := p.get("bundle") or {}).get("key")]
    if stored:
        return stored
    spooled = [str(p.get("name")) for p in pods if p.get("uploadKey")]
    phase = status.get("phase") or "Pending"
    which = f'pod "{request.pod}" of debugcapture "{name}"' if request.pod else f'debugcapture "{name}"'
    if phase in ("Pending", "Running"):
        raise errors.ConfigError(f"{which} has no bundle yet (it is {phase}); ask again once it has ended: "
                                 f"kubectl debugcap logs {name} -n {namespace} -f")
    if spooled:
        raise errors.ConfigError(f"the bundle of pod {', '.join(spooled)} has not reached S3: it waits in the "
                                 "operator's spool until S3 answers again; ask again later")
    message = errors.shorten(str(status.get("message") or "no message"), 200)
    raise errors.ConfigError(f"{which} stored no bundle (it is {phase}: {message}); see: "
                             f"kubectl debugcap describe {name} -n {namespace}")


def check_stored_in(bundles: Sequence[StoredBundle], uri_of: Callable[[str], str], store: str) -> None:
    """Each bundle is where the operator's store would keep its key: a capture stored before the
    store changed (another bucket, a directory) cannot be signed by this one."""
    for bundle in bundles:
        if bundle.uri and bundle.uri != uri_of(bundle.key):
            raise errors.ConfigError(f"the bundle of pod {bundle.pod} is at {bundle.uri}, not in the operator's "
                                     f"store ({store}); download it with S3 credentials of its own store")


def expires_at(began: datetime, ttl: timedelta) -> datetime:
    return began + ttl


def signing_ttl(expires: datetime, now: datetime) -> timedelta:
    """What is left until ``expires``, in whole seconds down: a URL signed for it expires no
    later than its DebugDownload, which is deleted then. ConfigError when nothing is left."""
    left = timedelta(seconds=int((expires - now).total_seconds()))
    if left < timedelta(seconds=1):
        raise errors.ConfigError(f"the request expired at {stamp(expires)} before it was answered; ask again")
    return left


def seconds_left(status: Mapping[str, Any], now: datetime) -> float:
    """Seconds until the DebugDownload's ``expiresAt`` (0 or less: delete it now)."""
    return (parse_stamp(str(status["expiresAt"])) - now).total_seconds()


def ready_status(bundles: Sequence[StoredBundle], urls: Sequence[str], expires: datetime) -> dict[str, Any]:
    """The answer: a URL per bundle, with what the capture's status says of it, so the client can
    check it is the bundle it read there."""
    pods = ", ".join(b.pod for b in bundles)
    return {"phase": "Ready", "expiresAt": stamp(expires),
            "message": f"{len(bundles)} URL(s), for pod {pods}, valid until {stamp(expires)}",
            "urls": [{"pod": b.pod, "key": b.key, "url": url, "sha256": b.sha256, "sizeBytes": b.size}
                     for b, url in zip(bundles, urls, strict=True)]}


def failed_status(message: str, expires: datetime, retry_after: datetime | None = None) -> dict[str, Any]:
    """A refusal; it expires like an answer, so the operator deletes it as well. ``retry_after``:
    a request made from then on would be answered (the plugin asks again once, by itself)."""
    status = {"phase": "Failed", "message": errors.shorten(message, 1024), "expiresAt": stamp(expires)}
    if retry_after is not None:
        status["retryAfter"] = stamp(retry_after)
    return status


class PolicyNotInForce(errors.ConfigError):
    """The request was made before the admission policy checked requests as it does now."""

    def __init__(self, message: str, since: datetime) -> None:
        super().__init__(message)
        self.since = since


# The check the shipped policy makes (deploy/admission/debugcap-downloads.yaml, the chart's alike):
# a policy of that name that checks something else, or a binding that leaves some requests out,
# lets some users read captures they may not get.
POLICY_EXPRESSION = ("authorizer.group('debugcap.io').resource('debugcaptures').namespace(request.namespace)"
                     ".name(object.spec.capture).check('get').allowed()")
# How long after the policy (or its binding) is created the API server may still admit without
# it: it loads them asynchronously. A request made before that was not checked.
POLICY_SETTLE = timedelta(seconds=10)


def _covers_every_creation(rule: Mapping[str, Any], match_policy: str) -> bool:
    """Whether one resourceRule matches the creation of every DebugDownload, in any version."""
    def has(key: str, *values: str) -> bool:
        return bool(set(rule.get(key) or []) & {*values, "*"})

    versions_ok = "*" in (rule.get("apiVersions") or []) or match_policy == "Equivalent"
    return (has("apiGroups", "debugcap.io") and has("resources", "debugdownloads") and has("operations", "CREATE")
            and versions_ok and rule.get("scope", "*") in ("*", "Namespaced") and not rule.get("resourceNames"))


def policy_problems(policy: Mapping[str, Any], binding: Mapping[str, Any], name: str) -> list[str]:
    """What makes the installed policy and binding weaker than the shipped ones; empty when none.
    The API server's defaults (empty selectors, matchPolicy Equivalent, scope "*") are not."""
    spec, bound = policy.get("spec") or {}, binding.get("spec") or {}
    problems = []
    expressions = ["".join(str(v.get("expression", "")).split()) for v in spec.get("validations") or []]
    if "".join(POLICY_EXPRESSION.split()) not in expressions:
        problems.append("the policy does not make the check that the requester may get the capture")
    constraints = spec.get("matchConstraints") or {}
    match_policy = str(constraints.get("matchPolicy") or "Equivalent")
    covers = any(_covers_every_creation(r, match_policy) for r in constraints.get("resourceRules") or [])
    narrowed = any(constraints.get(k) for k in ("namespaceSelector", "objectSelector", "excludeResourceRules"))
    if not covers or narrowed or spec.get("matchConditions") or spec.get("failurePolicy", "Fail") != "Fail":
        problems.append("the policy skips some creations of DebugDownloads (matchConstraints, matchConditions, "
                        "or failurePolicy Ignore)")
    if spec.get("paramKind") or bound.get("paramRef"):
        # With a missing parameter (parameterNotFoundAction: Allow) the validations never run.
        problems.append("the policy takes parameters (paramKind/paramRef), which can leave it unevaluated")
    if bound.get("policyName") != name or "Deny" not in (bound.get("validationActions") or []):
        problems.append(f'the binding does not deny with the policy "{name}" (policyName {bound.get("policyName")!r}, '
                        f"validationActions {bound.get('validationActions')})")
    match = bound.get("matchResources") or {}
    if any(match.get(k) for k in ("namespaceSelector", "objectSelector", "excludeResourceRules", "resourceRules")):
        problems.append("the binding applies to some namespaces or objects only (matchResources)")
    return problems


def _last_changed(obj: Mapping[str, Any]) -> datetime | None:
    """When the object was created or last changed (its spec: a policy weakened and fixed again
    keeps its creationTimestamp, but its managedFields say when it was applied)."""
    meta = obj.get("metadata") or {}
    times = [meta.get("creationTimestamp")]
    times += [f.get("time") for f in meta.get("managedFields") or [] if f.get("subresource") != "status"]
    parsed = [parse_stamp(str(t)) for t in times if t]
    return max(parsed) if parsed else None


def in_force_since(policy: Mapping[str, Any], binding: Mapping[str, Any]) -> datetime | None:
    """From when requests are checked as they are now: the later of the two objects' last change,
    plus the time the API server takes to load them; None when neither says when. The times are
    the API server's own, compared with the request's creationTimestamp, also the API server's
    (several API servers must keep their clocks within POLICY_SETTLE of each other)."""
    made = [t for t in (_last_changed(policy), _last_changed(binding)) if t is not None]
    return max(made) + POLICY_SETTLE if made else None
