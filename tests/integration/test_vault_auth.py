#!/usr/bin/python3
"""The worker's Vault side against a real Vault (issue 16): the policy,
AppRole login and renewal at short TTLs, kubernetes auth, setup.sh.

Always HashiCorp Vault (`make vault`; tests/vault/vault-local), whatever
AKV_VAULT says, prepared by docker/vault/setup.sh as README tells users;
the broker is AKV_KAFKA's (the mock cluster by default). One stack serves
every test, in order:

  1. docker/vault/ak2vault-policy.hcl is enough: `check-config --connect`
     passes with setup.sh's AppRole, and a worker whose tokens hold that
     policy alone (a role with token_no_default_policy) syncs created,
     re-keyed and patched tokens with their provenance in custom_metadata;
  2. every path of the policy is needed: for each `path` block of the file
     (parsed, not listed here), a policy without it fails `check-config
     --connect` with exit status 69 and a line naming the path and its
     capabilities, for a no-default-policy AppRole and a periodic token
     alike (the one exception: an AppRole never looks its token up);
  3. a worker whose policy lacks the data path holds the events
     (class=configuration, nothing committed past them, nothing
     dead-lettered) and syncs them on its own once the policy is loaded;
     without the metadata path it writes the secrets, warns that their
     provenance was not recorded, and commits (README: provenance is best
     effort); a token-method worker whose token may not look itself up
     syncs with it, says so naming the path, and looks it up again until
     the policy allows it (only a lookup tells it the TTL to renew by);
  4. AppRole at short TTLs (setup.sh with TOKEN_TTL=6s, TOKEN_MAX_TTL=15s):
     a worker on a topic of its own runs ~40 s while tokens keep changing
     in a second fake-authentik (alongside tests 1-3 and 5-6); Vault's
     audit log shows renew-self requests and repeated logins of that
     role, every token reaches Vault, no sync failed, and /metrics'
     ak2vault_vault_token_lease_seconds is the role's TTL throughout, with
     the TTL gauge within it and never 0;
  5. kubernetes auth against tests/vault/fake-tokenreview (the API
     server's TokenReview endpoint over HTTPS, with a CA made here):
     setup.sh kubernetes with README's K8S_* settings, then a worker logs
     in with a projected-token-shaped JWT and syncs; a JWT of another
     service account, for another audience, or one the reviewer refuses
     fails `check-config --connect` with Vault's reason (Vault 1.21's
     plugin, without pem_keys, checks the claims but not the signature:
     the review decides; the JWTs here are signed all the same, RS256 with
     a key made here); the JWT file is
     read again at the next login (rotation), and a refused JWT in it
     holds the worker's events until a good one replaces it;
  6. setup.sh: `token FILE` keeps a live token on a re-run and replaces a
     revoked one; re-running approle and kubernetes changes nothing; a KV
     version 1 mount is refused with setup.sh's message;
  7. no registered secret (tokens, secret-ids, JWTs, keys) in any output.

Failures name identifiers and secret kinds, never values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import base64  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import EX_OK, SECRETS, TOPIC, depends, note  # noqa: E402

EX_UNAVAILABLE = 69  # check-config --connect: a check failed
REPO = akvtest.REPO
POLICY_FILE = REPO / "docker/vault/ak2vault-policy.hcl"
TOKENREVIEW = REPO / "tests/vault/fake-tokenreview"
DLQ = TOPIC + ".dlq"
# The short-TTL worker's own topic and fake-authentik: its events never
# reach the other workers, nor theirs it.
RENEW_TOPIC = "renewal.events"
RENEW_ROLE = "ak2vault-short"
RENEW_TTL, RENEW_MAX_TTL = 6, 15
LOAD_SECONDS = 40
# The worker's paths (write_config: vault.kv_mount "kv", prefix
# "authentik"), which the runtime tests take out of the policy.
DATA_PATH = "kv/data/authentik/*"
METADATA_PATH = "kv/metadata/authentik/*"
LOOKUP_PATH = "auth/token/lookup-self"
CHECKS = ("kafka", "kafka group", "kafka dlq", "vault", "vault kv",
          "authentik")
# docker/vault/setup.sh's settings: none may come from our environment.
SETUP_SETTINGS = ("KV_MOUNT", "POLICY_NAME", "POLICY_FILE", "AUTH_MOUNT",
                  "ROLE", "K8S_NAMESPACE", "K8S_SERVICE_ACCOUNT",
                  "K8S_AUDIENCE", "K8S_HOST", "K8S_CA_CERT",
                  "TOKEN_REVIEWER_JWT_FILE", "TOKEN_TTL", "TOKEN_MAX_TTL",
                  "TOKEN_PERIOD", "TOKEN_OWNER")
# Workers retry a configuration error every second (the default is 30 s)
# and say so every second; short transient retries.
WORKER_BASE = akvtest.merge_settings(akvtest.MOCK_GROUP_WORKAROUND, {
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000,
             "config_retry_ms": 1000, "log_interval_ms": 1000},
})
SYNC_TIMEOUT = 30
# Kubernetes: the worker's ServiceAccount as setup.sh binds it (not the
# defaults, so the settings are seen to apply).
K8S_NS, K8S_SA, K8S_AUD = "authentik-sync", "ak2vault-sync", \
    "https://vault.example.com"

S = SimpleNamespace(rundir=None, stack=None, ak2=None, blocks=None,
                    policy_text=None, short=None, load=None, k8s=None,
                    k8s_worker=None, workers=[], procs=[])


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    for p in S.procs:
        p.stop()
    if S.stack:
        S.stack.stop()


# ---------------------------------------------------------------------------
# Vault, setup.sh and the policy


def vault():
    return S.stack.vault_server


def api(method, path, body=None, want=(200, 204), token=None):
    """A /v1 request (root token unless \\p token); fails unless the
    status is in \\p want. @returns the JSON body."""
    status, out = vault().api(method, path, body, token=token)
    if status not in want:
        err = out.get("errors") if isinstance(out, dict) else out
        raise AssertionError("%s %s answered %s: %s" % (
            method, path, status, SECRETS.scrub(str(err))[:300]))
    return out


def setup_sh(*args, env=None, expect=0):
    """Runs docker/vault/setup.sh as README's administrator does: the vault
    CLI on PATH, VAULT_ADDR and the root token, setup.sh's settings from
    \\p env only. Output appended to setup-sh-auth.log. @returns it."""
    full = akvtest.child_env()
    for k in SETUP_SETTINGS:
        full.pop(k, None)
    full.update({"VAULT_ADDR": vault().addr, "VAULT_TOKEN": vault().token,
                 "PATH": "%s:%s" % (akvtest.VAULT_BIN_DIR,
                                    os.environ.get("PATH", "/usr/bin:/bin")),
                 "HOME": str(S.rundir.path)})
    full.update(env or {})
    r = subprocess.run(["/bin/sh", str(akvtest.VAULT_SETUP), *args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       env=full, cwd=str(S.rundir.path), timeout=120)
    out = (r.stdout + r.stderr).decode(errors="replace")
    with open(S.rundir.file("setup-sh-auth.log"), "a") as log:
        log.write("$ setup.sh %s\n[status %d]\n%s\n" % (
            " ".join(str(a) for a in args), r.returncode, out))
    assert r.returncode == expect, "setup.sh %s exited %d, wanted %d: %s" % (
        args[0], r.returncode, expect, SECRETS.scrub(out.strip()[-400:]))
    return out


def policy_blocks(text):
    """[(path, [capabilities], (start, end))] of every `path "..." {...}`
    block of a policy, comments left out; the span is the block's in
    \\p text."""
    # Comment lines blanked to the same length: the spans stay valid.
    masked = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group()),
                    text)
    blocks = []
    for m in re.finditer(r'path\s+"([^"]+)"\s*\{([^}]*)\}', masked):
        caps = re.search(r"capabilities\s*=\s*\[([^\]]*)\]", m.group(2))
        assert caps, "policy block %s has no capabilities" % m.group(1)
        blocks.append((m.group(1), re.findall(r'"([^"]+)"', caps.group(1)),
                       m.span()))
    return blocks


def policy_without(path):
    """The policy file's text without the block of \\p path."""
    spans = [span for p, _, span in S.blocks if p == path]
    assert len(spans) == 1, "%d blocks for %s in %s" % (
        len(spans), path, POLICY_FILE.name)
    a, b = spans[0]
    return S.policy_text[:a] + S.policy_text[b:]


