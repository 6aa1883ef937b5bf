"""Keys a test gave its tokens, and an audit of Vault's versions of them:
Vault must never hold a key the token did not have, the same data twice,
or an older key after a newer one."""
import json

import akvtest


def new_key():
    return "audit" + akvtest.random_secret(43)


def versions_kept(kv, path, ident, counts, problems):
    """The versions of the secret at \p path in \p kv (fake-vault's dump)
    and its current version; its number goes to \p counts. @returns
    (versions, current), or None when there is no secret or it lost
    versions (a problem then)."""
    sec = kv.get(path)
    if sec is None:
        return None
    vers = sec.get("versions", {})
    cur = sec.get("current_version")
    counts[ident] = cur
    if len(vers) != cur:
        problems.append("%s: current_version %s but %d versions kept"
                        % (ident, cur, len(vers)))
        return None
    return vers, cur


def version_audit(st, keys, prefix="authentik"):
    """No redundant or backward version: for every token in \\p keys
    ({identifier: every key it ever had, oldest first}), each stored
    version holds a key it had, no two versions hold the same data, there
    are no more versions than keys, and no version holds a key older than
    the version before it (Vault never goes back to an older key).
    @returns {identifier: number of versions}."""
    kv = st.vault_kv()
    problems, counts = [], {}
    for ident, had in sorted(keys.items()):
        kept = versions_kept(kv, "%s/%s" % (prefix, ident), ident, counts,
                             problems)
        if kept is None:
            continue
        vers, cur = kept
        datas = [json.dumps(vers[str(n)].get("data"), sort_keys=True)
                 for n in range(1, cur + 1)]
        dup = [n + 1 for n in range(1, cur) if datas[n] in datas[:n]]
        if dup:
            problems.append("%s: v%s repeat%s an earlier version's data "
                            "(of %d)" % (ident, ",v".join(map(str, dup)),
                                         "s" if len(dup) == 1 else "",
                                         cur))
        foreign = [n for n in range(1, cur + 1)
                   if (vers[str(n)].get("data") or {}).get("key")
                   not in had]
        if foreign:
            problems.append("%s: v%s hold%s a key authentik never gave it"
                            % (ident, ",v".join(map(str, foreign)),
                               "s" if len(foreign) == 1 else ""))
        if cur > len(had):
            problems.append("%s: %d versions for %d distinct keys" % (
                ident, cur, len(had)))
        age = [had.index(k) if k in had else -1 for k in (
            (vers[str(n)].get("data") or {}).get("key")
            for n in range(1, cur + 1))]
        back = ["v%d (key #%d after #%d)" % (n + 1, age[n], age[n - 1])
                for n in range(1, cur) if 0 <= age[n] < age[n - 1]]
        if back:
            problems.append("%s: back to an older key at %s" % (
                ident, ", ".join(back[:4])))
    assert not problems, "redundant Vault versions: " + "; ".join(
        problems[:8]) + (" ... (%d tokens)" % len(problems)
                         if len(problems) > 8 else "")
    return counts


class KeyBook:
    """Every key each token has had, oldest first, as far as the test
    knows (keys changed behind its back count once it snapshots them)."""

    def __init__(self, st):
        self.st = st
        self.keys = {}

    def _add(self, ident, key):
        had = self.keys.setdefault(ident, [])
        if key not in had:
            had.append(key)

    def snapshot(self):
        for ident, tok in self.st.live_tokens().items():
            self._add(ident, tok["key"])

    def set_key(self, ident):
        k = new_key()
        self.st.set_key(ident, k)
        self._add(ident, k)
        return k

    def create(self, ident, intent="api"):
        self.st.create_token(ident, intent=intent)
        self._add(ident, self.st.live_tokens()[ident]["key"])
