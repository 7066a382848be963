{{/* The chart's name, and the release's resource name (at most 63 characters). */}}
{{- define "llmgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmgate.fullname" -}}
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

{{- define "llmgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "llmgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret the pods read their environment from, if any. */}}
{{- define "llmgate.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if or .Values.secrets .Values.databaseUrl .Values.redisUrl }}
{{- include "llmgate.fullname" . }}
{{- end }}
{{- end }}

{{/*
config.yaml as mounted: `config` with the settings the chart's layout needs, unless they are set.
The config's directory is read-only, so what llmgate writes beside it by default goes to the
writable /app/data: the spend spill directory, and the SQLite database when no DATABASE_URL can
come from the chart's values (`databaseUrl`, `secrets.DATABASE_URL`) or from `existingSecret`.
With `redisUrl`, the router's Redis is REDIS_URL.
*/}}
{{- define "llmgate.config" -}}
{{- $config := deepCopy (default (dict) .Values.config) }}
{{- $general := default (dict) (get $config "general_settings") }}
{{- if not (hasKey $general "spend_spill_dir") }}
{{- $_ := set $general "spend_spill_dir" "/app/data/spill" }}
{{- end }}
{{- $databaseFromEnv := or .Values.databaseUrl .Values.existingSecret (hasKey (default (dict) .Values.secrets) "DATABASE_URL") }}
{{- if not (or $databaseFromEnv (hasKey $general "database_url")) }}
{{- $_ := set $general "database_url" "sqlite:///app/data/llmgate.db" }}
{{- end }}
{{- $_ := set $config "general_settings" $general }}
{{- if .Values.redisUrl }}
{{- $router := default (dict) (get $config "router_settings") }}
{{- if not (or (hasKey $router "redis_url") (hasKey $router "redis_host")) }}
{{- $_ := set $router "redis_url" "os.environ/REDIS_URL" }}
{{- end }}
{{- $_ := set $config "router_settings" $router }}
{{- end }}
{{- toYaml $config }}
{{- end }}
