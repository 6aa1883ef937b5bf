{{/*
Names, labels, and the worker's configuration rendered from the values.
*/}}

{{- define "ak2vault.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ak2vault.fullname" -}}
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

{{- define "ak2vault.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The pods' identity: what every selector uses. It never changes across
upgrades (a Deployment's selector cannot).
*/}}
{{- define "ak2vault.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ak2vault.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{/* The recommended labels, of every object but the token reviewer's. */}}
{{- define "ak2vault.labels" -}}
{{ include "ak2vault.selectorLabels" . }}
{{ include "ak2vault.commonLabels" . }}
{{- end }}

{{- define "ak2vault.commonLabels" -}}
app.kubernetes.io/part-of: ak2vault
app.kubernetes.io/version: {{ include "ak2vault.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "ak2vault.chart" . }}
{{- end }}

{{- define "ak2vault.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ak2vault.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ak2vault.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: the existing ServiceAccount to run as" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Kafka: is SASL or TLS on, and KEDA's name of the SASL mechanism. */}}
{{- define "ak2vault.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{- define "ak2vault.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{- define "ak2vault.kedaSasl" -}}
{{- get (dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512") .Values.kafka.sasl.mechanism }}
{{- end }}

{{/* Where the Secrets' files are mounted; the configuration names them. */}}
{{- define "ak2vault.paths" -}}
authentikToken: /var/run/secrets/ak2vault/authentik/token
vaultJwt: /var/run/secrets/kubernetes.io/serviceaccount/token
vaultDir: /var/run/secrets/ak2vault/vault
kafkaPassword: /var/run/secrets/ak2vault/kafka/password
kafkaCa: /var/run/secrets/ak2vault/kafka-ca/ca.crt
vaultCa: /var/run/secrets/ak2vault/vault-ca/ca.crt
authentikCa: /var/run/secrets/ak2vault/authentik-ca/ca.crt
{{- end }}

{{/*
The configuration as {group: {setting: value}}, in YAML, before
config.extra is merged over it. The Kafka brokers, topic and group are not
in it: the pods get them as KAFKA_BROKERS, KAFKA_TOPIC and KAFKA_GROUP from
the ConfigMap <fullname>-kafka, as docker/kubernetes does.
*/}}
{{- define "ak2vault.settings" -}}
{{- $p := include "ak2vault.paths" . | fromYaml }}
{{- $v := .Values.vault }}
kafka:
  {{- $props := list }}
  {{- if ne .Values.kafka.securityProtocol "PLAINTEXT" }}
  {{- $props = append $props (list "security.protocol" .Values.kafka.securityProtocol) }}
  {{- end }}
  {{- if include "ak2vault.kafkaSasl" . }}
  {{- $props = append $props (list "sasl.mechanism" .Values.kafka.sasl.mechanism) }}
  {{- $props = append $props (list "sasl.username" "@env:KAFKA_SASL_USERNAME") }}
  {{- $props = append $props (list "sasl.password" (printf "@file:%s" $p.kafkaPassword)) }}
  {{- end }}
  {{- if and (include "ak2vault.kafkaTls" .) .Values.kafka.tls.caSecret }}
  {{- $props = append $props (list "ssl.ca.location" $p.kafkaCa) }}
  {{- end }}
  {{- range $k := keys .Values.kafka.extraProperties | sortAlpha }}
  {{- $props = append $props (list $k (get $.Values.kafka.extraProperties $k)) }}
  {{- end }}
  {{- if $props }}
  properties: {{ $props | toJson }}
  {{- end }}
authentik:
  url: {{ .Values.authentik.url | quote }}
  token_file: {{ $p.authentikToken }}
  {{- if .Values.authentik.tls.caSecret }}
  tls:
    ca_file: {{ $p.authentikCa }}
  {{- end }}
vault:
  addr: {{ $v.addr | quote }}
  {{- with $v.namespace }}
  namespace: {{ . | quote }}
  {{- end }}
  auth:
    method: {{ $v.auth.method }}
    {{- if eq $v.auth.method "kubernetes" }}
    mount: {{ $v.auth.mount | default "kubernetes" | quote }}
    role: {{ $v.auth.kubernetes.role | quote }}
    jwt_file: {{ $p.vaultJwt }}
    {{- else if eq $v.auth.method "approle" }}
    mount: {{ $v.auth.mount | default "approle" | quote }}
    role_id_file: {{ printf "%s/%s" $p.vaultDir $v.auth.approle.roleIdKey }}
    secret_id_file: {{ printf "%s/%s" $p.vaultDir $v.auth.approle.secretIdKey }}
    {{- end }}
  {{- if eq $v.auth.method "token" }}
  token_file: {{ printf "%s/%s" $p.vaultDir $v.auth.token.key }}
  {{- end }}
  {{- if $v.tls.caSecret }}
  tls:
    ca_file: {{ $p.vaultCa }}
  {{- end }}
  kv_mount: {{ $v.kvMount | quote }}
  prefix: {{ $v.prefix | quote }}
  on_delete: {{ $v.onDelete | quote }}
{{- with .Values.kafka.dlqTopic }}
dlq:
  topic: {{ . | quote }}
{{- end }}
sync:
  shutdown_timeout_ms: {{ int64 .Values.config.shutdownTimeoutMs }}
metrics:
  listen: {{ printf ":%d" (int64 .Values.config.metricsPort) | quote }}
log:
  {{- if ne .Values.config.logLevel "info" }}
  level: {{ .Values.config.logLevel | quote }}
  {{- end }}
  format: {{ .Values.config.logFormat | quote }}
{{- end }}

{{/*
ak2vault.cfg: the settings in libconfig's syntax, one group after the
other. (dict "v" VALUE "indent" N) for a value, a group's body for a map.
*/}}
{{- define "ak2vault.cfg" -}}
{{- $s := mustMergeOverwrite (include "ak2vault.settings" . | fromYaml) (deepCopy .Values.config.extra) -}}
# ak2vault's configuration, rendered by the Helm chart from its values
# (release {{ .Release.Name }}). Only what differs from the defaults is set;
# `ak2vault config-reference` lists every setting. Kafka's brokers, topic
# and group come from the environment (KAFKA_BROKERS, KAFKA_TOPIC,
# KAFKA_GROUP), as does the group instance id (the pod name).
{{- range $g := keys $s | sortAlpha }}
{{- if get $s $g }}

{{ $g }}:
{
{{- include "ak2vault.cfgBody" (dict "m" (get $s $g) "indent" 2) }}
};
{{- end }}
{{- end }}
{{- end }}

{{- define "ak2vault.cfgBody" -}}
{{- $pad := repeat (int .indent) " " }}
{{- range $k := keys .m | sortAlpha }}
{{- $v := get $.m $k }}
{{- if kindIs "map" $v }}
{{ $pad }}{{ $k }}:
{{ $pad }}{
{{- include "ak2vault.cfgBody" (dict "m" $v "indent" (add $.indent 2)) }}
{{ $pad }}};
{{- else if eq $k "properties" }}
{{ $pad }}{{ $k }} = (
{{- range $i, $pair := $v }}
{{ $pad }}  ({{ include "ak2vault.cfgValue" (index $pair 0) }}, {{ include "ak2vault.cfgValue" (index $pair 1) }}){{ if lt (add1 $i) (len $v) }},{{ end }}
{{- end }}
{{ $pad }});
{{- else }}
{{ $pad }}{{ $k }} = {{ include "ak2vault.cfgValue" $v }};
{{- end }}
{{- end }}
{{- end }}

{{/* One value: a string quoted and escaped, a list as an array. */}}
{{- define "ak2vault.cfgValue" -}}
{{- if kindIs "string" . -}}
"{{ . | replace "\\" "\\\\" | replace "\"" "\\\"" }}"
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if kindIs "slice" . -}}
[ {{ range $i, $e := . }}{{ if $i }}, {{ end }}{{ include "ak2vault.cfgValue" $e }}{{ end }} ]
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{ int64 . }}
{{- else if kindIs "invalid" . -}}
{{ fail "config.extra: a setting without a value" }}
{{- else -}}
{{ . }}
{{- end }}
{{- end }}

{{/* The port of a URL: its own, else the scheme's. */}}
{{- define "ak2vault.urlPort" -}}
{{- $u := urlParse . }}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if eq $u.scheme "http" }}80{{ else }}443{{ end }}
{{- end }}

{{/* The brokers' ports, once each, comma-separated. */}}
{{- define "ak2vault.brokerPorts" -}}
{{- $ports := list }}
{{- range $b := splitList "," .Values.kafka.brokers }}
{{- $port := regexFind ":[0-9]+$" (trim $b) | trimPrefix ":" | default "9092" }}
{{- $ports = append $ports $port }}
{{- end }}
{{- $ports | uniq | join "," }}
{{- end }}
