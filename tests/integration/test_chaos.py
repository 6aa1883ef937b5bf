#!/usr/bin/python3
"""Chaos: ak2vault converges, loses nothing and dead-letters only poison
while its upstreams misbehave.

Every scenario runs its own loopback stack (mock-kafka with the topic and
its dead-letter topic, fake-vault, fake-authentik) in a subdirectory of the
run directory, injects faults through the fakes' /_fake/faults plans, and
ends the same way: fake-vault's current data for every live authentik
token is exactly {"key", "intent"}, and the dead-letter topic, read back
with kcat, is empty or holds exactly the poison the test produced.

  1. flaky Vault: 30% of KV writes answered 500/503/429 (Retry-After 1),
     connections dropped before and after the write, truncated answers,
     then every answer of a write lost: no version is written twice;
  2. every event of scenario 1 delivered again, in reverse order per
     partition: not one new version;
  3. Vault sealed for 20 s while tokens keep changing;
  4. kubernetes and approle logins with 3 s tokens (6 s max TTL) while
     tokens change for 15 s: renewals and re-logins, nothing lost;
  5. a policy denies kv/data/authentik/team-b for a while: team-b tokens
     are held (class=configuration), other partitions progress, and after
     the policy is lifted every team-b event ends written;
  6. two workers in different groups race on the same tokens through a
     slow Vault: check-and-set mismatches happen, no version is redundant;
  7. poison (bad identifier, no model reference, cut-off and non-JSON
     bytes, some with Kafka headers) lands in the dead-letter topic with
     its key, value and headers and the eight ak2vault.* headers, and the
     partitions move on;
  8. on_delete keep / soft-delete / purge, and provenance metadata;
  9. authentik refuses the service account (403) for a while: events are
     held, the cause is logged at most once per log_interval_ms;
 10. no captured output (workers, fakes, kcat) holds a token key, the
     Vault root token, the authentik API token, the JWT or the secret_id;
 11. a worker that gave partitions up and got them back does not trust
     what it remembered of Vault from before;
 12. a 200 without a version (null data, HTML, garbage, no body) is not a
     write;
 13. a Vault error that quotes the request leaks no part of the key to
     logs or the dead-letter topic;
 14. a poison event too large for the dead-letter topic goes there as a
     bounded copy and its partition moves on;
 15. a token deleted and created again at once, its new events on another
     replica: the late DELETE of the old one does not bury the new one;
 16. a Vault login that takes 8 s: /livez stays 200 and the partitions
     without the waiting token keep committing meanwhile.

Failures name identifiers and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import datetime  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from keyaudit import KeyBook, version_audit  # noqa: E402
from akvtest import SECRETS, depends, note, wait_until  # noqa: E402

TOPIC = akvtest.TOPIC
DLQ = TOPIC + ".dlq"
S = SimpleNamespace(rundir=None, stacks=[], flaky=None, flaky_keys=None,
                    dlq_read=0, ran_token_expiry=False)

# Small delays keep the scenarios fast.
BASE_CFG = akvtest.merge_settings(akvtest.MOCK_GROUP_WORKAROUND, {
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000,
             "retry_after_max_ms": 5000, "config_retry_ms": 500,
             "log_interval_ms": 2000},
})
CONVERGE_TIMEOUT = 60
ASSIGN_TIMEOUT = 30
STOP_TIMEOUT = 20
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")
ASSIGNED = re.compile(r"assigned ([1-9]\d*) partition")
DLQ_HEADERS = ("ak2vault.error.class", "ak2vault.error.reason",
               "ak2vault.source.topic", "ak2vault.source.partition",
               "ak2vault.source.offset", "ak2vault.attempts",
               "ak2vault.failure.first", "ak2vault.failure.last")


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    for st in S.stacks:
        st.stop()


# ---------------------------------------------------------------------------
# helpers


merged = akvtest.merge_settings
POLICY = akvtest.REPO / "docker/vault/ak2vault-policy.hcl"


def new_stack(name, topics=(), **kw):
    """A fresh stack in its own subdirectory, with the dead-letter topic
    (1 partition) and room for every version Vault is asked to keep."""
    rd = S.rundir.sub(name)
    st = akvtest.Stack(rd, topics=(DLQ + ":1",) + tuple(topics),
                       max_versions=100000, **kw)
    S.stacks.append(st)
    return st


def start(st, name, group, extra=None, env=None, exit_at_end=False):
    return st.start_worker(name, group, exit_at_end=exit_at_end,
                           extra=merged(BASE_CFG, extra or {}), env=env)


def wait_assigned(workers, timeout=ASSIGN_TIMEOUT):
    """Until every worker was assigned partitions (and still runs)."""
    def ready():
        dead = [w for w in workers if not w.running()]
        if dead:
            return "dead"
        return all(ASSIGNED.search(w.stderr_text()) for w in workers)
    ok = wait_until(ready, timeout)
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in workers if not w.running()]
    assert not dead, "; ".join(dead)
    assert ok, "not assigned any partition within %ds: %s" % (
        timeout, ", ".join(w.name for w in workers
                           if not ASSIGNED.search(w.stderr_text())))


def new_key():
    return "chaos" + akvtest.random_secret(43)


def current(st, prefix="authentik", kv=None):
    """{identifier: (current version, data or None, deletion_time)}."""
    out = {}
    kv = st.vault_kv() if kv is None else kv
    for path, sec in kv.items():
        if not path.startswith(prefix + "/"):
            continue
        cur = sec.get("current_version")
        ver = sec.get("versions", {}).get(str(cur), {})
        out[path[len(prefix) + 1:]] = (cur, ver.get("data"),
                                       ver.get("deletion_time") or "")
    return out


def mismatches(st, prefix="authentik", only=None):
    """[(identifier, what differs)] for every live token (or those in
    \\p only) whose copy under \\p prefix is not {"key", "intent"}."""
    live = st.live_tokens()
    cur = current(st, prefix)
    bad = []
    for ident, tok in sorted(live.items()):
        if only is not None and ident not in only:
            continue
        got = cur.get(ident)
        if got is None:
            bad.append((ident, "missing"))
        elif got[2]:
            bad.append((ident, "current version v%s deleted" % got[0]))
        elif got[1] == {"key": tok["key"], "intent": tok["intent"]}:
            continue
        elif not isinstance(got[1], dict):
            bad.append((ident, "no data"))
        elif got[1].get("key") != tok["key"]:
            bad.append((ident, "stale key (v%s)" % got[0]))
        elif got[1].get("intent") != tok["intent"]:
            bad.append((ident, "intent %r, authentik says %r" % (
                got[1].get("intent"), tok["intent"])))
        else:
            bad.append((ident, "unexpected fields %s" % sorted(got[1])))
    return bad


def describe(items, limit=10):
    text = ", ".join("%s: %s" % m for m in items[:limit])
    if len(items) > limit:
        text += ", ... (%d in all)" % len(items)
    return text


def wait_converged(st, prefixes=("authentik",), timeout=CONVERGE_TIMEOUT,
                   only=None, workers=()):
    last = []
    t0 = time.monotonic()

    def done():
        dead = [w for w in workers if not w.running()]
        assert not dead, "%s exited %s: %s" % (
            dead[0].name, dead[0].wait(0), dead[0].stderr_tail(3))
        last[:] = [("%s/%s" % (p, i), why) for p in prefixes
                   for i, why in mismatches(st, p, only)]
        return not last
    ok = wait_until(done, timeout, interval=0.3)
    assert ok, "after %ds, %d tokens differ in Vault: %s" % (
        timeout, len(last), describe(last))
    return time.monotonic() - t0


def read_topic(st, topic=None, what="topic"):
    S.dlq_read += 1
    return akvtest.kcat_consume(st.brokers, topic or st.topic, st.rundir,
                                name="kcat-%s-%d" % (what, S.dlq_read))


def check_dlq(st, expected=0, topic=None):
    """The dead-letter topic holds exactly \\p expected records."""
    recs = read_topic(st, topic or DLQ, "dlq")
    if len(recs) != expected:
        shown = ["p%s@%s %s" % (r["partition"], r["offset"], dict(
            r["headers"]).get("ak2vault.error.reason")) for r in recs[:5]]
        raise AssertionError("dead-letter topic %s holds %d records, "
                             "wanted %d: %s" % (topic or DLQ, len(recs),
                                                expected, "; ".join(shown)))
    return recs


def final_checks(st, prefixes=("authentik",), dlq=0, workers=()):
    wait_converged(st, prefixes, timeout=10, workers=workers)
    return check_dlq(st, dlq)


def stop_workers(workers):
    """SIGTERM, wait; @returns {name: final stats}."""
    for w in workers:
        w.signal(signal.SIGTERM)
    problems, stats = [], {}
    for w in workers:
        rc = w.wait(STOP_TIMEOUT)
        if rc is None:
            w.stop(1)
            problems.append("%s did not stop within %ds" % (w.name,
                                                           STOP_TIMEOUT))
            continue
        if rc != 0:
            problems.append("%s exited %d: %s" % (w.name, rc,
                                                  w.stderr_tail(3)))
        st = akvtest.final_stats(w.stderr_text())
        if st is None:
            problems.append("%s: no final stats line" % w.name)
        else:
            stats[w.name] = st
    assert not problems, "; ".join(problems)
    return stats


def run_to_end(st, name, group, extra=None, timeout=60):
    w = start(st, name, group, extra=extra, exit_at_end=True)
    rc = w.wait(timeout)
    if rc is None:
        w.stop(5)
        raise AssertionError("%s (--exit-at-end) still running after %ds"
                             % (name, timeout))
    assert rc == 0, "%s exited %d: %s" % (name, rc, w.stderr_tail(3))
    stats = akvtest.final_stats(w.stderr_text())
    assert stats is not None, "%s: no final stats line" % name
    return w, stats


def event_pk(value):
    """The "pk" of an event's JSON text; None for anything else."""
    try:
        ev = json.loads(value or "")
    except ValueError:
        return None
    return ev.get("pk") if isinstance(ev, dict) else None