def write_policy(name, text):
    api("PUT", "sys/policy/" + name, {"policy": text})


def approle(name, policies, ttl="2m", max_ttl="5m"):
    """An AppRole whose tokens hold \\p policies only (no default policy);
    @returns the worker's vault.auth settings for it."""
    api("POST", "auth/approle/role/" + name, {
        "token_policies": policies, "token_no_default_policy": True,
        "token_ttl": ttl, "token_max_ttl": max_ttl, "secret_id_ttl": 0})
    rid = api("GET", "auth/approle/role/%s/role-id" % name)["data"]["role_id"]
    sid = api("POST", "auth/approle/role/%s/secret-id" % name,
              {})["data"]["secret_id"]
    SECRETS.add("AppRole secret-id", sid)
    d = S.rundir.sub("approle-" + name)
    return {"method": "approle",
            "role_id_file": str(d.write("role-id", rid + "\n")),
            "secret_id_file": str(d.write("secret-id", sid + "\n"))}


def periodic_token(name, policies):
    """A periodic orphan token holding \\p policies only (what setup.sh
    token makes, without the default policy); @returns the worker's vault
    settings for a token_file holding it."""
    out = api("POST", "auth/token/create-orphan", {
        "policies": policies, "no_default_policy": True, "period": "1h",
        "display_name": name})
    tok = out["auth"]["client_token"]
    SECRETS.add("Vault token", tok)
    path = S.rundir.sub("token-" + name).write("token", tok + "\n")
    return {"auth": {"method": "token"}, "token_file": str(path)}


# ---------------------------------------------------------------------------
# Workers and check-config


def config(name, vault_settings, group=None, topic=TOPIC, authentik=None,
           extra=None):
    """A worker configuration with \\p vault_settings ({"auth": {...},
    ...}) over WORKER_BASE and \\p extra."""
    return akvtest.write_config(
        S.rundir.file("%s.cfg" % name), S.stack.brokers,
        authentik or S.stack.authentik_url, S.stack.vault_addr,
        group=group or "vault-auth-" + name, topic=topic,
        extra=akvtest.merge_settings(WORKER_BASE, {"vault": vault_settings},
                                     extra or {}))


def worker_env():
    # No VAULT_TOKEN: every worker here logs in, or reads vault.token_file.
    return {"AUTHENTIK_TOKEN": S.stack.authentik_token}


def start_worker(name, vault_settings, **kw):
    cfg = config(name, vault_settings, **kw)
    w = akvtest.Proc(name, [akvtest.binary("ak2vault"), "run", "-c",
                            str(cfg)], S.rundir, env=worker_env())
    S.workers.append(w)
    return w


def stop_worker(w, timeout=20):
    """SIGTERM; @returns the final stats (exit status 0 required)."""
    w.signal(signal.SIGTERM)
    rc = w.wait(timeout)
    if rc is None:
        w.stop(1)
        raise AssertionError("%s did not exit within %ds of SIGTERM" % (
            w.name, timeout))
    assert rc == 0, "%s exited %d: %s" % (w.name, rc, w.stderr_tail(3))
    st = akvtest.final_stats(w.stderr_text())
    assert st is not None, "%s: no final stats line" % w.name
    return st


def alive(*workers):
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in workers if not w.running()]
    assert not dead, "; ".join(dead)


def log_lines(w, pattern):
    rx = re.compile(pattern)
    return [ln for ln in w.stderr_text().splitlines() if rx.search(ln)]


def lookups(display):
    """Audited lookup-self requests of the token named \\p display."""
    return [e for e in audit_entries(LOOKUP_PATH)
            if (e.get("auth") or {}).get("display_name") ==
            "token-" + display]


def token_ttl(w):
    """ak2vault_vault_token_ttl_seconds of \\p w (NaN: unknown)."""
    status, _, body = akvtest.http_get_text("http://127.0.0.1:%d/metrics" %
                                            metrics_port(w))
    assert status == 200, "%s: /metrics answered %s" % (w.name, status)
    ttl = akvtest.sample(akvtest.parse_exposition(body),
                         "ak2vault_vault_token_ttl_seconds")
    assert ttl is not None, "%s has no token TTL gauge" % w.name
    return ttl


def metrics_port(w):
    m = re.search(r"serving /metrics /livez /readyz on \S+ \(port (\d+)\)",
                  w.stderr_text())
    assert m, "%s serves no /metrics" % w.name
    return int(m.group(1))


@contextlib.contextmanager
def stopped_on_failure(*workers):
    """Stops \\p workers when the block fails, so that they write nothing
    for the tests after it."""
    try:
        yield
    except BaseException:
        for w in workers:
            w.stop(5)
        raise


