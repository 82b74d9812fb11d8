{{/* Whether the analysis server runs in the cluster: on when the version file says so, and on kind. */}}
{{- define "analysis.inCluster" -}}
{{- if or .Values.analysis.server.enabled (eq .Values.flavour "kind") -}}true{{- end -}}
{{- end -}}

{{/* The Prometheus the server and bgh-error-rate read: on kind, the one bgh runs there. */}}
{{- define "analysis.prometheusUrl" -}}
{{- if eq .Values.flavour "kind" -}}
{{ .Values.kind.prometheusUrl }}
{{- else -}}
{{ .Values.analysis.prometheusUrl }}
{{- end -}}
{{- end -}}

{{/* A duration of whole seconds or minutes (30s, 5m) as a number of seconds. */}}
{{- define "analysis.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "m" $d -}}{{ mul (atoi (trimSuffix "m" $d)) 60 }}
{{- else if hasSuffix "s" $d -}}{{ atoi (trimSuffix "s" $d) }}
{{- else -}}{{ fail (printf "analysis durations are whole seconds or minutes (30s, 5m), not %q" $d) }}
{{- end -}}
{{- end -}}

{{/* How far back the judge looks. On kind, Prometheus scrapes every kind.scrapeInterval (5 s,
     as on the local target; a cluster's own Prometheus may scrape less often), and a rate over
     fewer than four scrapes is often empty, which the judge rightly calls Inconclusive: the
     window is at least four scrape intervals there. */}}
{{- define "analysis.window" -}}
{{- $window := include "analysis.seconds" .Values.analysis.window | atoi -}}
{{- if eq .Values.flavour "kind" -}}
{{- $floor := mul (include "analysis.seconds" .Values.kind.scrapeInterval | atoi) 4 -}}
{{- max $window $floor -}}s
{{- else -}}
{{- $window -}}s
{{- end -}}
{{- end -}}

{{/* bgh-judge measures once, after initialDelay: never before a whole window of data exists. */}}
{{- define "analysis.initialDelay" -}}
{{- $delay := include "analysis.seconds" .Values.analysis.initialDelay | atoi -}}
{{- $window := include "analysis.seconds" (include "analysis.window" .) | atoi -}}
{{- max $delay $window -}}s
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