def token_events(records):
    """{identifier: [(partition, offset, event pk, action)]} of the token
    events in \\p records (kcat_consume output)."""
    out = {}
    for r in records:
        try:
            ev = json.loads(r["value"] or "")
        except ValueError:
            continue
        ref = (ev.get("context") or {}).get("model") or {}
        if ref.get("model_name") != "token" or "name" not in ref:
            continue
        ident = ref["name"].split(" ", 1)[0]
        out.setdefault(ident, []).append((r["partition"], r["offset"],
                                          ev.get("pk"), ev.get("action")))
    return out


def log_lines(w, pattern):
    rx = re.compile(pattern)
    return [l for l in w.stderr_text().splitlines() if rx.search(l)]


def log_time(line):
    m = LOG_TS.match(line)
    return datetime.datetime.strptime(
        m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp() if m else None


def config_lines_spaced(lines, interval_s):
    """Asserts that the class=configuration \\p lines are at least
    \\p interval_s (sync.log_interval_ms) apart: per partition when they
    name one (a held partition logs for itself), else per worker.
    @returns {partition or "all": [their times]}."""
    by_part = {}
    for l in lines:
        m = re.search(r"partition=(\d+)", l)
        by_part.setdefault(m.group(1) if m else "all",
                           []).append(log_time(l))
    close = ["p%s %.2fs apart" % (part, y - x)
             for part, ts in sorted(by_part.items())
             for x, y in zip(ts, ts[1:]) if y - x < interval_s - 0.1]
    assert not close, "configuration lines closer than log_interval_ms " \
        "%d: %s" % (interval_s * 1000, ", ".join(close[:5]))
    return by_part


def handmade_event(name, action="model_created", with_model=True):
    """A token event shaped like authentik's; name None leaves it out."""
    model = {"pk": uuid.uuid4().hex, "app": "authentik_core",
             "name": name, "model_name": "token"}
    if name is None:
        del model["name"]
    ctx = {"http_request": {"args": {}, "path": "/api/v3/core/tokens/",
                            "method": "POST",
                            "request_id": uuid.uuid4().hex,
                            "user_agent": "curl/8.5.0"}}
    if with_model:
        ctx["model"] = model
    return model["pk"], {
        "pk": str(uuid.uuid4()),
        "user": {"pk": 4, "email": "admin@example.com",
                 "username": "akadmin"},
        "action": action, "app": "authentik.events.middleware",
        "context": ctx, "client_ip": "192.0.2.10",
        "created": "2026-04-21T09:12:00.498765Z",
        "expires": "2027-04-21T09:12:00.497311Z",
    }


# ---------------------------------------------------------------------------
# 1 + 2: flaky Vault, then every event again in reverse order


@akvtest.fake_vault_only("needs Vault dropping and failing requests")
def test_flaky_vault_writes_each_key_once():
    st = S.flaky = new_stack("flaky")
    book = S.flaky_keys = KeyBook(st)
    w = start(st, "flaky-worker", "chaos-flaky")
    # 30% of KV writes fail with 500/503/429 (Retry-After: 1 on 429/503),
    # 5% of connections close unanswered (not performed), 5% close after
    # the write was done (the lost-answer case) and 2% get half an answer.
    plan = st.vault_faults({
        "scope": "kv_write", "retry_after": "1",
        "error_rates": {"500": 0.1, "503": 0.1, "429": 0.1},
        "drop_rate": 0.05, "drop_after_rate": 0.05, "truncate_rate": 0.02})
    assert plan.get("scope") == "kv_write", "plan not taken: %s" % plan
    idents = ["flaky-%02d" % i for i in range(40)]
    for i, ident in enumerate(idents):
        st.create_token(ident, intent="app_password" if i % 5 == 0
                        else "api")
    book.snapshot()
    dt1 = wait_converged(st, workers=[w])
    # Caught up: every re-key below is a write of its own.
    for ident in idents[:15]:
        book.set_key(ident)
    for ident in idents[:5]:  # some twice
        book.set_key(ident)
    for ident in (idents[38], idents[39]):
        st.delete_token(ident)
    dt2 = wait_converged(st, workers=[w])
    note("40 created, then 20 re-keys and 2 deletes: converged %.1fs and "
         "%.1fs after the changes under 30%% errors and 12%% broken "
         "connections" % (dt1, dt2))

    # Every answer to a write lost: each write still lands exactly once.
    before = {i: v[0] for i, v in current(st).items()}
    st.vault_faults({"scope": "kv_write", "drop_after_rate": 1.0})
    lost = idents[20:25]
    for ident in lost:
        book.set_key(ident)
    wait_converged(st, workers=[w])
    after = {i: v[0] for i, v in current(st).items()}
    extra = ["%s v%s->v%s" % (i, before[i], after[i]) for i in lost
             if after[i] != before[i] + 1]
    assert not extra, "after one re-key with every write answer lost, " \
        "versions moved by more (or less) than one: %s" % ", ".join(extra)
    st.vault_faults(None)

    counts = version_audit(st, book.keys)
    fstats = st.vault_stats()
    faults = fstats["faults"]
    nerr = sum(faults["errors"].values())
    assert nerr > 0 and faults["dropped"] > 0 and \
        faults["dropped_after"] >= len(lost), \
        "the plan hardly bit: errors=%d dropped=%d dropped_after=%d" % (
            nerr, faults["dropped"], faults["dropped_after"])
    assert fstats["kv_writes"] == sum(counts.values()), \
        "kv_writes=%s but the paths hold %d versions" % (
            fstats["kv_writes"], sum(counts.values()))
    transient = log_lines(w, r"class=transient")
    assert transient, "the worker logged no transient retry"
    honoured = log_lines(w, r"class=transient .*retry_in_ms=1000:")
    assert honoured, "no retry waited the 1 s Retry-After"
    final_checks(st, workers=[w])
    note("fake-vault: %d injected errors, %d dropped, %d answers lost, %d "
         "truncated; %d versions for %d tokens; %d transient retries "
         "logged (%d after a Retry-After)" % (
             nerr, faults["dropped"], faults["dropped_after"],
             faults["truncated"], fstats["kv_writes"], len(counts),
             len(transient), len(honoured)))
    stats = stop_workers([w])["flaky-worker"]
    assert stats["dead_lettered"] == 0 and stats["poison"] == 0, \
        "dead_lettered=%d poison=%d" % (stats["dead_lettered"],
                                        stats["poison"])
    assert stats["retries"] >= len(transient), \
        "retries=%d, %d retry lines" % (stats["retries"], len(transient))
    assert stats["written"] <= fstats["kv_writes"], \
        "written=%d > kv_writes=%d" % (stats["written"],
                                       fstats["kv_writes"])


@depends("test_flaky_vault_writes_each_key_once")
def test_every_event_twice_in_reverse_order_writes_nothing():
    st = S.flaky
    records = read_topic(st, what="source")
    kv_before = st.vault_kv()
    writes_before = st.vault_stats()["kv_writes"]
    # Reverse order, each record into the partition it came from (its key
    # would map it there too): per-key ordering is reversed, not mixed.
    by_part = {}
    for r in records:
        by_part.setdefault(r["partition"], []).append(r)
    again = [(p, r["key"], r["value"]) for p in sorted(by_part)
             for r in reversed(by_part[p])]
    ntoken = sum(len(v) for v in token_events(records).values())
    akvtest.kcat_produce_many(st.brokers, st.topic, again, st.rundir,
                              name="kcat-reproduce")
    w, stats = run_to_end(st, "flaky-redelivery", "chaos-flaky")
    writes = st.vault_stats()["kv_writes"]
    assert writes == writes_before, \
        "kv_writes went from %d to %d: redelivered events wrote" % (
            writes_before, writes)
    kv_after = st.vault_kv()
    moved = sorted(p for p in set(kv_before) | set(kv_after)
                   if (kv_before.get(p) or {}).get("current_version") !=
                   (kv_after.get(p) or {}).get("current_version"))
    assert not moved, "new versions at: %s" % moved[:10]
    assert stats["matched"] >= ntoken, \
        "matched=%d, %d token events were produced again" % (
            stats["matched"], ntoken)
    assert stats["written"] == 0 and stats["deleted"] == 0, \
        "written=%d deleted=%d" % (stats["written"], stats["deleted"])
    # A sync may answer for several events of its token (events=N).
    answered = {}
    for s_ in akvtest.sync_lines(w.stderr_text()):
        answered[s_["result"]] = answered.get(s_["result"], 0) + \
            s_["events"]
    assert sum(answered.values()) == stats["matched"] and \
        set(answered) <= {"unchanged", "gone"}, \
        "matched=%d but the syncs answered for %s" % (stats["matched"],
                                                      answered)
    assert stats["gone"] > 0, "the deleted tokens' events did not come"
    version_audit(st, S.flaky_keys.keys)
    final_checks(st)
    note("%d records (%d token events) produced again in reverse: %d "
         "unchanged and %d gone events, written=0" % (
             len(again), ntoken, answered.get("unchanged", 0),
             answered.get("gone", 0)))
    st.stop()


# ---------------------------------------------------------------------------
# 3: Vault sealed for 20 s


def test_vault_sealed_for_20s():
    st = new_stack("sealed")
    book = KeyBook(st)
    w = start(st, "sealed-worker", "chaos-sealed")
    for i in range(8):
        book.create("sealed-%02d" % i)
    wait_converged(st, workers=[w])
    writes = st.vault_stats()["kv_writes"]
    seal_s = 20
    if st.real_vault:
        # Sealed for real (sys/seal), unsealed with the dev key after
        # seal_s.
        st.vault_server.seal()
        unsealer = threading.Timer(seal_s, st.vault_server.unseal)
        unsealer.start()
    else:
        st.vault_faults({"sealed_for_ms": seal_s * 1000,
                         "retry_after": "http-date:1"})
    sealed_at = time.monotonic()
    # Changes keep coming while Vault is sealed.
    n = 0
    while time.monotonic() - sealed_at < seal_s - 4:
        if n % 2 == 0:
            book.create("sealed-new-%02d" % n)
        else:
            book.set_key("sealed-%02d" % (n % 8))
        n += 1
        time.sleep(1.5)
    if not st.real_vault:  # a sealed real Vault cannot be read
        during = st.vault_stats()
        assert during["kv_writes"] == writes, \
            "%d versions written while sealed" % (
                during["kv_writes"] - writes)
    assert time.monotonic() - sealed_at < seal_s, "the test was too slow"

    def unsealed():
        status, _ = akvtest.http_json("GET", st.vault_addr +
                                      "/v1/sys/health")
        return status == 200
    assert wait_until(unsealed, seal_s + 5), "still sealed after %ds" % (
        seal_s + 5)
    if st.real_vault:
        unsealer.join()
    dt = wait_converged(st, workers=[w], timeout=30)
    retries = log_lines(w, r"class=transient .*[Ss]ealed")
    assert retries, "no transient retry naming the seal was logged"
    # A sealed Vault audits nothing: only fake-vault counts its answers.
    sealed_count = len(retries) if st.real_vault else \
        st.vault_stats()["faults"]["sealed"]
    assert sealed_count > 0, "Vault answered no sealed 503"
    version_audit(st, book.keys)
    final_checks(st, workers=[w])
    stats = stop_workers([w])["sealed-worker"]
    assert stats["dead_lettered"] == 0, "dead_lettered=%d" % (
        stats["dead_lettered"])
    note("%d changes while sealed; %d sealed answers, %d retries logged; "
         "converged %.1fs after the unseal" % (n, sealed_count,
                                               len(retries), dt))
    st.stop()


# ---------------------------------------------------------------------------
# 4: short-lived login tokens (kubernetes and approle)


@akvtest.fake_vault_only("needs fake-vault's login tokens of 3 s "
                         "(test_vault_auth logs in to the real Vault)")
def test_token_expiry_with_kubernetes_and_approle():
    S.ran_token_expiry = True
    jwt = "eyJhbGciOiJSUzI1NiJ9." + akvtest.random_secret(120)
    role_id = str(uuid.uuid4())
    secret_id = akvtest.random_secret(36)
    SECRETS.add("kubernetes JWT", jwt)
    SECRETS.add("approle secret_id", secret_id)
    rd = S.rundir.sub("expiry")
    jwt_file = rd.write("jwt", jwt + "\n")
    sid_file = rd.write("secret-id", secret_id + "\n")
    st = new_stack("expiry", vault_args=(
        "--k8s-role", "ak2vault=%s" % jwt_file,
        "--approle", "%s=%s" % (role_id, secret_id)))
    plan = st.vault_faults({"token_ttl_s": 3, "token_max_ttl_s": 6})
    assert plan.get("token_ttl_s") == 3, "plan not taken: %s" % plan
    no_token = {"VAULT_TOKEN": None}
    k8s = start(st, "k8s-worker", "chaos-k8s", env=no_token, extra={
        "vault": {"auth": {"method": "kubernetes", "role": "ak2vault",
                           "jwt_file": str(jwt_file)}}})
    approle = start(st, "approle-worker", "chaos-approle", env=no_token,
                    extra={"vault": {
                        "prefix": "authentik-approle",
                        "auth": {"method": "approle", "role_id": role_id,
                                 "secret_id_file": str(sid_file)}}})
    workers = [k8s, approle]
    book = KeyBook(st)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 15:
        book.create("expiry-%02d" % n)
        if n >= 3:
            book.set_key("expiry-%02d" % (n - 3))
        n += 1
        time.sleep(0.5)
    prefixes = ("authentik", "authentik-approle")
    wait_converged(st, prefixes, workers=workers)
    vs = st.vault_stats()
    logins = {}
    for r in st.vault_requests():
        if r.get("method") == "POST" and r.get("status") == 200 and \
                r.get("path", "").endswith("/login"):
            logins[r["path"]] = logins.get(r["path"], 0) + 1
    k8s_logins = sum(v for p, v in logins.items() if "kubernetes" in p)
    app_logins = sum(v for p, v in logins.items() if "approle" in p)
    assert k8s_logins >= 3 and app_logins >= 3, \
        "logins in ~%ds with a 6 s max TTL: kubernetes %d, approle %d " \
        "(wanted 3+ each)" % (time.monotonic() - t0, k8s_logins, app_logins)
    assert vs["renewals"] >= 4, "only %d renewals" % vs["renewals"]
    for w in workers:
        bad = log_lines(w, r"class=configuration|no usable token")
        assert not bad, "%s: %s" % (w.name, bad[0][:200])
    for prefix in prefixes:
        version_audit(st, book.keys, prefix)
    final_checks(st, prefixes, workers=workers)
    stats = stop_workers(workers)
    dl = {n_: s["dead_lettered"] for n_, s in stats.items()
          if s["dead_lettered"]}
    assert not dl, "dead-lettered: %s" % dl
    reactive = sum(len(log_lines(w, "token rejected as invalid"))
                   for w in workers)
    note("%d tokens changed over 15s; logins: kubernetes %d, approle %d; "
         "%d renewals; %d re-logins after an expired token was refused"
         % (n, k8s_logins, app_logins, vs["renewals"], reactive))
    st.stop()


# ---------------------------------------------------------------------------
# 5: policy denial on part of the prefix


@akvtest.fake_vault_only("needs a denial switched on and off under a "
                         "running worker")
def test_policy_denial_holds_only_its_tokens():
    st = new_stack("denied")
    denied_prefix = "kv/data/authentik/team-b"
    st.vault_faults({"deny_prefix": denied_prefix})
    t_deny = time.monotonic()
    # A retry a second: a held event comes back with the next fetch
    # answer, so intervals under fetch.wait.max.ms (500 ms) round up.
    w = start(st, "denied-worker", "chaos-denied",
              extra={"sync": {"config_retry_ms": 1000,
                              "log_interval_ms": 2000}})
    team_b = ["team-b-01", "team-b-02"]
    for ident in team_b:
        st.create_token(ident)
    # Others until at least 4 have their partition free of team-b events.
    others, free = [], []
    for i in range(30):
        ident = "team-a-%02d" % i
        st.create_token(ident)
        others.append(ident)
        if i >= 5:
            ev = token_events(read_topic(st, what="denied-src"))
            blocked = {p for t in team_b for p, _, _, _ in ev.get(t, ())}
            free = [t for t in others
                    if {p for p, _, _, _ in ev[t]}.isdisjoint(blocked)]
            if len(free) >= 4:
                break
    assert len(free) >= 4, "only %d tokens outside team-b's partitions" % (
        len(free))
    wait_converged(st, only=set(free), workers=[w])
    cur = current(st)
    leaked = [t for t in team_b if t in cur]
    assert not leaked, "written despite the policy: %s" % leaked
    # Hold the denial for a while: the point is how it retries and logs.
    window = 8.0
    time.sleep(max(0.0, window - (time.monotonic() - t_deny)))
    denied = st.vault_stats()["faults"]["denied_prefix"]
    cfg_lines = log_lines(w, r"token=team-b-\d+ class=configuration")
    assert cfg_lines, "no class=configuration line for team-b"
    held_s = time.time() - log_time(cfg_lines[0])
    per_part = config_lines_spaced(cfg_lines, 2.0)
    most = max(len(v) for v in per_part.values())
    # config_retry_ms 1000: about one attempt a second per held token (or
    # partition), not the transient backoff's dozens.
    assert 2 <= denied <= len(team_b) * (held_s / 1.0 + 2), \
        "%d denied requests in %.1fs for %d held tokens" % (
            denied, held_s, len(team_b))
    progressed = [t for t in others if t not in free and
                  not mismatches(st, only={t})]
    assert not log_lines(w, r"token=team-b-\d+ class=transient"), \
        "the denial was retried as transient"
    st.vault_faults(None)
    dt = wait_converged(st, workers=[w], timeout=20)
    final_checks(st, workers=[w])
    stats = stop_workers([w])["denied-worker"]
    assert stats["dead_lettered"] == 0 and stats["poison"] == 0, \
        "dead_lettered=%d poison=%d" % (stats["dead_lettered"],
                                        stats["poison"])
    results = {}
    for s in akvtest.sync_lines(w.stderr_text()):
        if s["token"] in team_b:
            results.setdefault(s["token"], set()).add(s["result"])
    missing = [t for t in team_b if "written" not in results.get(t, ())]
    assert not missing, "team-b events did not end written: %s" % missing
    note("team-b held %.1fs (%d denied requests, at most %d log lines "
         "per %s) while the %d tokens of other partitions synced (and %d "
         "of the %d behind team-b in its partitions); converged %.1fs "
         "after lifting" % (held_s, denied, most, "partition" if "all"
                            not in per_part else "worker", len(free),
                            len(progressed), len(others) - len(free), dt))
    st.stop()


# ---------------------------------------------------------------------------
# 6: two workers in different groups race through a slow Vault


def test_two_groups_race_on_the_same_tokens():
    st = new_stack("race")
    # 10..160 ms per KV call: the two workers' reads and writes interleave
    # in every order. The real Vault answers in a millisecond or two; the
    # workers still race on every re-key.
    if not st.real_vault:
        st.vault_faults({"latency_ms": 10, "latency_jitter_ms": 150,
                         "scope": "kv"})
    a = start(st, "race-a", "chaos-race-a")
    b = start(st, "race-b", "chaos-race-b")
    wait_assigned([a, b])
    book = KeyBook(st)
    idents = ["race-%d" % i for i in range(2)]
    for ident in idents:
        book.create(ident)
    rounds, per_round = 0, 100

    def raced():
        # A re-key every 40 ms: both workers sync most of them at about
        # the same time, and often with different keys in hand. Whether a
        # round loses a race is chance (the real Vault answers fast: a
        # run once saw none in 200 re-keys), so rounds go on, up to 8,
        # until one did.
        nonlocal rounds
        for i in range(per_round):
            book.set_key(idents[i % len(idents)])
            time.sleep(0.04)
        rounds += 1
        wait_converged(st, workers=[a, b])
        return rounds >= 8 or (rounds >= 2 and
                               st.vault_stats()["cas_mismatch"] > 0)
    wait_until(raced, 240, interval=0)
    vs = st.vault_stats()
    assert vs["cas_mismatch"] > 0, \
        "no check-and-set mismatch in %d re-keys" % (rounds * per_round)
    counts = version_audit(st, book.keys)
    final_checks(st, workers=[a, b])
    stats = stop_workers([a, b])
    dl = sum(s["dead_lettered"] for s in stats.values())
    assert dl == 0, "dead_lettered=%d" % dl
    note("%d re-keys of %d tokens: %d CAS mismatches, %d versions for %d "
         "distinct keys, written a=%d b=%d" % (
             rounds * per_round, len(idents), vs["cas_mismatch"],
             sum(counts.values()), sum(len(k) for k in book.keys.values()),
             stats["race-a"]["written"], stats["race-b"]["written"]))
    st.stop()


# ---------------------------------------------------------------------------
# 7: the dead-letter topic


def test_poison_goes_to_the_dead_letter_topic():
    st = new_stack("dlq", topics=(DLQ + "2:1",))
    w = start(st, "dlq-worker", "chaos-dlq",
              extra={"dlq": {"undecodable": True}})
    st.create_token("dlq-ok-1")
    valid_pk = st.live_tokens()["dlq-ok-1"]["pk"].replace("-", "")
    t_start = time.time()
    bad_pk, bad = handmade_event(
        "../x (expires=2027-04-21 09:12:00.497311+00:00)")
    nomodel_pk, nomodel = handmade_event("whatever", with_model=False)
    cut = ('{"action":"model_created","context":{"model":{"app":'
           '"authentik_core","model_name":"token"')
    poison = [  # (partition, key, value, headers, poison by default?)
        (0, bad_pk, json.dumps(bad),
         [("trace-id", "chaos-7"), ("origin", "kcat")], True),
        (1, nomodel_pk, json.dumps(nomodel), [("x-note", "no model")],
         True),
        (2, None, cut, [("x-cut", "yes")], True),
        (3, "plain", "not json", [], False),
    ]
    for part, key, value, headers, _ in poison:
        akvtest.kcat_produce(st.brokers, st.topic, key, value, st.rundir,
                             partition=part, name="kcat-poison",
                             headers=headers)
    # Behind the poison in each partition: an event of a real token.
    followers = {}
    for part in range(4):
        _, ev = handmade_event("dlq-ok-1 (expires=2027-04-21 "
                               "09:12:00.497311+00:00)",
                               action="model_updated")
        ev["context"]["model"]["pk"] = valid_pk
        followers[ev["pk"]] = part
        akvtest.kcat_produce(st.brokers, st.topic, valid_pk,
                             json.dumps(ev), st.rundir, partition=part,
                             name="kcat-poison")
    st.create_token("dlq-ok-2")  # created after the poison
    src = read_topic(st, what="dlq-src")
    where = {}  # (partition, value) -> offset, as produced
    for r in src:
        where.setdefault((r["partition"], r["value"]), r["offset"])
    follow_at = {(p, o) for (p, v), o in where.items()
                 if event_pk(v) in followers}
    assert len(follow_at) == 4, "followers found in %d partitions, " \
        "produced into 4" % len(follow_at)

    def all_there():
        return len(read_topic(st, DLQ, "dlq")) >= len(poison)
    ok = wait_until(all_there, 30, interval=0.5)
    wait_converged(st, workers=[w])
    recs = check_dlq(st, len(poison))
    assert ok
    t_end = time.time()

    problems = []
    by_value = {r["value"]: r for r in recs}
    for part, key, value, headers, _ in poison:
        r = by_value.get(value)
        label = "p%d %s" % (part, value[:20])
        if r is None:
            problems.append("%s: not in the DLQ (or its value changed)"
                            % label)
            continue
        if r["key"] != key:
            problems.append("%s: key %r, produced %r" % (label, r["key"],
                                                         key))
        hs = r["headers"]
        if hs[:len(headers)] != headers:
            problems.append("%s: original headers %s, produced %s" % (
                label, hs[:len(headers)], headers))
        h = dict(hs)
        missing = [n for n in DLQ_HEADERS if n not in h]
        if missing:
            problems.append("%s: missing %s" % (label, missing))
            continue
        extra = [n for n, _ in hs[len(headers):] if n not in DLQ_HEADERS]
        if extra:
            problems.append("%s: unexpected headers %s" % (label, extra))
        want = {"ak2vault.error.class": "poison",
                "ak2vault.source.topic": st.topic,
                "ak2vault.source.partition": str(part),
                "ak2vault.source.offset": str(where.get((part, value)))}
        for n, v in want.items():
            if h[n] != v:
                problems.append("%s: %s=%r, wanted %r" % (label, n, h[n],
                                                          v))
        if not h["ak2vault.attempts"].isdigit() or \
                int(h["ak2vault.attempts"]) < 1:
            problems.append("%s: attempts=%r" % (label,
                                                 h["ak2vault.attempts"]))
        if not h["ak2vault.error.reason"].strip():
            problems.append("%s: empty reason" % label)
        times = []
        for n in ("ak2vault.failure.first", "ak2vault.failure.last"):
            if not ISO_MS.match(h[n]):
                problems.append("%s: %s=%r is not ISO 8601" % (label, n,
                                                               h[n]))
                continue
            ts = datetime.datetime.strptime(
                h[n], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            if not t_start - 5 <= ts <= t_end + 5:
                problems.append("%s: %s=%s is outside the test" % (
                    label, n, h[n]))
            times.append(ts)
        if len(times) == 2 and times[0] > times[1]:
            problems.append("%s: first failure after the last" % label)
    assert not problems, "; ".join(problems)

    # The worker moved past the poison (and the followers behind it):
    # all of it is committed, a restart in its group has nothing to redo.
    def followed():
        return sum(s_["events"] for s_ in akvtest.sync_lines(
            w.stderr_text()) if s_["token"] == "dlq-ok-1") >= 5
    assert wait_until(followed, 15), \
        "the events behind the poison were not all synced"
    stats = stop_workers([w])["dlq-worker"]
    assert stats["poison"] == len(poison) and \
        stats["dead_lettered"] == len(poison), \
        "poison=%d dead_lettered=%d, wanted %d" % (
            stats["poison"], stats["dead_lettered"], len(poison))
    _, again = run_to_end(st, "dlq-restart", "chaos-dlq",
                          extra={"dlq": {"undecodable": True}})
    assert again["poison"] == 0 and again["matched"] == 0, \
        "a restart in the group saw poison=%d matched=%d again: the " \
        "offsets did not move past them" % (again["poison"],
                                            again["matched"])

    # By default undecodable bytes that are not about tokens are skipped.
    _, st2 = run_to_end(st, "dlq-default", "chaos-dlq-default",
                        extra={"dlq": {"topic": DLQ + "2"}})
    recs2 = check_dlq(st, 3, DLQ + "2")
    want = sorted(v for _, _, v, _, p in poison if p)
    assert sorted(r["value"] for r in recs2) == want, \
        "with dlq.undecodable=false the DLQ got other records"
    assert st2["poison"] == 3 and st2["dead_lettered"] == 3, \
        "default worker: poison=%d dead_lettered=%d" % (
            st2["poison"], st2["dead_lettered"])
    final_checks(st, dlq=len(poison))
    note("%d poison records dead-lettered with key, value, headers and the "
         "8 ak2vault.* headers; the syncs behind them committed; the "
         "default worker skipped 'not json'" % len(poison))
    st.stop()


# ---------------------------------------------------------------------------
# 8: on_delete, and provenance


def delete_policy(st):
    """On the real Vault: the policy as its file says to write it for
    vault.on_delete = soft-delete or purge (its commented-out blocks in
    force), loaded by setup.sh as users would, for the same AppRole."""
    text = POLICY.read_text()
    blocks = re.findall(r"^# (path \"kv/.*?^# \})", text, re.M | re.S)
    assert len(blocks) == 2, "ak2vault-policy.hcl: %d commented-out " \
        "delete blocks, wanted 2" % len(blocks)
    extra = "\n".join(re.sub(r"^# ?", "", b, flags=re.M) for b in blocks)
    path = st.rundir.write("ak2vault-delete-policy.hcl",
                           text + "\n" + extra + "\n")
    st.vault_server.setup_sh("approle", str(st.rundir.sub("approle2").path),
                             env={"POLICY_FILE": str(path)})


def test_on_delete_policies_and_provenance():
    st = new_stack("delete")
    if st.real_vault:
        delete_policy(st)
    policies = {"keep": "authentik/keep", "soft-delete": "authentik/soft",
                "purge": "authentik/purge"}
    workers = {pol: start(st, "delete-%s" % pol, "chaos-del-%s" % pol,
                          extra={"vault": {"on_delete": pol,
                                           "prefix": prefix}})
               for pol, prefix in policies.items()}
    idents = ["del-%d" % i for i in range(4)]
    for ident in idents:
        st.create_token(ident)
    st.set_key(idents[0], new_key())
    wait_converged(st, tuple(policies.values()),
                   workers=list(workers.values()))
    live = st.live_tokens()
    events = token_events(read_topic(st, what="delete-src"))
    kv = st.vault_kv()
    problems = []
    for prefix in policies.values():
        for ident in idents:
            cm = kv["%s/%s" % (prefix, ident)].get("custom_metadata") or {}
            pk = cm.get("ak2vault_token_pk", "")
            if not re.fullmatch(r"[0-9a-f]{32}", pk) or \
                    pk != live[ident]["pk"].replace("-", ""):
                problems.append("%s/%s: ak2vault_token_pk %r" % (
                    prefix, ident, pk))
            if cm.get("ak2vault_event_pk") not in {
                    e[2] for e in events.get(ident, ())}:
                problems.append("%s/%s: ak2vault_event_pk %r is none of "
                                "its events" % (prefix, ident,
                                                cm.get("ak2vault_event_pk")))
            if not ISO_S.match(cm.get("ak2vault_synced_at", "")):
                problems.append("%s/%s: ak2vault_synced_at %r" % (
                    prefix, ident, cm.get("ak2vault_synced_at")))
    assert not problems, "provenance: " + "; ".join(problems[:6])

    before = {p: current(st, p, kv) for p in policies.values()}
    gone = idents[:2]
    for ident in gone:
        st.delete_token(ident)

    def applied():
        kv_ = st.vault_kv()
        soft = current(st, policies["soft-delete"], kv_)
        purged = current(st, policies["purge"], kv_)
        kept = {s["token"] for s in akvtest.sync_lines(
            workers["keep"].stderr_text()) if s["result"] == "gone"}
        return (all(soft[i][2] for i in gone) and
                not any(i in purged for i in gone) and
                set(gone) <= kept)
    ok = wait_until(applied, 30, interval=0.3)
    after = {p: current(st, p) for p in policies.values()}
    soft_b = before["authentik/soft"]
    soft_a = after["authentik/soft"]
    assert ok, "on_delete not applied within 30s: soft %s, purge %s" % (
        {i: soft_a.get(i) and bool(soft_a[i][2]) for i in gone},
        {i: i in after["authentik/purge"] for i in gone})
    for i in gone:
        assert soft_a[i][0] == soft_b[i][0], \
            "soft-delete of %s made a new version (v%s -> v%s)" % (
                i, soft_b[i][0], soft_a[i][0])
        assert before["authentik/keep"][i] == after["authentik/keep"][i], \
            "keep changed %s: v%s -> v%s" % (
                i, before["authentik/keep"][i][0],
                after["authentik/keep"][i][0])
    rest = [i for i in idents if i not in gone]
    for prefix in policies.values():
        changed = [i for i in rest if before[prefix][i] != after[prefix][i]]
        assert not changed, "%s: live tokens changed: %s" % (prefix,
                                                             changed)
    final_checks(st, tuple(policies.values()),
                 workers=list(workers.values()))
    stats = stop_workers(list(workers.values()))
    assert stats["delete-soft-delete"]["deleted"] >= 2 and \
        stats["delete-purge"]["deleted"] >= 2 and \
        stats["delete-keep"]["deleted"] == 0, \
        "deleted: %s" % {n: s["deleted"] for n, s in stats.items()}
    note("keep kept, soft-delete set deletion_time on v%s/v%s, purge "
         "removed the paths; provenance on %d paths" % (
             soft_a[gone[0]][0], soft_a[gone[1]][0],
             len(idents) * len(policies)))
    st.stop()


# ---------------------------------------------------------------------------
# 9: authentik refuses the service account for a while


def test_authentik_denial_is_held_and_logged_sparingly():
    st = new_stack("ak-denied", authentik_args=("--verbose",))
    book = KeyBook(st)
    for i in range(6):
        book.create("akdeny-%d" % i)
    st.authentik_faults({"deny_status": 403})
    w = start(st, "akdeny-worker", "chaos-akdeny",
              extra={"sync": {"config_retry_ms": 300,
                              "log_interval_ms": 2000}})
    assert wait_until(lambda: log_lines(w, "class=configuration"),
                      ASSIGN_TIMEOUT), "no class=configuration line"
    first = time.monotonic()
    # Changes while denied: the fake's rotation is no API call.
    for i in (1, 4):
        st.rotate("akdeny-%d" % i)
    book.snapshot()
    time.sleep(6.5)  # the window is the point
    assert not current(st), "Vault was written while authentik refused"
    lines = log_lines(w, "class=configuration")
    by_part = config_lines_spaced(lines, 2.0)
    denied = st.authentik_stats()["faults"]["deny_status"]
    held = time.time() - log_time(lines[0])
    st.authentik_faults(None)
    # Per token, from fake-authentik's request log: retried about every
    # config_retry_ms (300), neither much less often nor faster.
    tries = {}
    for m in re.finditer(r"GET /api/v3/core/tokens/(akdeny-\d+)/ -> 403",
                         st.authentik.stderr_text()):
        tries[m.group(1)] = tries.get(m.group(1), 0) + 1
    assert tries and max(tries.values()) >= held / 1.0, \
        "at most %d refused detail requests for one token in %.1fs: not " \
        "retrying every 300 ms" % (max(tries.values() or [0]), held)
    fast = {t: n for t, n in tries.items() if n > held / 0.3 + 3}
    assert not fast, "retried faster than config_retry_ms 300 in %.1fs: " \
        "%s" % (held, fast)
    dt = wait_converged(st, workers=[w], timeout=20)
    version_audit(st, book.keys)
    final_checks(st, workers=[w])
    stats = stop_workers([w])["akdeny-worker"]
    assert stats["dead_lettered"] == 0 and stats["retries"] > 0, \
        "dead_lettered=%d retries=%d" % (stats["dead_lettered"],
                                         stats["retries"])
    note("held %.1fs: %d refused requests (%d..%d detail requests per "
         "held token), %d configuration lines (%s); converged %.1fs after "
         "lifting" % (held, denied, min(tries.values()),
                      max(tries.values()), len(lines),
                      "per worker" if "all" in by_part
                      else "%d partitions" % len(by_part), dt))
    st.stop()


# ---------------------------------------------------------------------------
# 11-14: what the worker may trust. Each of these failed before its fix.


def assigned_count(w):
    return len(ASSIGNED.findall(w.stderr_text()))


def test_cache_does_not_outlive_partition_ownership():
    """A writes {key, api}; B joins and takes partitions over; the tokens
    change (intent to app_password, or a new key) and B writes those of its
    partitions; B leaves and A takes its partitions back; the tokens change
    back (intent api, the earlier key). A's memory of what it wrote is
    from before B owned them: it must read Vault, not answer 'unchanged'."""
    st = new_stack("cache", partitions=6)
    book = KeyBook(st)  # for set_key; keys[ident][1] is the second key
    intent = ["cache-i%02d" % i for i in range(12)]
    rekey = ["cache-k%02d" % i for i in range(12)]
    a = start(st, "cache-a", "chaos-cache")
    wait_assigned([a])
    for ident in intent + rekey:
        st.create_token(ident)
    book.snapshot()
    first = {i: t["key"] for i, t in st.live_tokens().items()}
    wait_converged(st, workers=[a])
    b = start(st, "cache-b", "chaos-cache")
    wait_assigned([b])
    assert wait_until(lambda: "revoked" in a.stderr_text(), 30), \
        "A gave no partition up when B joined"
    for ident in intent:
        st.patch_token(ident, {"intent": "app_password"})
    for ident in rekey:
        book.set_key(ident)
    wait_converged(st, workers=[a, b])
    moved = {ln["token"] for ln in akvtest.sync_lines(b.stderr_text())
             if ln["result"] == "written"}
    assert len(moved & set(intent)) >= 2 and len(moved & set(rekey)) >= 2, \
        "B wrote only %d intent and %d key changes: too few partitions " \
        "moved to test" % (len(moved & set(intent)), len(moved & set(rekey)))
    before = assigned_count(a)
    stop_workers([b])
    assert wait_until(lambda: assigned_count(a) > before, 30), \
        "A did not take B's partitions back"
    for ident in intent:
        st.patch_token(ident, {"intent": "api"})
    for ident in rekey:
        st.set_key(ident, first[ident])
    wait_converged(st, workers=[a], timeout=30)
    final_checks(st, workers=[a])
    stop_workers([a])
    # Every phase converged before the next: one version per state.
    kv, wrong = st.vault_kv(), []
    for ident in intent + rekey:
        second = ({"key": first[ident], "intent": "app_password"}
                  if ident in intent else
                  {"key": book.keys[ident][1], "intent": "api"})
        want = [{"key": first[ident], "intent": "api"}, second,
                {"key": first[ident], "intent": "api"}]
        vers = kv["authentik/" + ident]["versions"]
        got = [vers[str(n)]["data"] for n in range(1, len(vers) + 1)]
        if got != want:
            wrong.append("%s: %d versions, not the 3 states it went "
                         "through" % (ident, len(got)))
    assert not wrong, "; ".join(wrong)
    note("%d tokens moved to B and back (%d intent, %d key): Vault equals "
         "authentik" % (len(moved), len(moved & set(intent)),
                        len(moved & set(rekey))))
    st.stop()


@akvtest.fake_vault_only("needs Vault answering writes wrongly")
def test_unconfirmed_write_is_not_counted_as_written():
    """A 200 that confirms no version (a proxy's page, {"data":null},
    garbage, no body) is a failed write: retried after a fresh read, never
    logged as written, never remembered."""
    st = new_stack("unconfirmed")
    w = start(st, "unconfirmed-worker", "chaos-unconfirmed",
              extra={"sync": {"retry_initial_ms": 100,
                              "retry_max_ms": 300}})
    wait_assigned([w])
    modes = ("null_data", "no_version", "html", "garbage", "empty")
    for mode in modes:
        st.vault_faults({"write_answer": mode})
        seen = st.vault_stats()["faults"]["write_faults"]
        st.create_token("unconfirmed-" + mode.replace("_", "-"))
        assert wait_until(
            lambda: st.vault_stats()["faults"]["write_faults"] >= seen + 3,
            20), "%s: the write was not retried" % mode
    early = [ln for ln in akvtest.sync_lines(w.stderr_text())
             if ln["result"] == "written"]
    assert not early, "counted as written while Vault confirmed nothing: " \
        "%s" % ", ".join("%s version=%d" % (ln["token"], ln["version"])
                         for ln in early)
    assert not current(st), "fake-vault performed a faulted write"
    st.vault_faults({})
    wait_converged(st, workers=[w], timeout=20)
    final_checks(st, workers=[w])
    written = [ln for ln in akvtest.sync_lines(w.stderr_text())
               if ln["result"] == "written"]
    assert all(ln["version"] == 1 for ln in written), \
        "written with versions %s" % [ln["version"] for ln in written]
    stop_workers([w])
    note("%d kinds of unconfirmed 200 retried, then written as v1" %
         len(modes))
    st.stop()


def key_pieces(key, n=12):
    return {key[i:i + n] for i in range(len(key) - n + 1)}


@akvtest.fake_vault_only("needs Vault echoing the request in an error")
def test_echoed_request_never_leaks_the_key():
    """Vault (or a proxy) answers a write with an error that quotes the
    request body: the key must not reach a log line or the dead-letter
    reason, not even in part."""
    st = new_stack("echo")
    w = start(st, "echo-worker", "chaos-echo",
              extra={"sync": {"max_attempts": 3, "retry_initial_ms": 50,
                              "retry_max_ms": 200}})
    wait_assigned([w])
    st.vault_faults({"echo_status": 500})
    idents = ["echo-%d" % i for i in range(3)]
    for ident in idents:
        st.create_token(ident)
    keys = {i: t["key"] for i, t in st.live_tokens().items()}
    assert wait_until(lambda: len(read_topic(st, DLQ, "dlq")) >= 3, 30), \
        "the echoed failures were not dead-lettered"
    recs = check_dlq(st, 3)
    st.vault_faults({})
    stop_workers([w])
    quoted = [ln for ln in w.stderr_text().splitlines()
              if "cannot decode the request body" in ln]
    assert quoted, "no log line quotes Vault's error: nothing was tested"
    texts = {"worker log": w.stderr_text()}
    for r in recs:
        texts["dlq p%s@%s" % (r["partition"], r["offset"])] = \
            json.dumps(r["headers"])
    leaks = sorted("%s: part of %s's key" % (where, ident)
                   for where, text in texts.items()
                   for ident, key in keys.items()
                   if any(p in text for p in key_pieces(key)))
    assert not leaks, "; ".join(leaks)
    assert all("[redacted]" in dict(r["headers"])["ak2vault.error.reason"]
               for r in recs), "a dead-letter reason was not scrubbed"
    note("%d log lines and %d dead-letter reasons quote Vault's echo with "
         "the key redacted" % (len(quoted), len(recs)))
    st.stop()


def test_poison_too_large_for_the_dlq_is_sent_bounded():
    """A poison event larger than the DLQ producer takes goes there as a
    bounded copy (original headers, a prefix of the value, the original
    sizes, where it came from), and its partition moves on."""
    st = new_stack("bigpoison", partitions=2)
    w = start(st, "bigpoison-worker", "chaos-bigpoison")
    wait_assigned([w])
    st.create_token("bigpoison-ok")
    valid_pk = st.live_tokens()["bigpoison-ok"]["pk"].replace("-", "")
    bad_pk, bad = handmade_event("../big (expires=2027-04-21 "
                                 "09:12:00.497311+00:00)")
    bad["context"]["padding"] = "x" * (1536 * 1024)
    value = json.dumps(bad)
    headers = [("trace-id", "big-1"), ("origin", "kcat")]
    akvtest.kcat_produce(st.brokers, st.topic, bad_pk, value, st.rundir,
                         partition=0, name="kcat-bigpoison", headers=headers,
                         properties=(("message.max.bytes", "4000000"),))
    _, follower = handmade_event("bigpoison-ok (expires=2027-04-21 "
                                 "09:12:00.497311+00:00)",
                                 action="model_updated")
    follower["context"]["model"]["pk"] = valid_pk
    akvtest.kcat_produce(st.brokers, st.topic, valid_pk,
                         json.dumps(follower), st.rundir, partition=0,
                         name="kcat-bigpoison")
    assert wait_until(lambda: len(read_topic(st, DLQ, "dlq")) >= 1, 30), \
        "the oversized poison never reached the dead-letter topic"
    recs = check_dlq(st, 1)

    def committed():
        lag = st.lag("chaos-bigpoison")
        return all(p["committed"] == p["end"] or
                   (p["committed"] < 0 and p["end"] == p["low"])
                   for p in lag["partitions"])
    assert wait_until(committed, 30), "partition 0 was not committed to " \
        "its end behind the oversized poison: %s" % st.lag("chaos-bigpoison")
    wait_converged(st, workers=[w])
    stop_workers([w])
    r = recs[0]
    h = dict(r["headers"])
    problems = []
    if r["headers"][:len(headers)] != headers:
        problems.append("original headers %s" % r["headers"][:2])
    want = {"ak2vault.truncated": "true",
            "ak2vault.original.size": str(len(value)),
            "ak2vault.original.key.size": str(len(bad_pk)),
            "ak2vault.original.headers.omitted": "0",
            "ak2vault.error.class": "poison",
            "ak2vault.source.partition": "0"}
    problems += ["%s=%r, wanted %r" % (n, h.get(n), v)
                 for n, v in want.items() if h.get(n) != v]
    if not r["value"] or not value.startswith(r["value"]) or \
            len(r["value"]) != 16384:
        problems.append("value is not the first 16384 bytes (%d bytes)" %
                        len(r["value"] or ""))
    if r["key"] != bad_pk:
        problems.append("key %r" % r["key"])
    assert not problems, "bounded copy: " + "; ".join(problems)
    note("a %d-byte poison event dead-lettered as a %d-byte copy; "
         "partition 0 committed past it" % (len(value), len(r["value"])))
    st.stop()


@akvtest.fake_vault_only("needs Vault holding deletes for 4 s")
def test_delete_racing_a_recreate_does_not_bury_it():
    """A token is deleted and at once created again under its identifier.
    The new token has a new pk, so its events may go to another replica,
    which writes it while the first replica's DELETE (after authentik's
    404) is still on its way: the secret must not end deleted while
    authentik has the token."""
    st = new_stack("recreate", partitions=4)
    extra = {"vault": {"on_delete": "soft-delete"}}
    a = start(st, "recreate-a", "chaos-recreate", extra=extra)
    b = start(st, "recreate-b", "chaos-recreate", extra=extra)
    wait_assigned([a, b])
    idents = ["recreate-%02d" % i for i in range(12)]
    for ident in idents:
        st.create_token(ident)
    wait_converged(st, workers=[a, b])
    st.vault_faults({"latency_ms": 4000, "scope": "kv_delete"})
    seen = st.vault_stats()["requests"]
    for ident in idents:
        st.delete_token(ident)
    # Once the DELETEs are on their way (each held for 4 s; a token the
    # worker remembers costs no read first), the tokens are back.
    assert wait_until(lambda: st.vault_stats()["requests"] >= seen + 12,
                      3), "the deletions reached Vault too slowly"
    time.sleep(0.3)
    for ident in idents:
        st.create_token(ident)
    time.sleep(5)  # every delayed DELETE has landed
    wait_converged(st, workers=[a, b], timeout=30)
    final_checks(st, workers=[a, b])
    st.vault_faults({})
    stop_workers([a, b])
    kv, live = st.vault_kv(), st.live_tokens()
    # A race: a version of the new token's key was deleted under it.
    raced = [i for i in idents
             if any(v.get("deletion_time") and
                    (v.get("data") or {}).get("key") == live[i]["key"]
                    for v in kv["authentik/" + i]["versions"].values())]
    assert raced, "no DELETE landed after a re-created token was written: " \
        "the race was not tested"
    note("%d of %d re-created tokens had a version deleted under them; "
         "every one ends live" % (len(raced), len(idents)))
    st.stop()


# ---------------------------------------------------------------------------
# 10: secrets


# ---------------------------------------------------------------------------
# 16: a slow Vault login does not stop the poll loop


@akvtest.fake_vault_only("needs logins taking 8 s")
def test_slow_login_keeps_polling_and_committing():
    role_id = str(uuid.uuid4())
    secret_id = akvtest.random_secret(36)
    SECRETS.add("approle secret_id", secret_id)
    rd = S.rundir.sub("slowlogin")
    sid_file = rd.write("secret-id", secret_id + "\n")
    st = new_stack("slowlogin", vault_args=(
        "--approle", "%s=%s" % (role_id, secret_id)))
    port = akvtest.free_port()
    group = "chaos-slowlogin"
    w = start(st, "slowlogin-worker", group, env={"VAULT_TOKEN": None},
              extra={"vault": {"timeout_ms": 30000,
                               "auth": {"method": "approle",
                                        "role_id": role_id,
                                        "secret_id_file": str(sid_file)}},
                     "metrics": {"listen": "127.0.0.1:%d" % port,
                                 "live_timeout_ms": 2000}})
    wait_assigned([w])
    book = KeyBook(st)
    book.create("slowlogin-first")
    wait_converged(st, only={"slowlogin-first"}, workers=[w])

    # Every login from now on takes 8 s, and the worker's token is revoked:
    # the next Vault request is refused and the worker logs in again.
    st.vault_faults({"latency_ms": 8000, "scope": "auth"})
    status, _ = akvtest.http_json(
        "POST", st.vault_addr + "/_fake/tokens/revoke-all")
    assert status == 200, "revoke-all answered %s" % status
    book.create("slowlogin-second")
    assert wait_until(lambda: log_lines(w, "token rejected as invalid"), 20), \
        "the revoked token was never refused: %s" % w.stderr_tail(3)
    t_refused = time.monotonic()
    # One event of another kind in every partition: nothing to sync, each
    # is finished at once and committed, except behind the waiting token.
    others = [(p, "other-%d" % p, json.dumps({
        "pk": str(uuid.uuid4()), "action": "login",
        "app": "authentik.events.signals", "context": {}}))
        for p in range(4)]
    akvtest.kcat_produce_many(st.brokers, st.topic, others, st.rundir,
                              name="kcat-slowlogin")
    ends = None
    live = []
    committed_all_but_one = False
    while time.monotonic() - t_refused < 6:
        status, _, _ = akvtest.http_get_text(
            "http://127.0.0.1:%d/livez" % port, timeout=5)
        live.append(status)
        if not committed_all_but_one:
            lag = st.lag(group)
            ends = {p["partition"]: (p["committed"], p["end"])
                    for p in lag["partitions"]}
            done = [p for p, (c, e) in ends.items() if c == e]
            committed_all_but_one = len(done) >= 3
        time.sleep(0.2)
    in_login = time.monotonic() - t_refused
    assert all(s_ == 200 for s_ in live), \
        "/livez answered %s during the login" % sorted(set(live))
    assert committed_all_but_one, \
        "partitions not committed to their end while the login ran: " \
        "%s (partition: (committed, end))" % ends
    wait_converged(st, only={"slowlogin-second"}, workers=[w])
    took = time.monotonic() - t_refused
    assert took >= 7, "converged %.1fs after the refusal: the login was " \
        "not slow, the test proves nothing" % took
    st.vault_faults({})
    final_checks(st, workers=[w])
    stats = stop_workers([w])["slowlogin-worker"]
    assert stats["dead_lettered"] == 0, "dead_lettered=%d" % (
        stats["dead_lettered"])
    note("/livez 200 %d times and 3 of 4 partitions committed to their end "
         "in the first %.1fs of an 8 s login; converged %.1fs after the "
         "refusal" % (len(live), in_login, took))
    st.stop()


def test_no_secret_in_any_output():
    for st in S.stacks:
        st.stop()
    akvtest.stop_all()
    kinds = SECRETS.kinds()
    expected = ["token key", "Vault root token", "authentik API token"]
    if S.ran_token_expiry:
        # only the kubernetes and approle logins use these
        expected += ["kubernetes JWT", "approle secret_id"]
    for k in expected:
        assert kinds.get(k), "no %s was collected" % k
    logs = S.rundir.logs()
    kcat = [p for p in logs if p.name.startswith("kcat-dlq")]
    assert kcat, "no dead-letter topic dump was kept"
    akvtest.assert_no_secrets(logs, base=S.rundir.path)
    note("scanned %d files (%d kcat dumps) for %s" % (
        len(logs), len(kcat), ", ".join(
            "%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "chaos", setup=setup, teardown=teardown)