def check_configs(cfgs, timeout=60):
    """Runs `ak2vault check-config --connect` for every {name: config}
    at once; @returns {name: (status, {check: text after "NAME: "})}."""
    procs = {}
    for name, cfg in cfgs.items():
        out = open(S.rundir.file("check-%s.stdout.log" % name), "wb")
        err = open(S.rundir.file("check-%s.stderr.log" % name), "wb")
        procs[name] = (subprocess.Popen(
            [akvtest.binary("ak2vault"), "check-config", "--connect", "-c",
             str(cfg)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            env=akvtest.child_env(worker_env()), cwd=str(S.rundir.path)),
            out, err)
    results = {}
    for name, (p, out, err) in procs.items():
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("check-config %s still running after %ds"
                                 % (name, timeout)) from None
        finally:
            out.close()
            err.close()
        lines = {}
        for line in S.rundir.file("check-%s.stdout.log" % name).read_text(
                errors="replace").splitlines():
            check, sep, rest = line.partition(": ")
            if sep and check in CHECKS:
                lines[check] = rest
        results[name] = (rc, lines)
    return results


def check_config(name, cfg):
    return check_configs({name: cfg})[name]


def describe(lines):
    """The checks' lines; only those that did not pass, if any failed."""
    bad = {k: v for k, v in lines.items() if not v.startswith("ok (")}
    return SECRETS.scrub("; ".join("%s: %s" % kv for kv in (
        bad or lines).items())) or "no check printed a line"


# ---------------------------------------------------------------------------
# authentik and Vault contents


class Authentik:
    """Stack's fake-authentik helpers, bound to another fake-authentik."""

    ak = akvtest.Stack.ak
    _ak_expect = akvtest.Stack._ak_expect
    create_token = akvtest.Stack.create_token
    patch_token = akvtest.Stack.patch_token
    set_key = akvtest.Stack.set_key
    live_tokens = akvtest.Stack.live_tokens

    def __init__(self, url, token):
        self.authentik_url = url
        self.authentik_token = token


def mismatches(ak, idents):
    """[(identifier, what differs)] among \\p idents between authentik's
    tokens and Vault's current versions."""
    live = ak.live_tokens()
    cur = S.stack.vault_current()
    bad = []
    for ident in sorted(idents):
        tok, got = live.get(ident), cur.get(ident)
        if tok is None:
            bad.append((ident, "not in authentik"))
        elif got is None:
            bad.append((ident, "missing"))
        elif got[1] != {"key": tok["key"], "intent": tok["intent"]}:
            bad.append((ident, "differs (v%s)" % got[0]))
    return bad


def wait_synced(ak, idents, timeout=SYNC_TIMEOUT, workers=()):
    last = []

    def done():
        alive(*workers)
        last[:] = mismatches(ak, idents)
        return not last
    t0 = time.monotonic()
    ok = akvtest.wait_until(done, timeout, interval=0.3)
    assert ok, "after %ds: %s" % (timeout, ", ".join(
        "%s %s" % m for m in last[:10]))
    return time.monotonic() - t0


def custom_metadata(ident):
    status, out = vault().api("GET", "kv/metadata/authentik/" + ident)
    assert status == 200, "metadata of %s: %s" % (ident, status)
    return out["data"].get("custom_metadata") or {}


def token_events(topic=TOPIC, what="topic"):
    """{identifier: [(partition, offset, action)]} of the token events of
    \\p topic, read with kcat."""
    recs = akvtest.kcat_consume(S.stack.brokers, topic, S.rundir,
                                name="kcat-%s" % what)
    out = {}
    for r in recs:
        try:
            ev = json.loads(r["value"] or "")
        except ValueError:
            continue
        ref = (ev.get("context") or {}).get("model") or {}
        if ref.get("model_name") == "token" and "name" in ref:
            out.setdefault(ref["name"].split(" ", 1)[0], []).append(
                (r["partition"], r["offset"], ev.get("action")))
    return out


def committed(group):
    return {p["partition"]: p["committed"]
            for p in S.stack.lag(group)["partitions"]}


def assert_not_committed(group, idents):
    """No committed offset of \\p group lies past a sync event of
    \\p idents: they are held, not skipped."""
    evs = token_events(what="held-%s" % group)
    offs = committed(group)
    past = []
    for ident in idents:
        held = [(p, o) for p, o, a in evs.get(ident, ())
                if a in ("model_created", "model_updated", "secret_rotate")]
        assert held, "no sync event of %s on the topic" % ident
        past += ["%s@p%d:%d (committed %d)" % (ident, p, o, offs.get(p, -1))
                 for p, o in held if offs.get(p, -1) > o]
    assert not past, "committed past held events: %s" % ", ".join(past)


def assert_dlq_empty():
    recs = akvtest.kcat_consume(S.stack.brokers, DLQ, S.rundir,
                                name="kcat-dlq")
    assert not recs, "%d records on %s: %s" % (len(recs), DLQ, [
        dict(r["headers"]).get("ak2vault.error.reason") for r in recs[:3]])


def wait_lag_zero(group, timeout=20):
    last = {}

    def done():
        last.update(S.stack.lag(group))
        return last["lag"] == 0
    assert akvtest.wait_until(done, timeout, interval=0.5), \
        "group %s still %s behind after %ds" % (group, last.get("lag"),
                                                timeout)


def audit_entries(path):
    """Vault's audit responses to \\p path from workers and tools."""
    return [e for e in vault().audit() if e["request"].get("path") == path]


def audit_time(entry):
    """An audit entry's time, in seconds (Unix)."""
    t = entry["time"]
    whole, _, frac = t.rstrip("Z").partition(".")
    return time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + \
        float("0." + (frac or "0"))


def role_of(entry):
    """The AppRole or kubernetes role an audited request's token came
    from (login answers: the new token's)."""
    for auth in (entry.get("auth"), (entry.get("response") or {}).get(
            "auth")):
        md = (auth or {}).get("metadata") or {}
        if md.get("role_name") or md.get("role"):
            return md.get("role_name") or md.get("role")
    return None


# ---------------------------------------------------------------------------
# 1. The stack


def test_stack_starts():
    S.stack = akvtest.Stack(S.rundir, vault="real", topics=(
        DLQ + ":1", RENEW_TOPIC + ":2", RENEW_TOPIC + ".dlq:1"))
    ak2 = akvtest.Proc("fake-authentik-renewal", [
        akvtest.binary("fake-authentik"), "--listen", "127.0.0.1:0",
        "--brokers", S.stack.brokers, "--topic", RENEW_TOPIC],
        S.rundir, env={"AUTHENTIK_API_TOKEN": S.stack.authentik_token},
        address_line=True)
    S.procs.append(ak2)
    S.ak2 = Authentik("http://" + ak2.address, S.stack.authentik_token)
    S.policy_text = POLICY_FILE.read_text()
    S.blocks = policy_blocks(S.policy_text)
    paths = [p for p, _, _ in S.blocks]
    assert len(paths) == len(set(paths)) >= 3, \
        "%s: paths %s" % (POLICY_FILE.name, paths)
    for p in (DATA_PATH, METADATA_PATH, LOOKUP_PATH):
        assert p in paths, "%s has no block for %s" % (POLICY_FILE.name, p)
    # What setup.sh loaded is that file.
    rules = api("GET", "sys/policy/ak2vault")["data"]["rules"]
    assert rules.strip() == S.policy_text.strip(), \
        "Vault's policy ak2vault is not %s" % POLICY_FILE.name
    note("policy blocks: %s" % ", ".join(
        "%s [%s]" % (p, ", ".join(c)) for p, c, _ in S.blocks))


# ---------------------------------------------------------------------------
# 4 (started first, checked last): AppRole at short TTLs


class Load(threading.Thread):
    """Creates a token or changes a key in the second fake-authentik about
    every 0.4 s for \\p seconds, scraping the worker's /metrics meanwhile."""

    def __init__(self, ak, metrics_url, seconds):
        super().__init__(daemon=True, name="renewal-load")
        self.ak, self.url, self.seconds = ak, metrics_url, seconds
        self.idents, self.rekeyed, self.errors, self.scrapes = [], 0, [], []
        self.stop = threading.Event()

    def scrape(self):
        status, _, body = akvtest.http_get_text(self.url, timeout=5)
        if status != 200:
            self.errors.append("/metrics answered %s" % status)
            return
        fams = akvtest.parse_exposition(body)
        denied = sum(v for name, labels, v in fams.get(
            "ak2vault_upstream_requests_total", {}).get("samples", [])
            if labels.get("upstream") == "vault" and
            labels.get("status") in ("400", "403"))
        self.scrapes.append((time.monotonic(), akvtest.sample(
            fams, "ak2vault_vault_token_ttl_seconds"), akvtest.sample(
            fams, "ak2vault_vault_token_lease_seconds"), denied))

    def run(self):
        deadline = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                if n % 2 == 0 or len(self.idents) < 3:
                    ident = "renew-%02d" % len(self.idents)
                    self.ak.create_token(ident, description="short TTL")
                    self.idents.append(ident)
                else:
                    self.ak.set_key(self.idents[(n // 2) % len(self.idents)],
                                    "rk" + akvtest.random_secret(40))
                    self.rekeyed += 1
                self.scrape()
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(akvtest.reason_of(e))
            n += 1
            self.stop.wait(0.4)


@depends("test_stack_starts")
def test_short_ttl_worker_starts():
    d = S.rundir.sub("approle-short")
    out = setup_sh("approle", str(d.path), env={
        "ROLE": RENEW_ROLE, "TOKEN_TTL": "%ds" % RENEW_TTL,
        "TOKEN_MAX_TTL": "%ds" % RENEW_MAX_TTL})
    assert "role-id and secret-id of %s written" % RENEW_ROLE in out, \
        "setup.sh approle said: %s" % SECRETS.scrub(out.strip()[-200:])
    SECRETS.add("AppRole secret-id", (d.path / "secret-id").read_text()
                .strip())
    role = api("GET", "auth/approle/role/" + RENEW_ROLE)["data"]
    assert (role["token_ttl"], role["token_max_ttl"]) == (
        RENEW_TTL, RENEW_MAX_TTL), "role TTLs %s/%s" % (
        role["token_ttl"], role["token_max_ttl"])
    w = S.short = start_worker(
        "short-ttl", {"auth": {
            "method": "approle",
            "role_id_file": str(d.path / "role-id"),
            "secret_id_file": str(d.path / "secret-id")}},
        topic=RENEW_TOPIC, authentik=S.ak2.authentik_url,
        extra={"metrics": {"listen": "127.0.0.1:0"}})
    ports = []

    def up():
        alive(w)
        m = re.search(r"serving /metrics /livez /readyz on \S+ \(port "
                      r"(\d+)\)", w.stderr_text())
        ports[:] = [int(m.group(1))] if m else []
        return ports and "logged in with approle auth" in w.stderr_text()
    assert akvtest.wait_until(up, 15), "no metrics port or login in 15s: " \
        "%s" % w.stderr_tail(3)
    assert "ttl=%ds" % RENEW_TTL in w.stderr_text(), w.stderr_tail(3)
    S.load = Load(S.ak2, "http://127.0.0.1:%d/metrics" % ports[0],
                  LOAD_SECONDS)
    S.load.t0 = time.monotonic()
    S.load.start()


# ---------------------------------------------------------------------------
# 1. The policy is enough


@depends("test_stack_starts")
def test_setup_sh_approle_passes_check_config():
    cfg = config("setup-approle", vault().worker_settings()["vault"])
    rc, lines = check_config("setup-approle", cfg)
    assert rc == EX_OK, "status %d: %s" % (rc, describe(lines))
    assert lines.get("vault", "").startswith("ok (approle login"), \
        describe(lines)
    assert lines.get("vault kv", "").startswith(
        "ok (kv/data/authentik/x: create, read, update; "
        "kv/metadata/authentik/x: create, read, update, list;"), \
        describe(lines)


@depends("test_stack_starts")
def test_policy_alone_syncs_tokens():
    """A role with token_no_default_policy: its tokens hold ak2vault and
    nothing else, not even Vault's default policy."""
    auth = approle("policy-only", ["ak2vault"])
    cfg = config("policy-only-check", {"auth": auth})
    rc, lines = check_config("policy-only", cfg)
    assert rc == EX_OK, "status %d: %s" % (rc, describe(lines))
    w = start_worker("policy-only", {"auth": auth})
    with stopped_on_failure(w):
        policy_alone_syncs(w)


def policy_alone_syncs(w):
    st = S.stack
    idents = ["pol-%02d" % i for i in range(5)]
    for i, ident in enumerate(idents):
        st.create_token(ident, intent="app_password" if i % 2 else "api",
                        description="policy alone")
    st.set_key(idents[0], "pk" + akvtest.random_secret(40))
    st.rotate(idents[1])
    st.patch_token(idents[2], {"intent": "app_password"})
    dt = wait_synced(st, idents, workers=[w])
    live = st.live_tokens()
    for ident in idents:
        md = custom_metadata(ident)
        want = {"ak2vault_token_pk", "ak2vault_event_pk", "ak2vault_action",
                "ak2vault_synced_at"}
        assert want <= set(md), "%s: custom_metadata %s" % (ident,
                                                           sorted(md))
        assert md["ak2vault_token_pk"].replace("-", "") == \
            live[ident]["pk"].replace("-", ""), \
            "%s: ak2vault_token_pk is not the token's pk" % ident
    # The worker's tokens held exactly the policy, and nothing was denied.
    logins = [e for e in audit_entries("auth/approle/login")
              if role_of(e) == "policy-only"]
    assert logins, "no audited login of role policy-only"
    pols = {tuple(e["response"]["auth"]["policies"]) for e in logins}
    assert pols == {("ak2vault",)}, "login tokens' policies: %s" % pols
    denied = [r for r in vault().requests() if r["status"] == 403]
    assert not denied, "Vault denied: %s" % ["%s %s" % (
        r["method"], r["path"]) for r in denied[:5]]
    stats = stop_worker(w)
    assert stats["retries"] == 0 and stats["dead_lettered"] == 0, stats
    assert stats["written"] >= len(idents), stats
    note("5 tokens created, 2 re-keyed, 1 patched: in Vault %.1fs later, "
         "with provenance; login tokens held [ak2vault] only" % dt)


# ---------------------------------------------------------------------------
# 2. Every path of the policy is needed


@depends("test_stack_starts")
def test_each_policy_path_is_needed():
    cfgs, want = {}, {}
    for i, (path, caps, _) in enumerate(S.blocks):
        name = "minus-%d" % i
        write_policy(name, policy_without(path))
        cfgs[name + "-approle"] = config(name + "-approle", {
            "auth": approle(name, [name])})
        cfgs[name + "-token"] = config(name + "-token",
                                       periodic_token(name, [name]))
        for method in ("approle", "token"):
            # Only the token method looks its token up (the policy says
            # so): an AppRole's login answer tells its TTL.
            want[name + "-" + method] = (
                path, caps, not (path == LOOKUP_PATH and method == "approle"))
    results = check_configs(cfgs)
    problems, seen = [], []
    for name, (rc, lines) in sorted(results.items()):
        path, caps, needed = want[name]
        if not needed:
            if rc != EX_OK:
                problems.append("%s: status %d: %s" % (name, rc,
                                                       describe(lines)))
            else:
                seen.append("%s: passes (only the token method looks its "
                            "token up)" % name)
            continue
        failed = [text for check, text in lines.items()
                  if check in ("vault", "vault kv") and
                  text.startswith("FAILED: ")]
        stem = path.rstrip("*")
        if rc != EX_UNAVAILABLE or len(failed) != 1:
            problems.append("%s (without %s): status %d, wanted %d with "
                            "one failed Vault check: %s" % (
                                name, path, rc, EX_UNAVAILABLE,
                                describe(lines)))
        elif stem not in failed[0] or not all(
                re.search(r"\b%s\b" % c, failed[0]) for c in caps):
            problems.append("%s: the failure does not name %s on %s: %s" % (
                name, ", ".join(caps), path, failed[0]))
        else:
            seen.append("%s: %s" % (name, failed[0]))
    assert not problems, "; ".join(problems)
    for line in seen:
        note(line)


# ---------------------------------------------------------------------------
# 3. A worker with less than the policy


@depends("test_policy_alone_syncs_tokens")
def test_worker_without_metadata_path_writes_without_provenance():
    """README: provenance is best effort. The secret is written and the
    event committed; each write says its provenance was not recorded."""
    write_policy("no-metadata", policy_without(METADATA_PATH))
    w = start_worker("no-metadata", {"auth": approle("no-metadata",
                                                     ["no-metadata"])})
    with stopped_on_failure(w):
        provenance_not_recorded(w)


def provenance_not_recorded(w):
    idents = ["nometa-00", "nometa-01"]
    for ident in idents:
        S.stack.create_token(ident, description="no metadata path")
    wait_synced(S.stack, idents, workers=[w])
    for ident in idents:
        md = custom_metadata(ident)
        assert not md, "%s has custom_metadata %s" % (ident, sorted(md))

    def warned():
        return all(log_lines(w, r"token=%s provenance not recorded "
                             r"\(configuration, HTTP 403\)" % i)
                   for i in idents)
    assert akvtest.wait_until(warned, 5), "no provenance warning for " \
        "each of %s: %s" % (idents, w.stderr_tail(3))
    wait_lag_zero("vault-auth-no-metadata")
    stats = stop_worker(w)
    assert stats["written"] == len(idents) and \
        stats["dead_lettered"] == 0, stats


@depends("test_policy_alone_syncs_tokens")
def test_worker_holds_what_the_policy_denies():
    """Without the data path: class=configuration, held, nothing committed
    past the events nor dead-lettered (README: "the held events resume on
    their own"); loading the whole policy under the same name lets them
    through without a restart."""
    write_policy("held-data", policy_without(DATA_PATH))
    w = start_worker("held-data", {"auth": approle("held-data",
                                                   ["held-data"])})
    with stopped_on_failure(w):
        idents = ["held-00", "held-01", "held-02"]
        for ident in idents:
            S.stack.create_token(ident, description="held by the policy")

        # The worker says so once a second (sync.log_interval_ms), for
        # whichever held token's retry comes first.
        def held():
            alive(w)
            return log_lines(w, r"class=configuration held .*vault read "
                             r"answered HTTP 403: .*permission denied")
        assert akvtest.wait_until(held, 15), "not held: %s" % (
            w.stderr_tail(3))
        time.sleep(3)  # three more retries, one a second
        alive(w)
        cur = S.stack.vault_current()
        leaked = [i for i in idents if i in cur]
        assert not leaked, "written despite the policy: %s" % leaked
        assert_not_committed("vault-auth-held-data", idents)
        assert_dlq_empty()
        holds = len(log_lines(w, r"class=configuration held"))
        write_policy("held-data", S.policy_text)
        dt = wait_synced(S.stack, idents, workers=[w])
        wait_lag_zero("vault-auth-held-data")
        assert_dlq_empty()
        stats = stop_worker(w)
    assert stats["dead_lettered"] == 0 and stats["poison"] == 0, stats
    written = {s["token"] for s in akvtest.sync_lines(w.stderr_text())
               if s["result"] == "written"}
    assert set(idents) <= written, "written: %s" % sorted(written)
    note("held (%d configuration lines); synced %.1fs after the policy "
         "was loaded" % (holds, dt))


@depends("test_policy_alone_syncs_tokens")
def test_token_worker_without_lookup_self():
    """The token method without lookup-self: the worker syncs with its
    token, says the lookup was refused and names the path, and looks the
    token up again (on its own, no sync asks) until it may: only then does
    it know the token's lifetime, and renew it."""
    write_policy("no-lookup", policy_without(LOOKUP_PATH))
    w = start_worker("no-lookup", periodic_token("no-lookup", ["no-lookup"]),
                     extra={"metrics": {"listen": "127.0.0.1:0"}})
    with stopped_on_failure(w):
        def refused():
            alive(w)
            return log_lines(w, r"token lookup failed \(configuration\): "
                             r"vault token lookup answered HTTP 403")
        assert akvtest.wait_until(refused, 10), "no lookup refusal: %s" % (
            w.stderr_tail(3))
        line = refused()[0]
        assert "read on auth/token/lookup-self" in line, \
            "the refusal does not name the path: %s" % line
        S.stack.create_token("lookup-00", description="no lookup-self")
        wait_synced(S.stack, ["lookup-00"], workers=[w])
        ttl = token_ttl(w)
        assert ttl != ttl, "token TTL %r while its lookup is refused" % ttl
        tries = len(lookups("no-lookup"))
        write_policy("no-lookup", S.policy_text)

        def looked_up():
            alive(w)
            return log_lines(w, r"\[vault\] token ttl=\d+s renewable=yes")
        assert akvtest.wait_until(looked_up, 10), \
            "no lookup within 10s of the policy allowing it (%d refused)" \
            % tries
        # The gauges are refreshed every second.
        ttl = akvtest.wait_until(lambda: token_ttl(w) > 3000 and
                                 token_ttl(w), 3)
        assert ttl and ttl <= 3600, "token TTL %r" % token_ttl(w)
        stats = stop_worker(w)
    assert stats["dead_lettered"] == 0 and stats["written"] >= 1, stats
    note("synced with a token it could not look up; %d refused lookups, "
         "then its lifetime known once the policy allowed it" % tries)


# ---------------------------------------------------------------------------
# 5. Kubernetes auth


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Kube:
    """A CA and the API server's certificate (openssl), a key that signs
    service account JWTs, the reviewer's JWT and fake-tokenreview."""

    def __init__(self):
        self.dir = S.rundir.sub("kubernetes")
        d = self.dir.path
        self.openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes",
                     "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
                     "-subj", "/CN=fake-kubernetes-ca",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                     "apiserver.key", "-out", "apiserver.csr", "-subj",
                     "/CN=kube-apiserver")
        self.dir.write("apiserver.ext", "subjectAltName=IP:127.0.0.1\n"
                       "extendedKeyUsage=serverAuth\n"
                       "basicConstraints=CA:FALSE\n")
        self.openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.pem",
                     "-CAkey", "ca.key", "-CAcreateserial", "-out",
                     "apiserver.pem", "-days", "1", "-extfile",
                     "apiserver.ext")
        self.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                     "rsa_keygen_bits:2048", "-out", "sa-signer.key")
        self.ca = d / "ca.pem"
        self.sa_uid = str(uuid.uuid4())
        self.tokens = {}
        self.tokens_file = self.dir.write("tokens.json", "{}")
        # The reviewer's JWT as README's kubectl | base64 -d leaves it: no
        # newline at the end.
        self.reviewer_jwt = self.jwt({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": K8S_NS,
            "kubernetes.io/serviceaccount/secret.name":
                "vault-token-reviewer-token",
            "kubernetes.io/serviceaccount/service-account.name":
                "vault-token-reviewer",
            "kubernetes.io/serviceaccount/service-account.uid":
                str(uuid.uuid4()),
            "sub": "system:serviceaccount:%s:vault-token-reviewer" % K8S_NS},
            kind="token reviewer JWT")
        self.reviewer_file = self.dir.write("reviewer.jwt", self.reviewer_jwt)
        self.proc = akvtest.Proc("fake-tokenreview", [
            "/usr/bin/python3", str(TOKENREVIEW),
            "--tls-cert", str(d / "apiserver.pem"),
            "--tls-key", str(d / "apiserver.key"),
            "--reviewer-jwt-file", str(self.reviewer_file),
            "--tokens", str(self.tokens_file)], S.rundir, address_line=True)
        S.procs.append(self.proc)
        self.host = "https://" + self.proc.address
        self.ssl = akvtest.tls_client_context(self.ca)
        self.jwt_file = d / "token"  # the projected token's file

    def openssl(self, *args):
        r = subprocess.run(["openssl", *args], cwd=str(self.dir.path),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
        assert r.returncode == 0, "openssl %s: %s" % (
            args[0], r.stderr.decode(errors="replace")[-300:])
        return r.stdout

    def jwt(self, claims, kind="kubernetes JWT"):
        """An RS256 JWT of \\p claims signed with the signer's key."""
        head = b64url(json.dumps({"alg": "RS256", "kid": "sa-signer"})
                      .encode())
        body = b64url(json.dumps(claims).encode())
        r = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign",
             str(self.dir.path / "sa-signer.key")],
            input=("%s.%s" % (head, body)).encode(), capture_output=True,
            timeout=30)
        assert r.returncode == 0, "openssl dgst: %s" % r.stderr[-200:]
        token = "%s.%s.%s" % (head, body, b64url(r.stdout))
        SECRETS.add(kind, token)
        return token

    def projected(self, sa=K8S_SA, ns=K8S_NS, aud=(K8S_AUD,), known=True,
                  uid=None):
        """A projected service account token's JWT (the claims the kubelet
        puts in one); \\p known: the reviewer vouches for it."""
        now = int(time.time())
        uid = uid or self.sa_uid
        token = self.jwt({
            "aud": list(aud), "exp": now + 3600, "iat": now, "nbf": now,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": ns,
                "pod": {"name": "ak2vault-6d5f8-x2v7q",
                        "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": sa, "uid": uid}},
            "sub": "system:serviceaccount:%s:%s" % (ns, sa)})
        if known:
            self.vouch(token, sa, ns, aud, uid)
        return token

    def vouch(self, token, sa, ns, aud, uid, authenticated=True):
        self.tokens[hashlib.sha256(token.encode()).hexdigest()] = {
            "namespace": ns, "service_account": sa, "uid": uid,
            "audiences": list(aud), "authenticated": authenticated}
        tmp = self.dir.write("tokens.json.new", json.dumps(self.tokens))
        os.replace(tmp, self.tokens_file)

    def revoke(self, token):
        e = self.tokens[hashlib.sha256(token.encode()).hexdigest()]
        self.vouch(token, e["service_account"], e["namespace"],
                   e["audiences"], e["uid"], authenticated=False)

    def mount(self, token):
        """Puts \\p token in the worker's JWT file, replaced at once as the
        kubelet does."""
        tmp = self.dir.write("token.new", token)
        os.replace(tmp, self.jwt_file)

    def reviews(self):
        status, out = akvtest.http_json(
            "GET", self.host + "/_fake/reviews", ssl_context=self.ssl)
        assert status == 200, "GET /_fake/reviews answered %s" % status
        return out["reviews"]

    def setup_env(self):
        """docker/vault/setup.sh kubernetes's settings, README's way."""
        return {"K8S_HOST": self.host, "K8S_CA_CERT": str(self.ca),
                "TOKEN_REVIEWER_JWT_FILE": str(self.reviewer_file),
                "K8S_NAMESPACE": K8S_NS, "K8S_SERVICE_ACCOUNT": K8S_SA,
                "K8S_AUDIENCE": K8S_AUD}


