# Vault policy of the ak2vault worker: least privilege on the prefix it
# owns. Written for vault.kv_mount = "kv" and vault.prefix = "authentik"
# (configs/ak2vault.cfg, docker/kubernetes/configmap.yaml,
# docker/compose/ak2vault.cfg); change both paths together with those.
#
#   vault policy write ak2vault docker/vault/ak2vault-policy.hcl
#
# tests/integration/test_deploy_assets.py checks that this file grants
# exactly what the configurations need, and no path outside the prefix.

# The secrets: read the current version (check-and-set needs it), create a
# token's first version, update it (a new version) when authentik's key
# changed.
path "kv/data/authentik/*" {
  capabilities = ["create", "read", "update"]
}

# Provenance: the worker writes each secret's custom_metadata
# (ak2vault_token_pk, ak2vault_event_pk, ak2vault_action,
# ak2vault_synced_at) after a write. A reconcile lists the secrets under
# the prefix (LIST kv/metadata/authentik/, which this glob covers) and
# reads a secret's metadata to learn whether the version it last wrote is
# still current. Neither reads a secret's data.
path "kv/metadata/authentik/*" {
  capabilities = ["create", "read", "update", "list"]
}

# vault.on_delete = "soft-delete" needs delete on the data path, "purge"
# on the metadata path. The default, "keep", needs neither: leave these
# out unless the configuration asks for them.
#
# path "kv/data/authentik/*" {
#   capabilities = ["create", "read", "update", "delete"]
# }
# path "kv/metadata/authentik/*" {
#   capabilities = ["create", "read", "update", "list", "delete"]
# }

# `ak2vault check-config --connect` asks which of the capabilities above
# the token holds. Vault's default policy grants this and the two below
# already; they are repeated so that the policy also works for a role
# with token_no_default_policy = true.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# The worker looks its token up at start (token method) and renews it at
# about two thirds of its TTL.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
