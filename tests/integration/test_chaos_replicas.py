#!/usr/bin/python3
"""Chaos with replicas: several ak2vault workers of one consumer group, killed
outright or scaled up and down while tokens keep changing, never lose a
change, never put an older state back and commit everything.

Each scenario runs its own loopback stack (mock-kafka with a 6-partition
topic and its dead-letter topic, fake-vault keeping every version,
fake-authentik), drives the tokens through fake-authentik's API only, and
records every state ({key, intent}) each token went through, in order, from
its own calls (a key authentik made is read back from /_fake/tokens right
after the call that made it; the test is the only writer). Both end the
same way:

  * Vault equals authentik: every live token's current version is exactly
    {"key", "intent"} as authentik holds it; a deleted token's current
    version is soft-deleted (vault.on_delete = soft-delete);
  * version audit: each token's Vault versions, oldest first, can be laid
    on its recorded states in order (a version holding a state authentik
    left before the state of an earlier version is a roll-back; one holding
    a state it never had is foreign);
  * `ak2vault lag` shows every partition committed to its end;
  * the dead-letter topic, read back with kcat, is empty;
  * (last test) no captured output holds a secret.

  1. kill -9: three replicas, 200 tokens and about 800 changes (creates,
     set_key, rotations, intent and description patches, deletes,
     re-creates of deleted identifiers) in a seeded random mix; meanwhile
     a random replica that owns partitions (its /metrics says so) is
     SIGKILLed and a fresh process started in its place, 20 times; three
     of the kills are made while fake-vault delays every KV write by
     1.5 s, each on a replica whose /metrics shows syncs in flight (they
     land on writes under way). No intent flip here
     returns a token to a state it had before (a re-key comes between two
     flips): a state coming back is scenario 2's subject.
  2. scaling: replicas go 1 -> 2 -> 1 -> 3 -> 1 -> 2 -> 3 -> 1 while tokens
     flip intent (api <-> app_password) and go back to an earlier key.
     It starts with this sequence, for at least a dozen tokens: A alone
     writes {key, api}; B joins and takes some partitions; their tokens
     change to app_password (or to a second key) and B writes them; B
     leaves, A gets the partitions back; the tokens change back to api (or
     the first key). A worker that trusts its memory of what it wrote,
     without reading Vault, answers "unchanged" and Vault keeps B's state.
     Every step ends with every event committed and Vault checked.

$AKV_SEED replays a run (the seed is printed). Failures name identifiers,
states by their index in a token's history ("key #2") and secret KINDS,
never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, note, wait_until  # noqa: E402

TOPIC = akvtest.TOPIC
DLQ = TOPIC + ".dlq"
PARTITIONS = 6
S = SimpleNamespace(rundir=None, stacks=[], seed=None, reads=0)

# The smallest session timeout allowed, on both brokers: a replica killed
# with SIGKILL leaves no LeaveGroup behind, so the group notices it only
# after a session timeout (and librdkafka 2.0.2's mock coordinator
# sometimes holds a joining member that long too). Deleted tokens
# are soft-deleted, so "nothing in Vault" for them is checkable.
BASE_CFG = {
    "kafka": {"session_timeout_ms": 6000},
    "vault": {"on_delete": "soft-delete"},
    "dlq": {"topic": DLQ},
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000,
             "retry_after_max_ms": 5000, "config_retry_ms": 500,
             "log_interval_ms": 2000},
}
ASSIGN_TIMEOUT = 40
STOP_TIMEOUT = 30
SETTLE_TIMEOUT = 120
ASSIGNED = re.compile(r"assigned ([1-9]\d*) partition")
METRICS_PORT = re.compile(r"serving /metrics .*\(port (\d+)\)")

# Scenario 1.
K9_REPLICAS = 3
K9_TOKENS = 200
K9_CHANGES = 800          # besides the creates
K9_SECONDS = 75.0         # over which the changes and kills are spread
K9_KILLS = 20
K9_SLOW_KILLS = (9, 10, 11)  # kills made while Vault writes take 1.5 s
K9_SLOW_MS = 1500

# Scenario 2.
SC_TOKENS = 72
SC_MIN_INTENT = 12        # tokens moved to B that flip back their intent
SC_MIN_KEY = 6            # ... that go back to their first key
SC_STEPS = (3, 1, 2, 3, 1)  # replica counts after the fixed 1 -> 2 -> 1
SC_BATCH = 24             # changes made while each step's rebalance runs


def setup(rundir):
    S.rundir = rundir
    S.seed = int(os.environ.get("AKV_SEED") or random.randrange(1, 10**9))
    note("seed %d (replay with AKV_SEED=%d)" % (S.seed, S.seed))


def teardown(rundir):
    for st in S.stacks:
        st.stop()


# ---------------------------------------------------------------------------
# helpers


def new_stack(name):
    """A fresh stack in its own subdirectory: the topic, its dead-letter
    topic, and a fake-vault that keeps every version."""
    st = akvtest.Stack(S.rundir.sub(name), partitions=PARTITIONS,
                       topics=(DLQ + ":1",),
                       vault_args=("--max-versions", "100000"))
    S.stacks.append(st)
    return st


def start(st, name, group, extra=None):
    return st.start_worker(name, group,
                           extra=akvtest.merge_settings(BASE_CFG,
                                                        extra or {}))


def assigned(w):
    return len(ASSIGNED.findall(w.stderr_text()))


def wait_assigned(workers, timeout=ASSIGN_TIMEOUT, after=None):
    """Until every worker was assigned partitions (more often than
    \\p after[name] times, when given) and still runs."""
    after = after or {}

    def ready():
        if any(not w.running() for w in workers):
            return "dead"
        return all(assigned(w) > after.get(w.name, 0) for w in workers)
    ok = wait_until(ready, timeout)
    check_alive(workers)
    assert ok, "not assigned partitions within %ds: %s" % (
        timeout, ", ".join(w.name for w in workers
                           if assigned(w) <= after.get(w.name, 0)))


def check_alive(workers):
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in workers if not w.running()]
    assert not dead, "a replica died: " + "; ".join(dead)


def stop_replica(w):
    """SIGTERM once it has joined (librdkafka 2.0.2 aborts when a consumer
    is closed between its JoinGroup and SyncGroup answers); @returns its
    final stats."""
    wait_until(lambda: assigned(w) or not w.running(), ASSIGN_TIMEOUT)
    w.signal(signal.SIGTERM)
    rc = w.wait(STOP_TIMEOUT)
    if rc is None:
        w.stop(1)
        raise AssertionError("%s still running %ds after SIGTERM" % (
            w.name, STOP_TIMEOUT))
    assert rc == 0, "%s exited %d after SIGTERM: %s" % (w.name, rc,
                                                        w.stderr_tail(3))
    stats = akvtest.final_stats(w.stderr_text())
    assert stats is not None, "%s: no final stats line" % w.name
    return stats


def lag_parts(st, group):
    return {p["partition"]: p for p in st.lag(group)["partitions"]}


def caught_up(parts):
    return len(parts) == PARTITIONS and all(
        p["committed"] == p["end"] or p["end"] == p["low"]
        for p in parts.values())


def lag_text(parts):
    return ", ".join("p%d %d/%d" % (n, p["committed"], p["end"])
                     for n, p in sorted(parts.items()))


def wait_settled(st, group, workers, timeout=SETTLE_TIMEOUT):
    """Until the group has committed every partition to its end twice in
    a row, a second apart, with the same ends: every event was answered
    (a sync's offset is committed only once it finished). @returns the
    seconds it took."""
    t0 = time.monotonic()
    last = {}
    prev = [None]

    def done():
        check_alive(workers)
        last.clear()
        last.update(lag_parts(st, group))
        ends = {n: p["end"] for n, p in last.items()}
        if caught_up(last) and prev[0] == ends:
            return True
        prev[0] = ends if caught_up(last) else None
        return False
    ok = wait_until(done, timeout, interval=1.0)
    assert ok, "after %ds the group's committed offsets are not at the " \
        "ends (committed/end): %s" % (timeout, lag_text(last))
    return time.monotonic() - t0


def describe(items, limit=8):
    """Up to \\p limit of the (identifier, reason) \\p items, taken in
    turn from each kind of reason (intent, key, other), so that every kind
    shows."""
    kinds = {}
    for item in items:
        kind = "intent" if "intent" in item[1] else \
            "key" if "key #" in item[1] else "other"
        kinds.setdefault(kind, []).append(item)
    shown = []
    while len(shown) < min(limit, len(items)):
        for kind in ("intent", "key", "other"):
            if kinds.get(kind) and len(shown) < limit:
                shown.append(kinds[kind].pop(0))
    text = "; ".join("%s: %s" % m for m in sorted(shown))
    if len(items) > limit:
        text += " ... (%d in all)" % len(items)
    return text


def current(kv):
    """{identifier: (current version, data, deletion_time)} under
    authentik/."""
    out = {}
    for path, sec in kv.items():
        if not path.startswith("authentik/"):
            continue
        cur = sec.get("current_version")
        ver = sec.get("versions", {}).get(str(cur), {})
        out[path[len("authentik/"):]] = (cur, ver.get("data"),
                                         ver.get("deletion_time") or "")
    return out


def read_topic(st, topic, what):
    """The topic from the beginning (kcat -J, its dump kept in the run
    directory for the secret scan)."""
    S.reads += 1
    return akvtest.kcat_consume(st.brokers, topic, st.rundir,
                                name="kcat-%s-%d" % (what, S.reads))


def token_events(st):
    """How many token events (not secret_view) the topic holds."""
    n = 0
    for r in read_topic(st, st.topic, "source"):
        try:
            action = json.loads(r["value"] or "").get("action")
        except (ValueError, AttributeError):
            action = None
        if action != "secret_view":
            n += 1
    return n


def check_dlq_empty(st):
    recs = read_topic(st, DLQ, "dlq")
    assert not recs, "the dead-letter topic holds %d record(s): %s" % (
        len(recs), "; ".join("p%s@%s %s" % (
            r["partition"], r["offset"],
            dict(r["headers"]).get("ak2vault.error.reason"))
            for r in recs[:5]))


class Book:
    """Every state ({key, intent}) each token went through, in order, as
    the test made them; deleting and re-creating an identifier continues
    its history. Only the test changes tokens, one call at a time, so the
    state read back right after a call is the one that call made."""

    def __init__(self, st, rng):
        self.st = st
        self.rng = rng
        self.hist = {}      # identifier -> [(key, intent), ...]
        self.live = {}      # identifier -> (key, intent)
        self.deleted = []   # identifiers deleted and not re-created
        self.flipped = set()  # last change an intent flip
        self.counts = {}

    def _count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def _read(self, ident):
        tok = self.st.live_tokens()[ident]
        return tok["key"], tok["intent"]

    def _record(self, ident, state):
        self.hist.setdefault(ident, []).append(state)
        self.live[ident] = state

    def keys(self, ident):
        """The distinct keys of \\p ident, in the order it first had them."""
        out = []
        for k, _ in self.hist.get(ident, ()):
            if k not in out:
                out.append(k)
        return out

    def key_no(self, ident, key):
        ks = self.keys(ident)
        return "key #%d" % (ks.index(key) + 1) if key in ks else \
            "a key it never had"

    def create(self, ident, intent="api"):
        self.st.create_token(ident, intent=intent,
                             description="chaos %s" % ident)
        if ident in self.deleted:
            self.deleted.remove(ident)
            self._count("recreate")
        else:
            self._count("create")
        self.flipped.discard(ident)
        self._record(ident, self._read(ident))

    def set_key(self, ident, key=None):
        if key is None:
            key = "replica" + akvtest.random_secret(43)
        self.st.set_key(ident, key)
        self.flipped.discard(ident)
        self._count("set_key")
        self._record(ident, (key, self.live[ident][1]))

    def rotate(self, ident):
        self.st.rotate(ident)
        self.flipped.discard(ident)
        self._count("rotate")
        self._record(ident, self._read(ident))

    def flip(self, ident, intent=None):
        key, was = self.live[ident]
        intent = intent or ("app_password" if was == "api" else "api")
        self.st.patch_token(ident, {"intent": intent})
        self.flipped.add(ident)
        self._count("intent")
        self._record(ident, (key, intent))

    def describe(self, ident):
        self.st.patch_token(ident, {"description": "changed %d" %
                                    self.rng.randrange(10**6)})
        self._count("description")

    def delete(self, ident):
        self.st.delete_token(ident)
        del self.live[ident]
        self.deleted.append(ident)
        self.flipped.discard(ident)
        self._count("delete")

    def check_against_authentik(self):
        """The record is authentik's truth (else the test is wrong)."""
        live = {i: (t["key"], t["intent"])
                for i, t in self.st.live_tokens().items()}
        assert live == self.live, "the test's record of authentik is " \
            "wrong for: %s" % sorted(i for i in set(live) | set(self.live)
                                     if live.get(i) != self.live.get(i))


def vault_differences(book, kv):
    """[(identifier, what differs)]: a live token whose current Vault
    version is not exactly {"key", "intent"} as authentik holds it, or a
    deleted one whose current version is not soft-deleted."""
    cur = current(kv)
    bad = []
    for ident in sorted(book.hist):
        want = book.live.get(ident)
        got = cur.get(ident)
        if want is None:
            if got is not None and not got[2]:
                bad.append((ident, "deleted in authentik, v%s live in "
                            "Vault" % got[0]))
            continue
        if got is None:
            bad.append((ident, "missing"))
            continue
        ver, data, deleted = got
        if deleted:
            bad.append((ident, "current version v%s deleted" % ver))
        elif data == {"key": want[0], "intent": want[1]}:
            continue
        elif not isinstance(data, dict) or set(data) != {"key", "intent"}:
            bad.append((ident, "v%s holds fields %s" % (
                ver, sorted(data) if isinstance(data, dict) else data)))
        elif data["key"] != want[0]:
            bad.append((ident, "v%s holds %s, authentik has %s" % (
                ver, book.key_no(ident, data["key"]),
                book.key_no(ident, want[0]))))
        else:
            bad.append((ident, "v%s holds intent %r, authentik has %r" % (
                ver, data["intent"], want[1])))
    return bad


def version_audit(book, kv):
    """Lays each token's Vault versions, oldest first, on its recorded
    states: version n must hold a state at or after the one version n-1
    was matched to (the earliest such, so states that come back are
    matched as leniently as they can be). @returns ({"versions",
    "rolled_back", "foreign", "redundant"}, [problems])."""
    counts = {"versions": 0, "rolled_back": 0, "foreign": 0,
              "redundant": 0}
    problems = []
    for ident, hist in sorted(book.hist.items()):
        sec = kv.get("authentik/" + ident)
        if sec is None:
            continue
        vers = sec.get("versions", {})
        cur = sec.get("current_version") or 0
        if len(vers) != cur:
            problems.append("%s: current_version %s but %d versions kept"
                            % (ident, cur, len(vers)))
        pos, prev = 0, None
        for n in range(1, cur + 1):
            data = (vers.get(str(n)) or {}).get("data")
            counts["versions"] += 1
            if not isinstance(data, dict) or \
                    set(data) != {"key", "intent"}:
                counts["foreign"] += 1
                problems.append("%s: v%d holds fields %s" % (
                    ident, n, sorted(data) if isinstance(data, dict)
                    else data))
                continue
            state = (data["key"], data["intent"])
            j = next((j for j in range(pos, len(hist))
                      if hist[j] == state), None)
            if j is None:
                if state in hist[:pos]:
                    counts["rolled_back"] += 1
                    left = max(i for i in range(pos) if hist[i] == state)
                    problems.append(
                        "%s: v%d rolls back to (%s, %s), authentik's state "
                        "#%d, after v%d held state #%d" % (
                            ident, n, book.key_no(ident, state[0]),
                            state[1], left + 1, prev, pos + 1))
                else:
                    counts["foreign"] += 1
                    problems.append("%s: v%d holds a state authentik never "
                                    "had (%s, %s)" % (
                                        ident, n,
                                        book.key_no(ident, state[0]),
                                        state[1]))
                continue
            if prev is not None and j == pos and \
                    (vers.get(str(prev)) or {}).get("data") == data:
                counts["redundant"] += 1
            pos, prev = j, n
    return counts, problems


def final_checks(st, book, group, workers):
    """Every partition committed to its end, Vault equal to authentik,
    the version audit, an empty dead-letter topic. @returns (the audit's
    counts with "lost", [problems])."""
    wait_settled(st, group, workers)
    book.check_against_authentik()
    kv = st.vault_kv()
    bad = vault_differences(book, kv)
    if bad:  # a sync of a revoked partition may still be finishing
        time.sleep(2)
        kv = st.vault_kv()
        bad = vault_differences(book, kv)
    counts, audit = version_audit(book, kv)
    counts["lost"] = len(bad)
    problems = []
    if bad:
        problems.append("%d token(s) differ from authentik with every "
                        "event committed: %s" % (len(bad), describe(bad)))
    if audit:
        problems.append("version audit: %s" % "; ".join(audit[:6]) + (
            " ... (%d)" % len(audit) if len(audit) > 6 else ""))
    parts = lag_parts(st, group)
    if not caught_up(parts):
        problems.append("committed/end %s" % lag_text(parts))
    try:
        check_dlq_empty(st)
    except AssertionError as e:
        problems.append(str(e))
    return counts, problems


# ---------------------------------------------------------------------------
# 1: kill -9


def k9_change(book, rng):
    """One seeded random change of an existing token."""
    live = sorted(book.live)
    pick = rng.random()
    if book.deleted and pick < 0.07:
        book.create(rng.choice(book.deleted),
                    "app_password" if rng.random() < 0.2 else "api")
        return
    ident = rng.choice(live)
    if pick < 0.15 and len(live) > 150:
        book.delete(ident)
    elif pick < 0.45:
        book.set_key(ident)
    elif pick < 0.60:
        book.rotate(ident)
    elif pick < 0.80 and ident not in book.flipped:
        book.flip(ident)
    elif pick < 0.80:
        book.set_key(ident)  # a flip now would bring a state back
    else:
        book.describe(ident)


def gauges(w):
    """{name: value} of the unlabelled gauges \\p w serves on /metrics
    (refreshed every second); {} when it does not answer (yet)."""
    m = METRICS_PORT.search(w.stderr_text())
    if not m or not w.running():
        return {}
    status, _, text = akvtest.http_get_text(
        "http://127.0.0.1:%s/metrics" % m.group(1), timeout=2)
    if status != 200:
        return {}
    fams = akvtest.parse_exposition(text)
    return {name: akvtest.sample(fams, name) for name in (
        "ak2vault_assigned_partitions", "ak2vault_syncs_in_flight")}


class Killer:
    """SIGKILLs replicas and starts a fresh process in the slot, each kill
    when it is due, but only on a replica that owns partitions (its
    /metrics says so): killing a process that has not joined yet would
    test nothing. A kill "on syncs" waits for a replica with syncs in
    flight. A kill that found no such replica for \\p patience seconds
    takes any replica."""

    def __init__(self, st, group, rng, due, on_syncs):
        self.st, self.group, self.rng = st, group, rng
        self.due = sorted(zip(due, on_syncs))  # [(time, on syncs?)]
        self.slots = {}  # slot -> running Proc
        self.gen = {}
        self.killed = []
        self.blind = 0        # kills that found no owner in time
        self.in_flight = []   # syncs in flight of the kills on syncs

    def launch(self, slot):
        self.gen[slot] = self.gen.get(slot, 0) + 1
        self.slots[slot] = start(
            self.st, "k9-r%d-%d" % (slot, self.gen[slot]), self.group,
            extra={"metrics": {"listen": "127.0.0.1:0"}})

    def workers(self):
        return list(self.slots.values())

    def syncs_due(self):
        """Kills on syncs still to come."""
        return sum(1 for _, on_syncs in self.due if on_syncs)

    def step(self, now, patience):
        """Makes the kill that is due, if a victim is there. @returns
        True when it killed."""
        if not self.due or self.due[0][0] > now:
            return False
        check_alive(self.workers())
        due, on_syncs = self.due[0]
        want = "ak2vault_syncs_in_flight" if on_syncs else \
            "ak2vault_assigned_partitions"
        seen = {slot: gauges(w).get(want) or 0
                for slot, w in sorted(self.slots.items())}
        fit = [slot for slot, n in seen.items() if n > 0]
        if not fit and now < due + patience:
            return False
        if fit:
            slot = self.rng.choice(fit)
            if on_syncs:
                self.in_flight.append(int(seen[slot]))
        else:
            slot = self.rng.choice(sorted(self.slots))
            self.blind += 1
        victim = self.slots[slot]
        victim.signal(signal.SIGKILL)
        victim.wait(5)
        self.killed.append(victim.name)
        self.due.pop(0)
        self.launch(slot)
        return True


def test_kill9_replicas_lose_nothing():
    rng = random.Random(S.seed)
    st = new_stack("kill9")
    group = "replicas-kill9"
    book = Book(st, rng)
    killer = Killer(st, group, random.Random(S.seed + 2), due=[
        3.0 + k * (K9_SECONDS - 6.0) / (K9_KILLS - 1) +
        rng.uniform(-1.0, 1.0) for k in range(K9_KILLS)],
        on_syncs=[k in K9_SLOW_KILLS for k in range(K9_KILLS)])
    slow_from = killer.due[K9_SLOW_KILLS[0]][0] - 1.5
    for slot in range(K9_REPLICAS):
        killer.launch(slot)
    wait_assigned(killer.workers())

    total = K9_TOKENS + K9_CHANGES
    pace = K9_SECONDS / total
    slow = []  # when Vault writes began and stopped being slow
    slow_to = None
    created = 0
    t0 = time.monotonic()

    def vault_pace(now):
        # Slow from a little before the first kill on syncs until a little
        # after the last: the syncs they interrupted are redone through it.
        if not slow and now >= slow_from:
            plan = st.vault_faults({"scope": "kv_write",
                                    "latency_ms": K9_SLOW_MS})
            assert plan.get("latency_ms") == K9_SLOW_MS, \
                "plan not taken: %s" % plan
            slow.append(now)
        elif len(slow) == 1 and now >= (slow_to or now + 1):
            st.vault_faults(None)
            slow.append(now)

    for i in range(total):
        now = time.monotonic() - t0
        vault_pace(now)
        # A kill waits (the changes go on) for a victim that owns
        # partitions, one on syncs for syncs in flight.
        if killer.step(now, patience=20) and slow and \
                not killer.syncs_due() and slow_to is None:
            slow_to = now + 2.0
        # The creates are spread over the first 60% of the changes.
        room = max(1.0, total * 0.6 - i)
        if created < K9_TOKENS and (
                not book.live or rng.random() < (K9_TOKENS - created) / room):
            book.create("k9-%03d" % created,
                        "app_password" if rng.random() < 0.2 else "api")
            created += 1
        else:
            k9_change(book, rng)
        delay = t0 + (i + 1) * pace - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    # Kills put off (nobody owned partitions when they were due) come now,
    # a little apart; while a kill on syncs is among them, tokens keep
    # changing so that there are syncs to land on.
    while killer.due:
        now = time.monotonic() - t0
        vault_pace(now)
        if killer.syncs_due():
            k9_change(book, rng)
        if killer.step(now, patience=20 if killer.syncs_due() else 10):
            if slow and not killer.syncs_due() and slow_to is None:
                slow_to = now + 2.0
            killer.due = [(max(d, now + 2.0), o) for d, o in killer.due]
        time.sleep(0.2)
    assert slow, "Vault was never slowed"
    if len(slow) == 1:
        time.sleep(max(0.0, (slow_to or 0) - (time.monotonic() - t0)))
        st.vault_faults(None)
        slow.append(time.monotonic() - t0)
    driven = time.monotonic() - t0
    slowed = st.vault_stats()["faults"].get("latency_ms_total", 0)

    workers = killer.workers()
    settle = wait_settled(st, group, workers)
    counts, problems = final_checks(st, book, group, workers)
    assert not problems, "kill9: " + "; ".join(problems)
    events = token_events(st)
    answered = sum(s_["events"] for w in st.workers
                   for s_ in akvtest.sync_lines(w.stderr_text()))
    stats = [stop_replica(w) for w in workers]
    dl = sum(s_["dead_lettered"] + s_["poison"] for s_ in stats)
    assert dl == 0, "the last replicas dead-lettered or found poison: %d" % (
        dl)
    assert len(killer.killed) == K9_KILLS, "%d kills, wanted %d" % (
        len(killer.killed), K9_KILLS)
    # A replica that just restarted, or a rebalance, can leave nobody with
    # syncs in flight for a while: one kill on syncs under way is the aim.
    assert killer.in_flight, \
        "none of the %d kills while Vault was slow found a replica with " \
        "syncs in flight within 20s" % len(K9_SLOW_KILLS)
    note("kill9: changes %s in %.0fs; %d kills (%d of a replica that "
         "owned no partition), %d of them on replicas with %s syncs in "
         "flight while every KV write took %d ms (%.1fs of injected "
         "latency over %.0fs); settled %.0fs later; the syncs answered for "
         "%d events (%d token events)" % (
             ", ".join("%s=%d" % kv for kv in sorted(book.counts.items())),
             driven, len(killer.killed), killer.blind,
             len(killer.in_flight), "+".join(map(str, killer.in_flight)),
             K9_SLOW_MS, slowed / 1000, slow[1] - slow[0], settle,
             answered, events))
    note("kill9: kills=%d events=%d versions_audited=%d lost=%d "
         "rolled_back=%d" % (len(killer.killed), events, counts["versions"],
                             counts["lost"], counts["rolled_back"]))
    st.stop()


# ---------------------------------------------------------------------------
# 2: scaling


def sync_results(w, start_at=0):
    """[(token, result, cached)] of the sync lines \\p w logged after
    character \\p start_at of its log."""
    out = []
    for line in w.stderr_text()[start_at:].splitlines():
        m = akvtest.SYNC_RE.search(line)
        if m:
            out.append((m.group(1), m.group(3), " cached=1" in line))
    return out


def test_scaling_replicas_follow_states_that_come_back():
    rng = random.Random(S.seed + 1)
    st = new_stack("scaling")
    group = "replicas-scaling"
    book = Book(st, rng)
    running = []   # Procs, oldest first
    n = [0]
    failures = []  # every step is checked; a failing one does not stop it
    timings = []
    t_step = [time.monotonic()]

    def launch():
        n[0] += 1
        w = start(st, "sc-%d" % n[0], group)
        running.append(w)
        return w

    def check_step(label):
        wait_settled(st, group, running)
        kv = st.vault_kv()
        bad = vault_differences(book, kv)
        if bad:
            time.sleep(2)
            bad = vault_differences(book, st.vault_kv())
        if bad:
            failures.append("%s: %d token(s) differ from authentik with "
                            "every event committed: %s" % (
                                label, len(bad),
                                describe(bad, 8 if not failures else 3)))
        timings.append("%s %.0fs" % (label, time.monotonic() - t_step[0]))
        t_step[0] = time.monotonic()
        return bad

    # A alone writes every token as {key #1, api}.
    a = launch()
    wait_assigned([a])
    idents = ["sc-%02d" % i for i in range(SC_TOKENS)]
    for ident in idents:
        book.create(ident, "api")
    check_step("A alone")
    assert not failures, failures[0]

    # B joins; which tokens it now answers for shows once each had an
    # event (a description patch: the document does not change).
    b = launch()
    wait_assigned([b])  # cooperative: A gave them up first
    b_mark = len(b.stderr_text())
    for ident in idents:
        book.describe(ident)
    check_step("B joined")
    moved = sorted({t for t, _, _ in sync_results(b, b_mark)})
    assert len(moved) >= SC_MIN_INTENT + SC_MIN_KEY, \
        "B answered for only %d tokens (%s): the scenario needs %d" % (
            len(moved), moved, SC_MIN_INTENT + SC_MIN_KEY)
    n_intent = max(SC_MIN_INTENT, len(moved) // 2)
    by_intent, by_key = moved[:n_intent], moved[n_intent:]
    stayed = [i for i in idents if i not in moved]
    first_key = {i: book.live[i][0] for i in idents}

    # B writes app_password (or key #2) for its tokens; A for the others.
    b_mark = len(b.stderr_text())
    for ident in idents:
        if ident in by_intent or (ident in stayed and rng.random() < 0.5):
            book.flip(ident, "app_password")
        else:
            book.set_key(ident)
    check_step("B wrote")
    by_b = {t for t, r, _ in sync_results(b, b_mark) if r == "written"}
    assert set(moved) <= by_b, "B did not write %s" % sorted(
        set(moved) - by_b)

    # B leaves; A gets its partitions back, and the tokens go back.
    seen_a = assigned(a)
    stop_replica(b)
    running.remove(b)
    wait_assigned([a], after={a.name: seen_a})
    wait_settled(st, group, running)
    a_mark = len(a.stderr_text())
    for ident in idents:
        if book.live[ident][1] == "app_password":
            book.flip(ident, "api")
        else:
            book.set_key(ident, first_key[ident])
    bad = check_step("B left, the tokens went back")
    if bad:
        cached = {t for t, r, c in sync_results(a, a_mark)
                  if r == "unchanged" and c}
        wrong = {i for i, _ in bad}
        failures[-1] += " -- A answered %d of them 'unchanged' from its " \
            "cache (cached=1) without reading Vault; %d of %d moved " \
            "tokens went back in intent, %d in key" % (
                len(wrong & cached), len(set(by_intent) & wrong),
                len(by_intent), len(set(by_key) & wrong))

    # Then replicas come and go while states keep coming back.
    for target in SC_STEPS:
        seen = {w.name: assigned(w) for w in running}
        joined = [launch() for _ in range(target - len(running))]
        leaving = []
        while len(running) > target:
            leaving.append(running.pop(rng.randrange(len(running))))
        for w in leaving:
            wait_until(lambda: assigned(w) or not w.running(),
                       ASSIGN_TIMEOUT)
            w.signal(signal.SIGTERM)
        # Changes while the group rebalances.
        for _ in range(SC_BATCH):
            ident = rng.choice(idents)
            keys = book.keys(ident)
            if rng.random() < 0.5:
                book.flip(ident)
            elif len(keys) > 1 and rng.random() < 0.8:
                key = book.live[ident][0]
                book.set_key(ident, rng.choice([k for k in keys
                                                if k != key]))
            else:
                book.set_key(ident)
            time.sleep(0.1)
        for w in leaving:
            rc = w.wait(STOP_TIMEOUT)
            assert rc == 0, "%s exited %s after SIGTERM: %s" % (
                w.name, rc, w.stderr_tail(3))
        if joined:
            wait_assigned(joined)
        else:
            wait_assigned(running, after=seen)
        # And once it is stable.
        for ident in rng.sample(idents, SC_BATCH // 2):
            book.flip(ident)
        check_step("scaled to %d" % target)

    counts, problems = final_checks(st, book, group, running)
    failures.extend("at the end: " + p for p in problems)
    events = token_events(st)
    for w in list(running):
        stop_replica(w)
    note("scaling: replicas 1->2->1->%s; changes %s; steps: %s" % (
        "->".join(map(str, SC_STEPS)),
        ", ".join("%s=%d" % kv_ for kv_ in sorted(book.counts.items())),
        ", ".join(timings)))
    note("scaling: scale_steps=%d events=%d versions_audited=%d lost=%d "
         "rolled_back=%d" % (2 + len(SC_STEPS), events, counts["versions"],
                             counts["lost"], counts["rolled_back"]))
    assert not failures, " || ".join(failures[:3]) + (
        " || ... (%d checks failed)" % len(failures)
        if len(failures) > 3 else "")
    st.stop()


# ---------------------------------------------------------------------------


def test_no_secret_in_any_output():
    for st in S.stacks:
        st.stop()
    akvtest.stop_all()
    kinds = SECRETS.kinds()
    assert kinds.get("token key", 0) >= 100, \
        "only %d token keys collected" % kinds.get("token key", 0)
    logs = S.rundir.logs()
    akvtest.assert_no_secrets(logs, base=S.rundir.path)
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n_, k) for k, n_ in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "chaos-replicas", setup=setup,
                      teardown=teardown)