def k8s_settings(jwt_file):
    return {"auth": {"method": "kubernetes", "role": "ak2vault",
                     "jwt_file": str(jwt_file)}}


def token_id(token):
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@depends("test_stack_starts")
def test_kubernetes_login_with_setup_sh():
    k = S.k8s = Kube()
    out = setup_sh("kubernetes", env=k.setup_env())
    assert "Success! Data written to: auth/kubernetes/role/ak2vault" in out, \
        "setup.sh kubernetes said: %s" % SECRETS.scrub(out.strip()[-300:])
    role = api("GET", "auth/kubernetes/role/ak2vault")["data"]
    got = (role["bound_service_account_names"],
           role["bound_service_account_namespaces"], role["audience"],
           role["token_policies"])
    assert got == ([K8S_SA], [K8S_NS], K8S_AUD, ["ak2vault"]), \
        "role ak2vault: service accounts, namespaces, audience, policies " \
        "%s" % (got,)
    cfg = api("GET", "auth/kubernetes/config")["data"]
    assert cfg["kubernetes_host"] == k.host and \
        cfg["token_reviewer_jwt_set"] and \
        cfg["kubernetes_ca_cert"].strip() == k.ca.read_text().strip(), \
        "auth/kubernetes/config: host %s, reviewer set %s" % (
            cfg["kubernetes_host"], cfg["token_reviewer_jwt_set"])
    k.good = k.projected()
    k.mount(k.good)
    rc, lines = check_config("k8s", config("k8s-check",
                                           k8s_settings(k.jwt_file)))
    assert rc == EX_OK, "status %d: %s" % (rc, describe(lines))
    assert lines["vault"].startswith("ok (kubernetes login"), describe(lines)
    w = S.k8s_worker = start_worker("k8s", k8s_settings(k.jwt_file))
    with stopped_on_failure(w):
        idents = ["k8s-00", "k8s-01"]
        for ident in idents:
            S.stack.create_token(ident, description="kubernetes login")
        wait_synced(S.stack, idents, workers=[w])
    reviews = k.reviews()
    assert reviews and all(r["bearer"] == "ok" for r in reviews), \
        "reviews without the reviewer's JWT: %s" % reviews
    mine = [r for r in reviews if r["token"] == token_id(k.good)]
    assert mine and all(
        r["authenticated"] and r["spec_audiences"] == [K8S_AUD] and
        r["username"] == "system:serviceaccount:%s:%s" % (K8S_NS, K8S_SA)
        for r in mine), "reviews of the worker's JWT: %s" % mine
    note("%d TokenReviews, each with the reviewer's bearer and audience %s"
         % (len(reviews), K8S_AUD))


