{{/* The `helm test` hook's names and namespace (tests/selftest-*.yaml, debugcap/operator/selftest.py). */}}
{{- define "debugcap.tests.name" -}}
{{- printf "%s-test" (include "debugcap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Where the test's pod and DebugCapture go: tests.namespace, else the first served namespace, else
(every namespace served) the release's. It must be one the operator serves.
*/}}
{{- define "debugcap.tests.namespace" -}}
{{- $ns := .Values.namespaces -}}
{{- $where := (.Values.tests | default dict).namespace | default (first (default (list .Release.Namespace) $ns)) -}}
{{- if and $ns (not (has $where $ns)) -}}
{{- fail (printf "tests.namespace %q is not among namespaces %v: the operator would never capture there; name one of them, or turn the test off with tests.enabled=false" $where $ns) -}}
{{- end -}}
{{- $where -}}
{{- end -}}

{{/* Not the operator's selector labels: no Service, budget or `-l` of the operator's pods picks the test's. */}}
{{- define "debugcap.tests.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "debugcap.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The ValidatingAdmissionPolicy (and its binding) that holds the test's pods create to its target pod. */}}
{{- define "debugcap.tests.policyName" -}}
{{- printf "%s-test-pods" (include "debugcap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
