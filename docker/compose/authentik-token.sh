#!/bin/sh
# One-shot of the compose stack: gives the sync service account's API token
# (identifier ak2vault-worker, created by configs/authentik/blueprint.yaml)
# the key AK2VAULT_AUTHENTIK_TOKEN from docker/.env, which the ak2vault
# workers read as their authentik.token_file. The blueprint never sets a
# key (authentik generates one); on a real installation an administrator
# copies it into the workers' secret instead (README, "The authentik side").
#
# Waits until authentik answers and the blueprint has created the token,
# then POSTs .../set_key/ as akadmin (AUTHENTIK_BOOTSTRAP_TOKEN). Secrets go
# to curl on its standard input, never on its command line.
set -eu

url=${AUTHENTIK_URL:-http://authentik-server:9000}
: "${AUTHENTIK_BOOTSTRAP_TOKEN:?missing}" "${AK2VAULT_AUTHENTIK_TOKEN:?missing}"
api=$url/api/v3/core/tokens/ak2vault-worker

# curl with the admin token from a configuration on stdin; extra
# configuration lines in $1.
admin_curl() {
    printf 'header = "Authorization: Bearer %s"\n%s\n' \
        "$AUTHENTIK_BOOTSTRAP_TOKEN" "${1:-}" |
        curl -fsS --config - "$2"
}

tries=0
until admin_curl 'output = "/dev/null"' "$api/" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
        echo "authentik-token.sh: no token ak2vault-worker after 10 minutes" \
            "(is the blueprint applied?)" >&2
        exit 1
    fi
    sleep "${WAIT_SECONDS:-5}"
done
admin_curl "$(printf 'request = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"key\\": \\"%s\\"}"' \
    "$AK2VAULT_AUTHENTIK_TOKEN")" "$api/set_key/"
echo "authentik-token.sh: token ak2vault-worker has the key from docker/.env"