@depends("test_kubernetes_login_with_setup_sh")
def test_kubernetes_refuses_other_jwts():
    k = S.k8s
    cases = {
        # Vault compares the claims with the role before any review.
        "other-sa": (k.projected(sa="default"),
                     "service account name not authorized"),
        "other-audience": (k.projected(aud=("vault",)),
                           "invalid audience (aud) claim"),
        # The claims are right; the API server no longer vouches for it.
        "refused": (k.projected(known=False), "permission denied"),
    }
    cfgs = {}
    for name, (token, _) in cases.items():
        f = k.dir.write("token-" + name, token)
        cfgs["k8s-" + name] = config("k8s-" + name, k8s_settings(f))
    before = len(k.reviews())
    results = check_configs(cfgs)
    problems = []
    for name, (token, why) in cases.items():
        rc, lines = results["k8s-" + name]
        v = lines.get("vault", "")
        if rc != EX_UNAVAILABLE or not v.startswith(
                "FAILED: vault login answered HTTP 403: ") or why not in v:
            problems.append("%s: status %d, wanted %d and a login refused "
                            "with %r: %s" % (name, rc, EX_UNAVAILABLE, why,
                                             describe(lines)))
        elif not lines.get("vault kv", "").startswith("skipped ("):
            problems.append("%s: vault kv not skipped" % name)
    assert not problems, "; ".join(problems)
    # Only the JWT whose claims passed was sent for review.
    reviewed = {r["token"] for r in k.reviews()[before:]}
    assert reviewed == {token_id(cases["refused"][0])}, \
        "reviewed %d JWTs, wanted only the refused one's" % len(reviewed)


