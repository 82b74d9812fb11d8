{{/* Whether the analysis server runs in the cluster: on when the version file says so, and on kind. */}}
{{- define "analysis.inCluster" -}}
{{- if or .Values.analysis.server.enabled (eq .Values.flavour "kind") -}}true{{- end -}}
{{- end -}}

{{/* The Prometheus the server and bgh-error-rate read: the Istio addon on kind. */}}
{{- define "analysis.prometheusUrl" -}}
{{- if eq .Values.flavour "kind" -}}
{{ .Values.kind.prometheusUrl }}
{{- else -}}
{{ .Values.analysis.prometheusUrl }}
{{- end -}}
{{- end -}}

{{/* Where bgh-judge calls the server: its Service in the cluster, else judgeUrl. */}}
{{- define "analysis.judgeUrl" -}}
{{- if include "analysis.inCluster" . -}}
http://bgh-analysis.{{ .Release.Namespace }}.svc:{{ .Values.analysis.server.port }}
{{- else -}}
{{ trimSuffix "/" .Values.analysis.judgeUrl }}
{{- end -}}
{{- end -}}

{{- define "analysis.labels" -}}
app.kubernetes.io/name: bgh-analysis
app.kubernetes.io/part-of: bluegreen-demo
{{- end -}}
