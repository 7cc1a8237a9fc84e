{{/*
The Alertmanager webhook receiver (alertWebhook.*, docs/alertmanager.md): its Service's name, the
token Secret's name, where the token and the certificate are mounted, and the checks that make
rendering fail with a message naming the value to set.
*/}}

{{- define "debugcap.alertWebhook.serviceName" -}}
{{- printf "%s-alerts" (include "debugcap.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{- define "debugcap.alertWebhook.tokenSecretName" -}}
{{- $token := .Values.alertWebhook.token -}}
{{- if $token.create -}}
{{- default (printf "%s-alert-token" (include "debugcap.fullname" . | trunc 51 | trimSuffix "-")) $token.secretName -}}
{{- else -}}
{{- $token.secretName -}}
{{- end -}}
{{- end -}}

{{- define "debugcap.alertWebhook.tokenDir" -}}/etc/debugcap/alert-token{{- end -}}
{{- define "debugcap.alertWebhook.tlsDir" -}}/etc/debugcap/alert-tls{{- end -}}

{{/* Checks on values the operator would otherwise refuse at start-up, or that would clash. */}}
{{- define "debugcap.validate" -}}
{{- if lt (int .Values.operator.triggeredCaptures) 1 -}}
{{- fail (printf "operator.triggeredCaptures must be a whole number of at least 1 (got %v)" .Values.operator.triggeredCaptures) -}}
{{- end -}}
{{- $hook := .Values.alertWebhook -}}
{{- if $hook.enabled -}}
{{- if and $hook.token.create (not $hook.token.value) -}}
{{- fail "alertWebhook.token.create is true but alertWebhook.token.value is empty: set alertWebhook.token.value to the bearer token (e.g. --set-file alertWebhook.token.value=token.txt), or name an existing Secret in alertWebhook.token.secretName with create false" -}}
{{- end -}}
{{- if not (include "debugcap.alertWebhook.tokenSecretName" .) -}}
{{- fail "alertWebhook.enabled is true but alertWebhook.token.secretName is empty: set alertWebhook.token.secretName to a Secret holding Alertmanager's bearer token under the key alertWebhook.token.key (default token), or set alertWebhook.token.create=true with alertWebhook.token.value; the receiver accepts no request without a token" -}}
{{- end -}}
{{- if not $hook.token.key -}}
{{- fail "alertWebhook.token.key is empty: set it to the key of the token in the Secret alertWebhook.token.secretName" -}}
{{- end -}}
{{- $port := int $hook.port -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "alertWebhook.port must be a port number from 1 to 65535 when alertWebhook.enabled is true (got %v)" $hook.port) -}}
{{- end -}}
{{- if eq $port (int .Values.metrics.port) -}}
{{- fail (printf "alertWebhook.port and metrics.port are both %d: give the webhook receiver a port of its own" $port) -}}
{{- end -}}
{{- if eq $port (int .Values.liveness.port) -}}
{{- fail (printf "alertWebhook.port and liveness.port are both %d: give the webhook receiver a port of its own" $port) -}}
{{- end -}}
{{- end -}}
{{- end -}}