@depends("test_kubernetes_login_with_setup_sh")
def test_kubernetes_jwt_file_read_at_next_login():
    """The kubelet replaces the projected token; the worker reads the file
    at its next login (here forced by revoking its Vault token). A JWT the
    reviewer refuses holds the events (class=configuration) until the file
    holds one it accepts again."""
    with stopped_on_failure(S.k8s_worker):
        jwt_rotation(S.k8s, S.k8s_worker)


def jwt_rotation(k, w):
    # Rotation: the old JWT is no longer accepted, the new one is.
    old, new = k.good, k.projected()
    k.mount(new)
    k.revoke(old)
    k.good = new
    api("PUT", "sys/leases/revoke-prefix/auth/kubernetes/login")
    n_reviews = len(k.reviews())
    S.stack.create_token("k8s-02", description="after rotation")
    wait_synced(S.stack, ["k8s-02"], workers=[w])
    after = k.reviews()[n_reviews:]
    assert [r["token"] for r in after] == [token_id(new)] and \
        after[0]["authenticated"], \
        "reviews after the rotation: %s" % after
    assert log_lines(w, r"token=k8s-02: Vault token rejected as invalid"), \
        "no re-login after the revocation: %s" % w.stderr_tail(3)
    # A JWT the reviewer refuses: no token, the event is held.
    bad = k.projected(known=False)
    k.mount(bad)
    api("PUT", "sys/leases/revoke-prefix/auth/kubernetes/login")
    S.stack.create_token("k8s-03", description="refused JWT")

    def held():
        alive(w)
        return log_lines(w, r"no usable token \(configuration\): vault "
                         r"login answered HTTP 403: permission denied")
    assert akvtest.wait_until(held, 10), "no login refusal: %s" % (
        w.stderr_tail(3))
    time.sleep(2)
    alive(w)
    assert "k8s-03" not in S.stack.vault_current(), "k8s-03 written"
    assert_not_committed("vault-auth-k8s", ["k8s-03"])
    # A good JWT again: the held sync logs in with it and goes through.
    good = k.projected()
    k.mount(good)
    k.good = good
    dt = wait_synced(S.stack, ["k8s-03"], workers=[w])
    stats = stop_worker(w)
    assert stats["dead_lettered"] == 0, stats
    assert_dlq_empty()
    note("rotated JWT read at the next login; a refused one held k8s-03 "
         "until a good one came (synced %.1fs later)" % dt)


