{{/* Names: <release>-herald, or the release name when it already contains "herald". */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of one component's objects: <fullname>-<component>. Call with (list $ "collector"). */}}
{{- define "herald.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "herald.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects a component's pods: never changes across upgrades. (list $ "collector") */}}
{{- define "herald.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "herald.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The standard labels of every object. (list $ "collector"); an empty component for shared objects. */}}
{{- define "herald.labels" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
helm.sh/chart: {{ include "herald.chart" $root }}
app.kubernetes.io/name: {{ include "herald.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- if $component }}
app.kubernetes.io/component: {{ $component }}
{{- end }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: herald
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "herald.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The container fields every Herald container shares: image, pull policy, security context. */}}
{{- define "herald.containerBase" -}}
image: {{ include "herald.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/* The pod fields every Herald pod shares. */}}
{{- define "herald.podBase" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Scheduling of a component: (dict "root" $ "values" .Values.collector). */}}
{{- define "herald.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Env entries from a name: value map (a service's `env`), sorted by name. YAML numbers reach
templates as floats: a whole one is written as an integer (2000000, not 2e+06). */}}
{{- define "herald.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  {{- if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
  value: {{ int64 $value | quote }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The probes of a Herald service on its metrics port: live /healthz, ready /readyz.
(dict "startupPeriod" 2 "startupFailures" 30) */}}
{{- define "herald.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: {{ .startupPeriod }}
  failureThreshold: {{ .startupFailures }}
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 10
{{- end }}

{{/* The pod annotations a Prometheus that discovers pods by annotation scrapes: only without the
ServiceMonitor, which scrapes the same pods through their Service (both would scrape each pod twice,
under two jobs). (list $ metricsPort) */}}
{{- define "herald.scrapeAnnotations" -}}
{{- $root := index . 0 }}
{{- if not $root.Values.metrics.serviceMonitor.enabled -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
{{- end }}
{{- end }}

{{/* Every pod gets a writable /tmp, the root filesystem being read-only. */}}
{{- define "herald.tmpMount" -}}
- {name: tmp, mountPath: /tmp}
{{- end }}
{{- define "herald.tmpVolume" -}}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- end }}

{{/* HERALD_DATABASE_URL from the existing Secret. */}}
{{- define "herald.databaseEnv" -}}
- name: HERALD_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.dispatcher.database.existingSecret }}, key: {{ .Values.dispatcher.database.key }}}
{{- end }}

{{/* The enabled long-running services, with their values: a list of (dict "component" "values"). */}}
{{- define "herald.services" -}}
{{- $out := list }}
{{- range $component := list "collector" "processor" "dispatcher" }}
{{- $values := index $.Values $component }}
{{- if $values.enabled }}
{{- $out = append $out (dict "component" $component "values" $values) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The collector's largest record (HERALD_KAFKA_MESSAGE_MAX_BYTES, its default 1000000): the raw
topic must take it. */}}
{{- define "herald.messageMaxBytes" -}}
{{- index .Values.collector.env "HERALD_KAFKA_MESSAGE_MAX_BYTES" | default 1000000 | int64 }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "herald.checks" -}}
{{- $t := .Values.topics }}
{{- if and $t.strimzi.enabled $t.job.enabled }}
{{- fail "topics.strimzi.enabled and topics.job.enabled are both true: Strimzi's topic operator and the topics Job would both manage the topics; set topics.job.enabled=false with Strimzi" }}
{{- end }}
{{- if and $t.replicationFactor $t.minInsyncReplicas }}
{{- if gt (int64 $t.minInsyncReplicas) (int64 $t.replicationFactor) }}
{{- fail (printf "topics.minInsyncReplicas (%d) must be at most topics.replicationFactor (%d): no write would succeed" (int64 $t.minInsyncReplicas) (int64 $t.replicationFactor)) }}
{{- end }}
{{- end }}
{{- end }}
