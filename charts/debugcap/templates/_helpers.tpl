{{- define "debugcap.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "debugcap.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "debugcap.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "debugcap.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "debugcap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "debugcap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "debugcap.downloadPolicyName" -}}
{{- printf "%s-downloads" (include "debugcap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "debugcap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "debugcap.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Rules on namespaced objects: in a ClusterRole when every namespace is served, else in a Role in
each served namespace. Only what the operator and its collectors call; see docs/operator.md.
*/}}
{{- define "debugcap.namespacedRules" -}}
# Resolve targets (pod, selector) and read the pod for the pod-yaml collector.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# exec collectors (ps, sockets, disk, ...) and pprof/trace through a port-forward. The websocket
# upgrade is a GET, authorized as "get"; Kubernetes >= 1.30 checks "create" as well
# (AuthorizePodWebsocketUpgradeCreatePermission). With "create" alone the operator's pod got
# 403 "cannot get resource pods/portforward" (the chart's e2e test, Kubernetes 1.34).
- apiGroups: [""]
  resources: [pods/exec, pods/portforward]
  verbs: [get, create]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- if .Values.debugContainer.enabled }}
# The exec collectors of a shell-less (distroless, scratch) target run in an ephemeral debug
# container (docs/shell-less-pods.md); it is added with a patch of this subresource.
- apiGroups: [""]
  resources: [pods/ephemeralcontainers]
  verbs: [patch]
{{- end }}
# pprof, trace, expvar and /metrics through the API server's pods/proxy, when auto cannot reach
# the pod IP itself or spec.parameters.transport is proxy (docs/transports.md).
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
# list: the events collector; create: the Events the operator posts on DebugCaptures.
- apiGroups: [""]
  resources: [events]
  verbs: [list, create]
{{- if .Values.rbac.workloads }}
# spec.target.workload
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get]
{{- end }}
# kopf watches and patches (finalizers, annotations) them; the expiry daemon deletes captures;
# DebugSchedules create them; status is written through the /status subresource.
- apiGroups: [debugcap.io]
  resources: [debugcaptures]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [debugcap.io]
  resources: [debugschedules]
  verbs: [get, list, watch, patch]
# DebugTriggers: kopf watches them; the webhook receiver lists those of an alert's namespace.
- apiGroups: [debugcap.io]
  resources: [debugtriggers]
  verbs: [get, list, watch, patch]
# DebugDownloads: kopf watches and patches them (annotations, the finalizer of the expiry daemon),
# their status gets the presigned URLs, and they are deleted when the URLs expire. Granted even
# with operator.presignedDownloads off: requests made before are still deleted.
- apiGroups: [debugcap.io]
  resources: [debugdownloads]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [debugcap.io]
  resources: [debugcaptures/status, debugschedules/status, debugtriggers/status, debugdownloads/status]
  verbs: [get, patch]
# A schedule's and a trigger's captures have it as owner with blockOwnerDeletion.
- apiGroups: [debugcap.io]
  resources: [debugcaptures/finalizers, debugschedules/finalizers, debugtriggers/finalizers]
  verbs: [update]
{{- end -}}

{{/*
kube-system is served only when asked for: serveKubeSystem: true, with a list naming it or with
[] (every namespace, kube-system included).
*/}}
{{- define "debugcap.checkNamespaces" -}}
{{- if not .Values.serveKubeSystem -}}
{{- if not .Values.namespaces -}}
{{- fail "namespaces is empty, which serves every namespace, kube-system included: list the namespaces to serve (namespaces={shop,web}), or set serveKubeSystem=true as well to serve them all" -}}
{{- else if has "kube-system" .Values.namespaces -}}
{{- fail "namespaces lists kube-system: the operator would exec and port-forward into the cluster's own pods; remove it, or set serveKubeSystem=true to mean it" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Rules on cluster-scoped objects: always in a ClusterRole. */}}
{{- define "debugcap.clusterRules" -}}
# A capture's namespace labels: a DebugCaptureTemplate's spec.namespaceSelector, and the opt-in
# label debugcap.io/commands=allowed of templates' command steps. Read by name only (no list or
# watch); without it those templates are refused and command steps skipped.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
- apiGroups: [debugcap.io]
  resources: [debugcapturetemplates]
  verbs: [get, list, watch, patch]
- apiGroups: [debugcap.io]
  resources: [debugcapturetemplates/status]
  verbs: [get, patch]
- apiGroups: [debugcap.io]
  resources: [debugcapturetemplates/finalizers]
  verbs: [update]
{{- if .Values.rbac.nodes }}
# node-conditions collector
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
{{- end }}
{{- if .Values.operator.presignedDownloads }}
# The admission policy that checks who may ask for download URLs, and its binding: the operator
# hands out none while they are missing (it reads only these two, by name).
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingadmissionpolicies, validatingadmissionpolicybindings]
  resourceNames: [{{ include "debugcap.downloadPolicyName" . }}]
  verbs: [get]
{{- end }}
{{- end -}}

{{/* The ConfigMap holding redaction.patterns (patterns.yaml), or "" when there are none. */}}
{{- define "debugcap.redactionConfigMap" -}}
{{- if .Values.redaction.existingConfigMap -}}
{{ .Values.redaction.existingConfigMap }}
{{- else if .Values.redaction.patterns -}}
{{ include "debugcap.fullname" . }}-redaction
{{- end -}}
{{- end -}}

{{- define "debugcap.metrics.serviceName" -}}
{{- printf "%s-metrics" (include "debugcap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