# ---------------------------------------------------------------------------
# 6. setup.sh


@depends("test_stack_starts")
def test_setup_sh_token_mode():
    d = S.rundir.sub("setup-token")
    f = d.path / "vault-token"
    out = setup_sh("token", str(f))
    assert "token with policy ak2vault written to %s" % f in out, \
        "setup.sh token said: %s" % out.strip()[-200:]
    assert f.stat().st_mode & 0o077 == 0, "%s is mode %o" % (
        f.name, f.stat().st_mode & 0o777)
    first = f.read_text().strip()
    SECRETS.add("Vault token", first)
    info = api("GET", "auth/token/lookup-self", token=first)["data"]
    got = (sorted(info["policies"]), info["period"], info["orphan"],
           info["renewable"])
    assert got == (["ak2vault", "default"], 86400, True, True), got
    rc, lines = check_config("setup-token", config(
        "setup-token", {"auth": {"method": "token"}, "token_file": str(f)}))
    assert rc == EX_OK, "status %d: %s" % (rc, describe(lines))
    out = setup_sh("token", str(f))
    assert "holds a live token; kept" in out and \
        f.read_text().strip() == first, \
        "the re-run replaced a live token (it said: %s)" % SECRETS.scrub(
            out.strip()[-200:])
    api("POST", "auth/token/revoke", {"token": first})
    out = setup_sh("token", str(f))
    second = f.read_text().strip()
    SECRETS.add("Vault token", second)
    assert second != first and "written to" in out, \
        "a revoked token was kept"
    api("GET", "auth/token/lookup-self", token=second)


def approle_state():
    return (api("GET", "sys/mounts/kv")["data"]["options"],
            api("GET", "sys/policy/ak2vault")["data"]["rules"],
            api("GET", "auth/approle/role/ak2vault")["data"],
            sorted(api("GET", "sys/auth")["data"]))


@depends("test_stack_starts")
def test_setup_sh_approle_rerun_is_idempotent():
    before = approle_state()
    first = vault().approle.path
    d = S.rundir.sub("approle-again")
    out = setup_sh("approle", str(d.path), env={
        "TOKEN_TTL": akvtest.REAL_VAULT_TOKEN_TTL,
        "TOKEN_MAX_TTL": akvtest.REAL_VAULT_TOKEN_MAX_TTL})
    SECRETS.add("AppRole secret-id", (d.path / "secret-id").read_text()
                .strip())
    assert "kv/ is already a KV version 2 mount" in out, \
        "setup.sh approle said: %s" % SECRETS.scrub(out.strip()[-200:])
    after = approle_state()
    changed = [n for n, a, b in zip(("mount", "policy", "role", "auth"),
                                    before, after) if a != b]
    assert not changed, "the re-run changed: %s" % changed
    assert (d.path / "role-id").read_text() == \
        (first / "role-id").read_text(), "the role-id changed"
    # The secret-id of the first run still logs in, and the new one too.
    for where in (first, d.path):
        api("POST", "auth/approle/login", {
            "role_id": (where / "role-id").read_text().strip(),
            "secret_id": (where / "secret-id").read_text().strip()},
            token="-")


