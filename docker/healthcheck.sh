#!/bin/bash
# ak2vault-healthcheck [PATH] — the container image's HEALTHCHECK.
#
# Asks http://127.0.0.1:PORT/PATH (PATH: /livez unless given) and exits 0
# on a 200 answer, 1 otherwise. The image carries no curl or wget, so this
# speaks HTTP/1.0 over bash's /dev/tcp. PORT is AK2VAULT_HEALTH_PORT, else
# the port of AK2VAULT_METRICS_LISTEN (metrics.listen's environment
# variable), else 9464, the example configuration's.
set -u

path=${1:-/livez}
listen=${AK2VAULT_METRICS_LISTEN:-:9464}
port=${AK2VAULT_HEALTH_PORT:-${listen##*:}}
case $port in
'' | *[!0-9]*)
    echo "ak2vault-healthcheck: no port in '$listen'" >&2
    exit 1
    ;;
esac

if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
status=
IFS= read -r -t 4 status <&3
exec 3<&-
case $status in
"HTTP/1."[01]" 200 "*) exit 0 ;;
esac
echo "ak2vault-healthcheck: $path: ${status%$'\r'}" >&2
exit 1
