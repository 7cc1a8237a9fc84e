"""The debugcap.io API's names, shared by the operator and the kubectl plugin.

Both front ends speak the same resources; they must never import each other, so the
vocabulary lives here, in the core.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "debugcap.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CAPTURES: Final = "debugcaptures"
SCHEDULES: Final = "debugschedules"
TEMPLATES: Final = "debugcapturetemplates"
TRIGGERS: Final = "debugtriggers"
# A user's request for short-lived presigned URLs to a capture's bundles (docs/captures.md).
DOWNLOADS: Final = "debugdownloads"
# The ValidatingAdmissionPolicy (and its binding, of the same name) that lets only users who may
# get a DebugCapture create a DebugDownload of it; the operator answers no request without them.
DOWNLOAD_POLICY: Final = "debugcap-downloads"

# The label a DebugSchedule puts on the captures it creates; the operator's schedules find their
# runs by it, and its captures take the scheduled TTL.
SCHEDULE_LABEL: Final = f"{GROUP}/schedule"

# The labels a DebugTrigger puts on the captures it fires: which trigger, and which signal. The
# trigger counts its firings (cooldown, maxCapturesPerHour) from the captures carrying them.
TRIGGER_LABEL: Final = f"{GROUP}/trigger"
REASON_LABEL: Final = f"{GROUP}/trigger-reason"
# What can fire a DebugTrigger: its spec.when fields, and a DebugCapture's spec.firing.reason.
FIRING_REASONS: Final = ("memoryPercentOfLimit", "goroutines", "goroutineGrowthPerMinute", "restarted", "alert")

WORKLOAD_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")

# spec.parameters (camelCase, Kubernetes style) -> template parameters (snake_case, the YAML
# templates' style). pprofPort, timeoutSeconds and deadlineSeconds are not template parameters:
# they tune how the engine reaches the pod, so they travel separately.
TEMPLATE_PARAMETERS: Final = {
    "cpuSeconds": "cpu_seconds",
    "traceSeconds": "trace_seconds",
    "logLines": "log_lines",
    "snapshots": "snapshots",
    "intervalSeconds": "interval_seconds",
}
ENGINE_PARAMETERS: Final = ("pprofPort", "timeoutSeconds", "deadlineSeconds")
# How the engine reaches the pod (strings): where the exec collectors run, how the Go endpoints
# are reached, which toolbox image an ephemeral debug container uses (the operator allows only
# the images its settings list: a capture must not choose code to run in someone's pod).
ACCESS_PARAMETERS: Final = ("commandMode", "transport", "debugImage")
