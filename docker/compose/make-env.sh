#!/bin/sh
# Writes docker/.env, the secrets of the compose stack (docker/compose.yaml),
# with fresh random values. Refuses to overwrite an existing file: the
# database password and authentik's secret key must stay what they were
# when the volumes were created.
#
#   docker/compose/make-env.sh        then: docker compose -f docker/compose.yaml up -d --build
set -eu

env_file=$(dirname "$0")/../.env
if [ -e "$env_file" ]; then
    echo "make-env.sh: $env_file exists; not overwritten" >&2
    exit 1
fi

# N random bytes as hex.
rand() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

umask 077
cat >"$env_file" <<END
# Secrets of the ak2vault compose stack, made by docker/compose/make-env.sh.
# Keep this file out of version control (.gitignore lists it).
PG_PASS=$(rand 24)
AUTHENTIK_SECRET_KEY=$(rand 48)
# akadmin's password (http://127.0.0.1:9000/) and an API token for it.
AUTHENTIK_BOOTSTRAP_PASSWORD=$(rand 16)
AUTHENTIK_BOOTSTRAP_TOKEN=$(rand 32)
# The key of the sync service account's token: the authentik-token-setup
# one-shot sets it, the ak2vault workers read it.
AK2VAULT_AUTHENTIK_TOKEN=$(rand 32)
# Vault's dev-mode root token (vault-setup uses it once).
VAULT_DEV_ROOT_TOKEN_ID=$(rand 16)
END
echo "make-env.sh: wrote $env_file"