@depends("test_kubernetes_login_with_setup_sh")
def test_setup_sh_kubernetes_rerun_is_idempotent():
    k = S.k8s

    def state():
        return (api("GET", "auth/kubernetes/config")["data"],
                api("GET", "auth/kubernetes/role/ak2vault")["data"],
                sorted(api("GET", "sys/auth")["data"]))
    before = state()
    setup_sh("kubernetes", env=k.setup_env())
    after = state()
    changed = [n for n, a, b in zip(("config", "role", "auth"), before,
                                    after) if a != b]
    assert not changed, "the re-run changed: %s" % changed
    out = api("POST", "auth/kubernetes/login", {"role": "ak2vault",
                                                "jwt": k.good}, token="-")
    SECRETS.add("Vault token", out["auth"]["client_token"])


@depends("test_stack_starts")
def test_setup_sh_refuses_a_kv_v1_mount():
    mounts = {"kvone": {"type": "kv", "options": {"version": "1"}},
              "kvplain": {"type": "kv"}}
    for mount, body in mounts.items():
        api("POST", "sys/mounts/" + mount, body)
        out = setup_sh("approle", str(S.rundir.sub("kv1-" + mount).path),
                       env={"KV_MOUNT": mount, "POLICY_NAME": "never-" +
                            mount}, expect=1)
        assert "setup.sh: %s/ exists but is not KV version 2" % mount in \
            out, "setup.sh said: %s" % SECRETS.scrub(out.strip()[-300:])
        # It stopped there: no policy written, the mount left alone.
        status, _ = vault().api("GET", "sys/policy/never-" + mount)
        assert status == 404, "policy never-%s: %s" % (mount, status)
        opts = api("GET", "sys/mounts/" + mount)["data"]["options"] or {}
        assert opts.get("version") in (None, "1"), opts


# ---------------------------------------------------------------------------
# 4. AppRole at short TTLs: the results


@depends("test_short_ttl_worker_starts")
def test_short_ttl_worker_renews_and_logs_in_again():
    load, w = S.load, S.short
    load.join(LOAD_SECONDS + 30)
    assert not load.is_alive(), "the load is still running"
    ran = time.monotonic() - load.t0
    assert not load.errors, "load: %s" % "; ".join(load.errors[:3])
    alive(w)
    dt = wait_synced(S.ak2, load.idents, workers=[w])
    # Vault's audit log: renewals of that role's tokens, and new logins
    # once the renewals ran out at token_max_ttl.
    logins = [e for e in audit_entries("auth/approle/login")
              if role_of(e) == RENEW_ROLE]
    renewals = [e for e in audit_entries("auth/token/renew-self")
                if role_of(e) == RENEW_ROLE]
    refused = [e for e in vault().audit()
               if role_of(e) == RENEW_ROLE and e.get("error")]
    login_errors = [e for e in audit_entries("auth/approle/login")
                    if e.get("error")]
    want_logins = int(ran // RENEW_MAX_TTL)
    assert len(logins) >= max(3, want_logins), \
        "%d logins of %s in %.0fs at token_max_ttl=%ds" % (
            len(logins), RENEW_ROLE, ran, RENEW_MAX_TTL)
    assert len(renewals) >= 2 * len(logins) - 2, \
        "%d renew-self requests for %d logins" % (len(renewals),
                                                  len(logins))
    # Vault counts a token's max TTL from its creation time in whole
    # seconds and rounds the TTL a capped renewal grants up: the last
    # renewal of a token may come after its max TTL. Vault refuses it
    # (HTTP 500, "past the max TTL"); the worker must then log in at once,
    # not retry the renewal until the token expires.
    other = [e["request"]["path"] for e in refused
             if e["request"]["path"] != "auth/token/renew-self" or
             "past the max TTL" not in e["error"]]
    assert not other, "refused requests of %s: %s" % (RENEW_ROLE, other[:5])
    per_token = {}
    for e in refused:
        per_token.setdefault(e["auth"]["accessor"], []).append(e)
    again = [len(v) for v in per_token.values() if len(v) > 1]
    assert not again, "a renewal past the max TTL retried %s times " \
        "instead of a new login" % again
    login_times = [audit_time(e) for e in logins]
    late = [audit_time(e) for e in refused
            if not any(0 <= t - audit_time(e) <= 1.0 for t in login_times)]
    assert not late, "no login within 1s of %d renewals refused past the " \
        "max TTL" % len(late)
    assert not login_errors, "%d failed AppRole logins" % len(login_errors)
    bad = log_lines(w, r"rejected as invalid|no usable token|class=|"
                    r"renewal failed|renewal refused (?!.*past the max TTL)")
    assert not bad, "the worker's token lapsed or was refused: %s" % (
        bad[0][:200])
    # /metrics: the lease is the role's TTL throughout; the TTL within it,
    # and never 0 (no expired token) once logged in.
    scrapes = [s for s in load.scrapes if s[2] == s[2] and s[2] > 0]
    assert len(scrapes) >= LOAD_SECONDS, "%d scrapes with a token" % (
        len(scrapes))
    leases = sorted({s[2] for s in scrapes})
    assert leases == [float(RENEW_TTL)], \
        "ak2vault_vault_token_lease_seconds took %s" % leases
    out = [round(s[1], 2) for s in scrapes
           if not 0 < s[1] <= RENEW_TTL]
    assert not out, "ak2vault_vault_token_ttl_seconds outside (0, %d]: %s" \
        % (RENEW_TTL, out[:10])
    assert scrapes[-1][3] == 0, "%d Vault requests answered 400/403" % (
        scrapes[-1][3])
    # The worker renews, or logs in once the max TTL caps renewals, when
    # a third of the lease is left: AK2VaultVaultTokenExpiring's quarter
    # is never reached on a healthy worker.
    lowest = min(s[1] / s[2] for s in scrapes)
    assert lowest >= 0.25, "TTL down to %.2f of the lease" % lowest
    stats = stop_worker(w)
    assert stats["retries"] == 0 and stats["dead_lettered"] == 0, stats
    assert stats["written"] >= len(load.idents), stats
    note("%.0fs at token_ttl=%ds, token_max_ttl=%ds: %d logins, %d "
         "renewals (%d refused past the max TTL, each followed by a login); "
         "%d tokens, %d key changes, all in Vault %.1fs after the last; %d "
         "scrapes, lease %ds, TTL down to %.2f of it" % (
             ran, RENEW_TTL, RENEW_MAX_TTL, len(logins), len(renewals),
             len(refused), len(load.idents), load.rekeyed, dt, len(scrapes),
             RENEW_TTL, lowest))


# ---------------------------------------------------------------------------


@depends("test_stack_starts")
def test_stand_ins_stop_cleanly():
    if S.load:
        S.load.stop.set()
    for w in S.workers:
        if w.running():
            w.stop()
    S.stack.live_tokens()
    S.ak2.live_tokens()
    rcs = {p.name: p.stop() for p in S.procs + [
        S.stack.authentik, S.stack.vault, S.stack.kafka]}
    bad = ["%s exited %s" % (n, rc) for n, rc in rcs.items() if rc != 0]
    assert not bad, "; ".join(bad)


def test_no_secret_in_any_output():
    akvtest.stop_all()
    kinds = SECRETS.kinds()
    logs = S.rundir.logs()
    akvtest.assert_no_secrets(logs, base=S.rundir.path)
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "vault_auth", setup=setup,
                      teardown=teardown)
