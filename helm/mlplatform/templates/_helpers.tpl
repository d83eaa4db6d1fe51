{{/* Names, labels and the few computed values every template shares. */}}

{{- define "mlplatform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "mlplatform.fullname" -}}
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

{{- define "mlplatform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mlplatform.labels" -}}
helm.sh/chart: {{ include "mlplatform.chart" . }}
{{ include "mlplatform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlplatform
{{- end }}

{{- define "mlplatform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlplatform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Every serving pod, stable and canary: what the Service selects. */}}
{{- define "mlplatform.servingSelectorLabels" -}}
{{ include "mlplatform.selectorLabels" . }}
app.kubernetes.io/component: serving
{{- end }}

{{- define "mlplatform.mlflowSelectorLabels" -}}
{{ include "mlplatform.selectorLabels" . }}
app.kubernetes.io/component: mlflow
{{- end }}

{{- define "mlplatform.mlflowName" -}}
{{- printf "%s-mlflow" (include "mlplatform.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mlplatform.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlplatform.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image of a track: stable uses image.tag (default appVersion), canary canary.image.tag. */}}
{{- define "mlplatform.image" -}}
{{- $repository := required "image.repository is required: the registry path of the mlplatform image" .root.Values.image.repository }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .tag) }}
{{- end }}

{{/* MLflow as the platform sees it: config.mlflowTrackingUri, else this release's MLflow server. */}}
{{- define "mlplatform.mlflowTrackingUri" -}}
{{- if .Values.config.mlflowTrackingUri }}
{{- .Values.config.mlflowTrackingUri }}
{{- else if .Values.mlflow.enabled }}
{{- printf "http://%s:%d" (include "mlplatform.mlflowName" .) (int .Values.mlflow.port) }}
{{- else }}
{{- fail "config.mlflowTrackingUri is required when mlflow.enabled is false: the service needs a model registry" }}
{{- end }}
{{- end }}

{{/* Serving pods of the stable track when autoscaling is off (the HPA's floor when it is on). */}}
{{- define "mlplatform.stableReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Canary pods so that canary / (stable + canary) is at least canary.share: ceil(stable * share / (1 - share)),
at least 1 (less a rounding error's worth, so 9 stable pods at 0.1 make 1 canary, not 2). */}}
{{- define "mlplatform.canaryReplicas" -}}
{{- $share := float64 .Values.canary.share }}
{{- if or (le $share 0.0) (ge $share 1.0) }}
{{- fail (printf "canary.share must be above 0 and below 1, got %v" .Values.canary.share) }}
{{- end }}
{{- $stable := float64 (include "mlplatform.stableReplicas" .) }}
{{- max 1 (int (ceil (subf (divf (mulf $stable $share) (subf 1.0 $share)) 0.000001))) }}
{{- end }}

{{/* Object-storage variables shared by the serving and MLflow containers; values only, credentials by reference. */}}
{{- define "mlplatform.storageEnv" -}}
{{- with .Values.storage.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.secrets.storage.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.secrets.storage.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.secrets.storage.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{- define "mlplatform.extraEnvFrom" -}}
{{- range .Values.secrets.extraEnvFrom }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end }}

{{/* The writable scratch volumes of a pod whose root filesystem is read-only. */}}
{{- define "mlplatform.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
- name: home
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
{{- end }}

{{- define "mlplatform.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /var/lib/mlplatform
{{- end }}
