{{/* The selected service's catalog entry; fails the render for a missing or unknown service. */}}
{{- define "demo-service.spec" -}}
{{- $name := required "set the value `service` (gateway-a, service-b or service-c)" .Values.service -}}
{{- $spec := index .Values.catalog $name -}}
{{- if not $spec -}}
{{- fail (printf "unknown service %q; known: %s" $name (keys .Values.catalog | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toYaml $spec -}}
{{- end -}}

{{/* The service's version from the environment's version file. */}}
{{- define "demo-service.version" -}}
{{- $entry := index .Values.services .Values.service | default dict -}}
{{- required (printf "the version file has no services.%s.version" .Values.service) $entry.version -}}
{{- end -}}

{{- define "demo-service.labels" -}}
app.kubernetes.io/name: {{ .Values.service }}
app.kubernetes.io/part-of: bluegreen-demo
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
