#!/bin/sh
# Prepares Vault for ak2vault: the KV version 2 mount, the policy, and a way
# for the worker to log in. Idempotent: run it again after changing any of
# it. POSIX sh, so that it also runs in the hashicorp/vault image (the
# compose stack's one-shot vault-setup service does).
#
#   docker/vault/setup.sh kubernetes        kubernetes auth method and role
#   docker/vault/setup.sh token FILE        a periodic token, written to FILE
#   docker/vault/setup.sh approle DIR       an AppRole; DIR/role-id, DIR/secret-id
#
# Needs the vault CLI with VAULT_ADDR and an administrator's VAULT_TOKEN
# (and VAULT_CACERT, VAULT_NAMESPACE, ... as usual). Settings, from the
# environment:
#
#   KV_MOUNT        KV version 2 mount (vault.kv_mount)            kv
#   POLICY_NAME     name of the policy                             ak2vault
#   POLICY_FILE     the policy                 ak2vault-policy.hcl beside this
#
# kubernetes:
#   AUTH_MOUNT      mount of the auth method (vault.auth.mount)    kubernetes
#   ROLE            the Vault role (vault.auth.role)               ak2vault
#   K8S_NAMESPACE   namespace of the worker's ServiceAccount       ak2vault
#   K8S_SERVICE_ACCOUNT  the worker's ServiceAccount               ak2vault
#   K8S_AUDIENCE    audience of the worker's projected token       vault
#                   (docker/kubernetes/deployment.yaml asks for it)
#   K8S_HOST        Kubernetes API URL as Vault reaches it
#                   (default https://kubernetes.default.svc: Vault in the cluster)
#   K8S_CA_CERT     file: PEM CA of the API server (Vault outside the cluster)
#   TOKEN_REVIEWER_JWT_FILE  file: JWT of the token reviewer (Vault outside
#                   the cluster; docker/kubernetes/vault-tokenreview.yaml)
#   TOKEN_TTL, TOKEN_MAX_TTL  lifetime of the worker's login tokens   1h, 24h
#
# Vault running in the cluster reviews tokens with its own ServiceAccount
# (which needs the system:auth-delegator ClusterRole, as the Vault Helm
# chart grants it); leave K8S_CA_CERT and TOKEN_REVIEWER_JWT_FILE unset.
#
# token: TOKEN_PERIOD (24h), TOKEN_OWNER (uid:gid to give FILE to). A token
# that FILE already holds and that still answers is kept.
set -eu

KV_MOUNT=${KV_MOUNT:-kv}
POLICY_NAME=${POLICY_NAME:-ak2vault}
POLICY_FILE=${POLICY_FILE:-$(dirname "$0")/ak2vault-policy.hcl}

die() {
    echo "setup.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 kubernetes | token FILE | approle DIR" >&2
    exit 64
}

# The KV version 2 mount the worker writes to.
kv_mount() {
    if vault read "sys/mounts/$KV_MOUNT" >/dev/null 2>&1; then
        version=$(vault read -field=options "sys/mounts/$KV_MOUNT" 2>/dev/null || true)
        case $version in
        *version:2*) echo "setup.sh: $KV_MOUNT/ is already a KV version 2 mount" ;;
        *) die "$KV_MOUNT/ exists but is not KV version 2 (options: $version)" ;;
        esac
    else
        vault secrets enable -path="$KV_MOUNT" -version=2 kv
    fi
}

policy() {
    [ -r "$POLICY_FILE" ] || die "cannot read $POLICY_FILE"
    vault policy write "$POLICY_NAME" "$POLICY_FILE"
}

auth_enabled() {
    vault auth list -format=json | grep -q "\"$1/\""
}

setup_kubernetes() {
    mount=${AUTH_MOUNT:-kubernetes}
    role=${ROLE:-ak2vault}
    auth_enabled "$mount" || vault auth enable -path="$mount" kubernetes
    set -- "kubernetes_host=${K8S_HOST:-https://kubernetes.default.svc}"
    if [ -n "${K8S_CA_CERT:-}" ]; then
        set -- "$@" "kubernetes_ca_cert=@$K8S_CA_CERT"
    fi
    if [ -n "${TOKEN_REVIEWER_JWT_FILE:-}" ]; then
        set -- "$@" "token_reviewer_jwt=@$TOKEN_REVIEWER_JWT_FILE"
    fi
    vault write "auth/$mount/config" "$@"
    vault write "auth/$mount/role/$role" \
        bound_service_account_names="${K8S_SERVICE_ACCOUNT:-ak2vault}" \
        bound_service_account_namespaces="${K8S_NAMESPACE:-ak2vault}" \
        audience="${K8S_AUDIENCE:-vault}" \
        token_policies="$POLICY_NAME" \
        token_ttl="${TOKEN_TTL:-1h}" \
        token_max_ttl="${TOKEN_MAX_TTL:-24h}"
}

setup_token() {
    file=$1
    if [ -s "$file" ] &&
        VAULT_TOKEN=$(cat "$file") vault token lookup >/dev/null 2>&1; then
        echo "setup.sh: $file holds a live token; kept"
        return
    fi
    umask 077
    vault token create -orphan -policy="$POLICY_NAME" \
        -period="${TOKEN_PERIOD:-24h}" -display-name=ak2vault \
        -field=token >"$file.new"
    mv "$file.new" "$file"
    if [ -n "${TOKEN_OWNER:-}" ]; then
        chown "$TOKEN_OWNER" "$file"
    fi
    echo "setup.sh: token with policy $POLICY_NAME written to $file"
}

setup_approle() {
    dir=$1
    mount=${AUTH_MOUNT:-approle}
    role=${ROLE:-ak2vault}
    auth_enabled "$mount" || vault auth enable -path="$mount" approle
    vault write "auth/$mount/role/$role" token_policies="$POLICY_NAME" \
        token_ttl="${TOKEN_TTL:-1h}" token_max_ttl="${TOKEN_MAX_TTL:-24h}" \
        secret_id_ttl=0
    umask 077
    vault read -field=role_id "auth/$mount/role/$role/role-id" >"$dir/role-id"
    vault write -f -field=secret_id "auth/$mount/role/$role/secret-id" \
        >"$dir/secret-id"
    echo "setup.sh: role-id and secret-id of $role written to $dir"
}

[ $# -ge 1 ] || usage
mode=$1
shift
case $mode in
kubernetes) [ $# -eq 0 ] || usage ;;
token | approle) [ $# -eq 1 ] || usage ;;
*) usage ;;
esac

kv_mount
policy
case $mode in
kubernetes) setup_kubernetes ;;
token) setup_token "$1" ;;
approle) setup_approle "$1" ;;
esac
