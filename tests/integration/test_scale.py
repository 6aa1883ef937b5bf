#!/usr/bin/python3
"""Scale: many syncs in flight, replicas coming and going, one stuck token,
coalescing, backpressure and a draining shutdown.

Every scenario runs its own loopback stack (mock-kafka, fake-vault keeping
up to 100000 versions per secret, fake-authentik) in a subdirectory of the
run directory:

  1. 20,000 token events (creates, re-keys, intent flips) are produced
     from 8 threads over about 40 s while replicas of one group join and
     leave every 3-4 s (one to four at a time, some with a static
     kafka.instance_id); afterwards Vault holds exactly every live token's
     current key and intent, no token got a redundant or backward version,
     a last --exit-at-end worker of the group finds no token event left,
     `ak2vault lag --json` shows every partition committed to its end, and
     every SIGTERMed replica exited 0;
     1a. the window 1 may hit by chance, made wide: a replica SIGTERMed
         between its JoinGroup and SyncGroup answers exits 0;
     1b. a sync whose partition was revoked while its Vault read was slow
         does not overwrite the newer key the partition's new owner wrote;
  2. a policy denies one token's Vault path: the token is held
     (class=configuration) and its partition's committed offset stays at
     or below its first event, while every other token (those behind it in
     its partition too) reaches Vault and the other partitions commit to
     their ends; lifted, everything converges and the lag drops to 0;
  3. one token re-keyed 30 times in a row through a slow Vault: the 60
     events are answered by a few syncs, the last key wins, no version is
     redundant; and each result line's event= names an event that sync
     answered for;
  4. sync.max_pending = 50 with a slow Vault and 600 events in one
     partition: the worker pauses it and still finishes everything (its
     peak RSS is reported; memory is measured by make bench, not asserted
     here, and sanitizer builds inflate it);
     4a. with librdkafka's queue and fetches cut to 64 KiB, 40,000 events
         are all consumed and committed, and the worker reports waking the
         fetcher as its queue drained;
  5. SIGTERM with 50 syncs in flight through a slow Vault: the worker
     finishes them, exits 0 in time, and the next worker of its group has
     nothing to redo; with a shutdown timeout too short for them, the
     committed offset of each partition is its first unfinished event and
     the next worker redoes exactly the events from there on;
  6. no captured output holds a token key, the Vault root token or the
     authentik API token.

$AKV_SCALE_EVENTS changes the event count of scenario 1 (default 20000).
Failures name identifiers and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note, wait_until  # noqa: E402
from keyaudit import versions_kept  # noqa: E402

S = SimpleNamespace(rundir=None, stacks=[], shutdown=None, coalesce=None)

# The smallest session timeout allowed, on both brokers: a static member
# (kafka.instance_id) that leaves sends no LeaveGroup, so its partitions
# wait a whole session timeout for a new owner (and librdkafka 2.0.2's mock
# coordinator sometimes holds a joining member that long too).
BASE_CFG = {
    "kafka": {"session_timeout_ms": 6000},
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000},
}
ASSIGN_TIMEOUT = 30
STOP_TIMEOUT = 30
# Scenario 1. About 1,300 API calls a second is what fake-authentik (each
# answer waits for Kafka's acknowledgement) manages on a 2-core machine with
# nothing else running; 20,000 events over 40 s leave room for the workers.
SCALE_EVENTS = int(os.environ.get("AKV_SCALE_EVENTS") or 20000)
SCALE_TOKENS = max(8, SCALE_EVENTS // 10)
SCALE_THREADS = 8
SCALE_SECONDS = 40.0
SCALE_PARTITIONS = 8
MIB = 1024
POLL_BATCH = 500  # events the worker takes per poll (worker/kafka/consumer.c)
ASSIGNED = re.compile(r"assigned ([1-9]\d*) partition")


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    for st in S.stacks:
        st.stop()


# ---------------------------------------------------------------------------
# helpers


merged = akvtest.merge_settings


def new_stack(name, partitions=4):
    """A fresh stack in its own subdirectory; fake-vault keeps every
    version, so the version audits see them all."""
    st = akvtest.Stack(S.rundir.sub(name), partitions=partitions,
                       vault_args=("--max-versions", "100000"))
    S.stacks.append(st)
    return st


def start(st, name, group, extra=None, exit_at_end=False):
    return st.start_worker(name, group, exit_at_end=exit_at_end,
                           extra=merged(BASE_CFG, extra or {}))


def assigned(w):
    return ASSIGNED.search(w.stderr_text())


def wait_assigned(workers, timeout=ASSIGN_TIMEOUT):
    """Until every worker was assigned partitions (and still runs)."""
    def ready():
        if any(not w.running() for w in workers):
            return "dead"
        return all(assigned(w) for w in workers)
    ok = wait_until(ready, timeout)
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in workers if not w.running()]
    assert not dead, "; ".join(dead)
    assert ok, "not assigned any partition within %ds: %s" % (
        timeout, ", ".join(w.name for w in workers if not assigned(w)))


def new_key(prefix="scale"):
    key = prefix + akvtest.random_secret(43)
    SECRETS.add("token key", key)
    return key


describe = akvtest.describe


def mismatches(st, only=None, kv=None):
    """Live tokens (of \p only) whose Vault copy differs."""
    return st.vault_mismatches(only=only, kv=kv)


def wait_converged(st, timeout, only=None, workers=()):
    """Until Vault matches authentik (for \\p only); @returns seconds."""
    last = []
    t0 = time.monotonic()

    def done():
        dead = [w for w in workers if not w.running()]
        assert not dead, "%s exited %s: %s" % (
            dead[0].name, dead[0].wait(0), dead[0].stderr_tail(3))
        last[:] = mismatches(st, only)
        return not last
    ok = wait_until(done, timeout, interval=0.5)
    assert ok, "after %ds, %d tokens differ in Vault: %s" % (
        timeout, len(last), describe(last))
    return time.monotonic() - t0


def stop_worker(w, timeout=STOP_TIMEOUT):
    """SIGTERM, wait; @returns (final stats, seconds it took)."""
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    rc = w.wait(timeout)
    dt = time.monotonic() - t0
    if rc is None:
        w.stop(1)
        raise AssertionError("%s did not exit within %ds of SIGTERM" % (
            w.name, timeout))
    assert rc == 0, "%s exited %d after SIGTERM: %s" % (w.name, rc,
                                                        w.stderr_tail(3))
    stats = akvtest.final_stats(w.stderr_text())
    assert stats is not None, "%s: no final stats line" % w.name
    return stats, dt


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


def lag_by_partition(st, group):
    return {p["partition"]: p for p in st.lag(group)["partitions"]}


def lag_text(parts):
    return ", ".join("p%d %d/%d" % (n, p["committed"], p["end"])
                     for n, p in sorted(parts.items()))


def wait_lag_zero(st, group, timeout, workers=()):
    """Until every partition's committed offset is its end offset."""
    last = {}

    def done():
        dead = [w for w in workers if not w.running()]
        assert not dead, "%s exited %s: %s" % (
            dead[0].name, dead[0].wait(0), dead[0].stderr_tail(3))
        last.clear()
        last.update(lag_by_partition(st, group))
        return last and all(p["committed"] == p["end"]
                            for p in last.values())
    ok = wait_until(done, timeout, interval=0.5)
    assert ok, "after %ds the committed offsets are not at the ends " \
        "(committed/end): %s" % (timeout, lag_text(last))


def token_events(st):
    """The topic read in memory (nothing written: it is large and holds no
    secret). @returns (token events [(partition, offset, key, action)],
    number of secret_view events, records per partition)."""
    argv = ["kcat", "-C", "-b", st.brokers, "-t", st.topic, "-o",
            "beginning", "-e", "-q", "-J"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(), timeout=120)
    assert r.returncode == 0, "kcat -C exited %d: %s" % (
        r.returncode, r.stderr.decode(errors="replace")[-300:])
    events, views, per_part = [], 0, {}
    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        per_part[j["partition"]] = per_part.get(j["partition"], 0) + 1
        action = json.loads(j["payload"]).get("action")
        if action == "secret_view":
            views += 1
        else:
            events.append((j["partition"], j["offset"], j.get("key"),
                           action))
    return events, views, per_part


def version_audit(st, states, kv=None):
    """No redundant or backward Vault version: for every token in \\p states
    ({identifier: [(key, intent), ...] every state it had, oldest first, all
    distinct}) each stored version holds one of its states, consecutive
    versions differ, there are no more versions than states, and no
    version holds an older state than the version before it.
    @returns {identifier: number of versions}."""
    kv = st.vault_kv() if kv is None else kv
    problems, counts = [], {}
    for ident, had in sorted(states.items()):
        kept = versions_kept(kv, "authentik/" + ident, ident, counts,
                             problems)
        if kept is None:
            continue
        vers, cur = kept
        index = {s: n for n, s in enumerate(had)}
        seq = []
        for n in range(1, cur + 1):
            d = vers[str(n)].get("data") or {}
            seq.append(index.get((d.get("key"), d.get("intent")), -1) if
                       set(d) == {"key", "intent"} else -1)
        foreign = ["v%d" % (n + 1) for n, i in enumerate(seq) if i < 0]
        if foreign:
            problems.append("%s: %s hold%s a state authentik never had" % (
                ident, ",".join(foreign[:4]),
                "s" if len(foreign) == 1 else ""))
        same = ["v%d" % (n + 1) for n in range(1, cur)
                if seq[n] == seq[n - 1] >= 0]
        if same:
            problems.append("%s: %s repeat%s the version before" % (
                ident, ",".join(same[:4]), "s" if len(same) == 1 else ""))
        back = ["v%d (state #%d after #%d)" % (n + 1, seq[n], seq[n - 1])
                for n in range(1, cur) if 0 <= seq[n] < seq[n - 1]]
        if back:
            problems.append("%s: back to an older key at %s" % (
                ident, ", ".join(back[:3])))
        if cur > len(had):
            problems.append("%s: %d versions for %d states" % (
                ident, cur, len(had)))
    assert not problems, "bad Vault versions: " + "; ".join(
        problems[:8]) + (" ... (%d tokens)" % len(problems)
                         if len(problems) > 8 else "")
    return counts


class Api:
    """fake-authentik's token API over one keep-alive connection: for one
    thread. Nothing is retried (a lost answer would leave the event count
    unknown); any failure raises, naming the call only."""

    def __init__(self, st):
        host, port = st.authentik.address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": "Bearer " + st.authentik_token,
                        "Content-Type": "application/json",
                        "Accept": "application/json"}

    def call(self, method, path, body, want):
        try:
            self.conn.request(method, path, json.dumps(body), self.headers)
            r = self.conn.getresponse()
            raw = r.read()
        except (http.client.HTTPException, OSError) as e:
            self.conn.close()
            raise AssertionError("%s %s failed: %s" % (
                method, path, type(e).__name__)) from None
        if r.status != want:
            raise AssertionError("%s %s returned %d (wanted %d)" % (
                method, path, r.status, want))
        return json.loads(raw) if raw else None

    def create(self, ident, intent):
        return self.call("POST", "/api/v3/core/tokens/", {
            "identifier": ident, "intent": intent, "description": "scale",
            "expiring": True}, 201)

    def set_key(self, ident, key):
        self.call("POST", "/api/v3/core/tokens/%s/set_key/" % ident,
                  {"key": key}, 204)

    def patch(self, ident, fields):
        self.call("PATCH", "/api/v3/core/tokens/%s/" % ident, fields, 200)

    def close(self):
        self.conn.close()


def create_many(st, idents, threads=8, intent="api"):
    """Creates \\p idents concurrently. @returns {identifier: pk (32 hex
    digits, the Kafka record key)}."""
    pks, errors = {}, []

    def run(mine):
        api = Api(st)
        try:
            for ident in mine:
                pks[ident] = api.create(ident, intent)["pk"].replace("-", "")
        except Exception as e:  # noqa: BLE001
            errors.append(akvtest.reason_of(e))
        finally:
            api.close()
    ts = [threading.Thread(target=run, args=(idents[i::threads],))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, "creating tokens: " + errors[0]
    return pks


class Producer:
    """Creates \\p tokens tokens, then re-keys them (set_key: two events)
    and flips their intent (PATCH: one event) until exactly \\p events token
    events were published, at about \\p rate events a second, from \\p
    threads threads. Each token belongs to one thread, so the test knows
    every state (key, intent) each token went through, in order; an intent
    flip always follows a re-key, so no state repeats."""

    def __init__(self, st, tokens, events, rate, threads):
        assert events >= tokens
        self.st = st
        self.idents = ["scale-%05d" % i for i in range(tokens)]
        self.remaining = events
        self.rate = rate / threads
        self.nthreads = threads
        self.states = {i: [] for i in self.idents}
        self.counts = {"create": 0, "set_key": 0, "intent": 0}
        self.errors = []
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(threads, action=self._snapshot)
        self.threads = [threading.Thread(target=self._run, args=(n,),
                                         name="producer-%d" % n, daemon=True)
                        for n in range(threads)]
        self.started = self.finished = None

    def _snapshot(self):
        """Between creating and changing: every token's first state."""
        live = self.st.live_tokens()
        for ident in self.idents:
            tok = live[ident]
            self.states[ident].append((tok["key"], tok["intent"]))

    def _claim(self, n):
        with self.lock:
            got = min(n, self.remaining)
            self.remaining -= got
            return got

    def _count(self, what):
        with self.lock:
            self.counts[what] += 1

    def _run(self, n):
        api = Api(self.st)
        rng = random.Random(n)
        mine = self.idents[n::self.nthreads]
        t_next = time.monotonic()

        def pace(events):
            nonlocal t_next
            t_next += events / self.rate
            delay = t_next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            for i, ident in enumerate(mine):
                if not self._claim(1):
                    raise AssertionError("event budget below token count")
                api.create(ident, "app_password" if i % 4 == 0 else "api")
                self._count("create")
                pace(1)
            self.barrier.wait(60)
            flipped = set()  # tokens whose last change was an intent flip
            while True:
                ident = rng.choice(mine)
                flip = ident not in flipped and rng.random() < 0.1
                got = self._claim(1 if flip else 2)
                if not got:
                    break
                if got == 1 and not flip:
                    flip = True
                    ident = next((t for t in mine if t not in flipped), None)
                    assert ident, "no token left to flip"
                key, intent = self.states[ident][-1]
                if flip:
                    intent = "api" if intent == "app_password" else \
                        "app_password"
                    api.patch(ident, {"intent": intent})
                    flipped.add(ident)
                    self._count("intent")
                else:
                    key = new_key()
                    api.set_key(ident, key)
                    flipped.discard(ident)
                    self._count("set_key")
                self.states[ident].append((key, intent))
                pace(1 if flip else 2)
        except threading.BrokenBarrierError:
            self.errors.append("producer-%d: another thread failed" % n)
        except Exception as e:  # noqa: BLE001
            self.errors.append("producer-%d: %s" % (n, akvtest.reason_of(e)))
            self.barrier.abort()
        finally:
            api.close()

    def start(self):
        self.started = time.monotonic()
        for t in self.threads:
            t.start()

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not self.running(), "the producer still runs after %ds" % (
            timeout)
        self.finished = time.monotonic()
        assert not self.errors, "; ".join(self.errors[:3])

    def events(self):
        c = self.counts
        return c["create"] + 2 * c["set_key"] + c["intent"]


# ---------------------------------------------------------------------------
# 1: replicas join and leave during a 20,000-event run


def test_replicas_join_and_leave_during_20000_events():
    st = new_stack("replicas", partitions=SCALE_PARTITIONS)
    group = "scale-replicas"
    t_start = time.monotonic()
    replicas = {}   # name -> Proc, running
    stopping = []   # (Proc, time of SIGTERM)

    def join(name, instance=None):
        extra = {"kafka": {"instance_id": instance}} if instance else {}
        replicas[name] = start(st, name, group, extra=extra)

    def leave(name):
        # A replica is stopped once it has joined: librdkafka 2.0.2 (the
        # Debian 12 package) aborts when a consumer is closed between its
        # JoinGroup and SyncGroup answers (upstream issue 4312, fixed in
        # 2.3.0). The worker waits for a pending join at shutdown, but a
        # join that cannot finish (a stalled group) still hits it.
        w = replicas.pop(name)
        akvtest.wait_until(lambda: assigned(w) or not w.running(),
                           ASSIGN_TIMEOUT)
        w.signal(signal.SIGTERM)
        stopping.append((w, time.monotonic()))

    # Static members (kafka.instance_id) do not leave the group when they
    # stop: their partitions wait for them a session timeout (6 s), and one
    # back within it gets them without a rebalance.
    join("replica-1", "pod-1")
    wait_assigned(list(replicas.values()))
    prod = Producer(st, SCALE_TOKENS, SCALE_EVENTS,
                    SCALE_EVENTS / SCALE_SECONDS, SCALE_THREADS)
    schedule = [
        (3, join, "replica-2", None),
        (6, join, "replica-3", "pod-3"),
        (9, join, "replica-4", None),        # all four
        (13, leave, "replica-1", None),      # static: nobody takes over
        (16, join, "replica-1b", "pod-1"),   # back within 6 s
        (20, leave, "replica-2", None),
        (24, leave, "replica-4", None),
        (27, join, "replica-5", None),
        (30, leave, "replica-3", None),      # static, not coming back
        (34, join, "replica-6", None),
        (38, leave, "replica-1b", None),
    ]
    most = 1
    prod.start()
    for at, action, name, instance in schedule:
        delay = prod.started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        died = ["%s exited %s: %s" % (n, w.wait(0), w.stderr_tail(3))
                for n, w in replicas.items() if not w.running()]
        assert not died, "a replica died: " + "; ".join(died)
        if action is join:
            join(name, instance)
        else:
            leave(name)
        assert replicas, "no replica left running"
        most = max(most, len(replicas))
    assert most == 4, "at most %d replicas ran at once" % most
    prod.join(180)
    produced_s = prod.finished - prod.started
    assert prod.events() == SCALE_EVENTS, \
        "the producer made %d events, wanted %d" % (prod.events(),
                                                     SCALE_EVENTS)

    # The two left catch up (the partitions of a stopped static member
    # wait for its session timeout first).
    converge_s = wait_converged(st, 120, workers=list(replicas.values()))

    # Everything is in Vault; the replicas stop one at a time (the second
    # takes over the first one's partitions, whose only new events are the
    # skipped secret_view ones), and the group has committed every event.
    last = list(replicas)
    for name in last[:-1]:
        leave(name)
        stopping[-1][0].wait(STOP_TIMEOUT)
    wait_lag_zero(st, group, 60, workers=list(replicas.values()))
    leave(last[-1])

    # Every SIGTERMed replica must have exited 0 (in time), with its final
    # stats; checked last, so that a failure here still reports on the rest.
    stats, exits = {}, []
    for w, t_term in stopping:
        rc = w.wait(max(1.0, t_term + STOP_TIMEOUT - time.monotonic()))
        if rc is None:
            w.stop(1)
            exits.append("%s still running %ds after SIGTERM" % (
                w.name, STOP_TIMEOUT))
        elif rc != 0:
            exits.append("%s exited %d%s: %s" % (
                w.name, rc, " (never assigned)" if not assigned(w) else "",
                w.stderr_tail(1)))
        elif akvtest.final_stats(w.stderr_text()) is None:
            exits.append("%s: no final stats line" % w.name)
        else:
            stats[w.name] = akvtest.final_stats(w.stderr_text())

    # A last worker of the group finds nothing to sync: every token event
    # was committed by the replicas.
    _, fin = run_to_end(st, "replica-final", group)
    assert fin["matched"] == 0 and fin["poison"] == 0, \
        "the last worker of the group found %d token event(s) not " \
        "committed (poison=%d)" % (fin["matched"], fin["poison"])
    parts = lag_by_partition(st, group)
    assert len(parts) == SCALE_PARTITIONS, "lag lists %d partitions" % (
        len(parts))
    behind = {n: p for n, p in parts.items() if p["committed"] != p["end"]
              or p["lag"] != 0}
    assert not behind, "committed/end after the run: %s" % lag_text(behind)

    # Vault: exactly every live token's current state, nothing else, and
    # no redundant or backward version.
    kv = st.vault_kv()
    bad = mismatches(st, kv=kv)
    assert not bad, "%d tokens differ in Vault after the run: %s" % (
        len(bad), describe(bad))
    extra = sorted(set(st.vault_current(kv)) - set(prod.idents))
    assert not extra, "unexpected Vault paths: %s" % extra[:10]
    counts = version_audit(st, prod.states, kv)
    versions = sum(counts.values())
    kv_writes = st.vault_stats().get("kv_writes")
    assert kv_writes == versions, "kv_writes=%s, %d versions stored" % (
        kv_writes, versions)

    # Every token event was consumed and matched at least once.
    events, views, per_part = token_events(st)
    assert len(events) == SCALE_EVENTS, \
        "the topic holds %d token events, the producer made %d" % (
            len(events), SCALE_EVENTS)
    empty = [n for n in range(SCALE_PARTITIONS)
             if not any(e[0] == n for e in events)]
    assert not empty, "partitions without token events: %s" % empty
    total = {k: sum(s[k] for s in stats.values())
             for k in akvtest.STATS_FIELDS}
    assert exits or total["matched"] >= SCALE_EVENTS, \
        "the replicas matched %d events, %d were produced" % (
            total["matched"], SCALE_EVENTS)
    assert total["poison"] == 0 and total["dead_lettered"] == 0, \
        "poison=%d dead_lettered=%d" % (total["poison"],
                                        total["dead_lettered"])
    syncs = total["written"] + total["unchanged"] + total["filtered"]
    note("%d token events (%d creates, %d re-keys, %d intent flips) in "
         "%.1fs; %d secret_view events; %d replicas over the run, up to 4 "
         "at once; converged %.1fs after the producer stopped; %d syncs "
         "(%d written, %d unchanged), %d events matched (%d redone); %d "
         "versions for %d tokens; %.0fs in all" % (
             len(events), prod.counts["create"], prod.counts["set_key"],
             prod.counts["intent"], produced_s, views, len(stopping),
             converge_s, syncs, total["written"], total["unchanged"],
             total["matched"], total["matched"] - SCALE_EVENTS, versions,
             len(counts), time.monotonic() - t_start))
    note("records per partition: %s" % ", ".join(
        "p%d %d" % item for item in sorted(per_part.items())))
    assert not exits, "; ".join(exits)
    st.stop()


def test_revoked_sync_never_overwrites_the_new_owner():
    """A sync whose partition is revoked while its Vault request is slow
    (it keeps running, answering for no event) must not write an older key
    over the one the partition's new owner wrote. Worker A starts syncing
    key 2 and its Vault request takes 30 s; worker B joins (two
    cooperative rounds, about 10 s on the mock), takes one of the two
    partitions and syncs key 3 at once; when A's request returns, Vault
    must still end with key 3 and no version may go back to key 2."""
    st = new_stack("revoked", partitions=2)
    group = "scale-revoked"
    slow_ms = 30000
    cfg = {"vault": {"timeout_ms": slow_ms + 30000}}
    a = start(st, "revoked-a", group, extra=cfg)
    wait_assigned([a])
    api = Api(st)
    # One token in each partition: whichever moves to B has one.
    toks, n = {}, 0
    while len(toks) < 2:
        ident = "moved-%d" % n
        n += 1
        pk = api.create(ident, "api")["pk"].replace("-", "")
        events, _, _ = token_events(st)
        part = [p for p, _, key, _ in events if key == pk][0]
        toks.setdefault(part, ident)
    idents = sorted(toks.values())
    states = {i: [(t["key"], "api")] for i, t in st.live_tokens().items()}
    wait_converged(st, 20, workers=[a])
    assert wait_until(lambda: len(akvtest.sync_lines(a.stderr_text())) >= n,
                      10), "A logged no result for every creation"

    st.vault_faults({"latency_ms": slow_ms, "scope": "kv"})
    requests = st.vault_stats()["requests"]
    t_slow = time.monotonic()
    for ident in idents:  # key 2: A reads it, then waits for Vault
        key = new_key()
        api.set_key(ident, key)
        states[ident].append((key, "api"))
    # fake-vault counts a request before its latency: both reads wait.
    assert wait_until(lambda: st.vault_stats()["requests"] >= requests + 2,
                      10, interval=0.05), "A's Vault reads did not come"
    b = start(st, "revoked-b", group, extra=cfg)
    st.vault_faults(None)  # only the requests already waiting are slow
    for ident in idents:  # key 3: the newest
        key = new_key()
        api.set_key(ident, key)
        states[ident].append((key, "api"))
    api.close()
    wait_assigned([b])
    t_b = time.monotonic() - t_slow
    assert t_b < slow_ms / 1000 - 2, \
        "B was assigned only %.1fs after A's slow Vault read started: " \
        "the scenario needs it sooner" % t_b
    # Until A's slow requests have returned, and whatever they led to.
    time.sleep(max(0.0, t_slow + slow_ms / 1000 + 3 - time.monotonic()))
    bad = mismatches(st)
    late = [l for l in akvtest.sync_lines(a.stderr_text())
            if l["partition"] < 0 and l["result"] == "written"]
    assert not bad, "%s after A's slow sync of a revoked partition " \
        "returned (A wrote %d version(s) for no partition: %s)" % (
            describe(bad), len(late), ", ".join(
                "%s v%d" % (l["token"], l["version"]) for l in late))
    version_audit(st, states)
    for w in (a, b):
        stop_worker(w)
    note("B assigned %.1fs into A's %ds Vault read; Vault kept key 3" % (
        t_b, slow_ms // 1000))
    st.stop()


# ---------------------------------------------------------------------------
# 2: one token's writes are denied for a while


def test_denied_token_holds_only_its_own_events():
    st = new_stack("denied", partitions=4)
    group = "scale-denied"
    stuck = "stuck-token"
    plan = st.vault_faults({"deny_prefix": "kv/data/authentik/" + stuck})
    assert plan.get("deny_prefix"), "plan not taken: %s" % plan
    w = start(st, "denied-worker", group, extra={
        "sync": {"config_retry_ms": 500, "log_interval_ms": 2000}})
    wait_assigned([w])

    api = Api(st)
    stuck_pk = api.create(stuck, "api")["pk"].replace("-", "")
    others = ["other-%02d" % i for i in range(40)]
    pks = create_many(st, others)
    # Keep changing them (and the stuck one, whose events queue behind its
    # held sync) for a few seconds.
    for rnd in range(3):
        for ident in others:
            api.set_key(ident, new_key())
        api.set_key(stuck, new_key())
        time.sleep(0.5)
    st.live_tokens()

    events, _, _ = token_events(st)
    part_of = {}
    for p, off, key, _ in events:
        part_of.setdefault(key, set()).add(p)
    (stuck_part,) = part_of[stuck_pk]
    stuck_offsets = sorted(off for p, off, key, _ in events
                           if key == stuck_pk)
    first = stuck_offsets[0]
    covered = {p for ident in others for p in part_of[pks[ident]]}
    assert covered == set(range(4)), \
        "the other tokens landed in partitions %s only" % sorted(covered)
    behind = [i for i in others if stuck_part in part_of[pks[i]]]
    assert behind, "no other token shares the stuck token's partition"

    # The others reach Vault, those behind the stuck one in its partition
    # too, while the stuck one is held.
    dt = wait_converged(st, 30, only=set(others), workers=[w])
    assert stuck not in st.vault_current(), \
        "%s was written despite the policy" % stuck
    cfg = [l for l in w.stderr_text().splitlines()
           if "token=%s class=configuration" % stuck in l]
    assert cfg, "no class=configuration line for %s" % stuck

    # Committed: the stuck partition at or below the stuck token's first
    # event, every other partition at its end.
    last = {}

    def held_and_others_done():
        last.clear()
        last.update(lag_by_partition(st, group))
        return all(p["committed"] <= first if n == stuck_part
                   else p["committed"] == p["end"]
                   for n, p in last.items())
    ok = wait_until(held_and_others_done, 20, interval=0.5)
    assert ok, "stuck token's first event at p%d offset %d; committed/end: " \
        "%s" % (stuck_part, first, lag_text(last))
    time.sleep(2)  # still held a while later
    parts = lag_by_partition(st, group)
    assert parts[stuck_part]["committed"] <= first, \
        "p%d committed %d past the held event at offset %d" % (
            stuck_part, parts[stuck_part]["committed"], first)
    assert stuck not in st.vault_current(), \
        "%s was written despite the policy" % stuck
    held_lag = parts[stuck_part]["lag"]

    # Lifted: everything converges and the group catches up.
    st.vault_faults(None)
    dt2 = wait_converged(st, 20, workers=[w])
    wait_lag_zero(st, group, 30, workers=[w])
    api.close()
    stats, _ = stop_worker(w)
    lines = [s for s in akvtest.sync_lines(w.stderr_text())
             if s["token"] == stuck]
    answered = sum(s["events"] for s in lines)
    assert answered == len(stuck_offsets), \
        "%s's results answer for %d events, it had %d" % (
            stuck, answered, len(stuck_offsets))
    assert any(s["result"] == "written" for s in lines), \
        "%s never ended written" % stuck
    assert stats["retries"] > 0, "retries=0 with a denied token"
    denied = st.vault_stats()["faults"]["denied_prefix"]
    note("%s held (p%d, first event at offset %d, %d events, lag %d while "
         "held, %d denied requests) while 40 others in all 4 partitions "
         "(%d behind it in p%d) synced in %.1fs; converged %.1fs after "
         "lifting" % (stuck, stuck_part, first, len(stuck_offsets),
                      held_lag, denied, len(behind), stuck_part, dt, dt2))
    st.stop()


# ---------------------------------------------------------------------------
# 3: coalescing


def test_thirty_rekeys_coalesce_into_few_syncs():
    st = new_stack("coalesce", partitions=2)
    st.vault_faults({"latency_ms": 200, "scope": "kv"})
    w = start(st, "coalesce-worker", "scale-coalesce")
    wait_assigned([w])
    hot = "hot-token"
    api = Api(st)
    hot_pk = api.create(hot, "api")["pk"].replace("-", "")
    first_key = st.live_tokens()[hot]["key"]

    def hot_lines():
        return [s for s in akvtest.sync_lines(w.stderr_text())
                if s["token"] == hot]
    # The result line comes after the provenance write: wait for it, not
    # for the secret.
    assert wait_until(hot_lines, 20), "%s's creation was not synced" % hot
    wait_converged(st, 5, workers=[w])
    v0 = st.vault_current()[hot][0]
    n0 = len(hot_lines())

    # 30 re-keys over about 0.7 s, while one sync takes about 0.6 s (three
    # slow Vault requests): the events keep arriving while syncs run.
    t0 = time.monotonic()
    keys = [new_key() for _ in range(30)]
    for key in keys:
        api.set_key(hot, key)  # two events each
        time.sleep(0.02)
    rekey_s = time.monotonic() - t0
    api.close()
    nevents = 2 * len(keys)

    def answered():
        lines = hot_lines()[n0:]
        return lines if sum(s["events"] for s in lines) >= nevents \
            else None
    lines = wait_until(answered, 30, interval=0.3)
    assert lines, "the %d events were not all answered within 30s" % (
        nevents)
    total = sum(s["events"] for s in lines)
    assert total == nevents, "the syncs answer for %d events, there " \
        "were %d" % (total, nevents)
    assert len(lines) <= 5, "%d syncs for %d events (events= %s)" % (
        len(lines), nevents, [s["events"] for s in lines])
    cur = st.vault_current()[hot]
    assert cur[1] == {"key": keys[-1], "intent": "api"}, \
        "Vault does not hold the last key (v%s)" % cur[0]
    written = [s for s in lines if s["result"] == "written"]
    assert cur[0] - v0 == len(written), \
        "%d new versions, %d syncs wrote" % (cur[0] - v0, len(written))
    version_audit(st, {hot: [(k, "api") for k in [first_key] + keys]})
    stop_worker(w)
    S.coalesce = SimpleNamespace(st=st, hot=hot, pk=hot_pk,
                                 lines=hot_lines())
    note("%d events (30 re-keys in %.2fs) answered by %d syncs (events= "
         "%s), %d new version(s)" % (nevents, rekey_s, len(lines),
                                     [s["events"] for s in lines],
                                     cur[0] - v0))


@depends("test_thirty_rekeys_coalesce_into_few_syncs")
def test_result_lines_name_an_event_they_answer_for():
    """A result line's event= (and the provenance written with it) names
    one of the events that sync answered for: each sync of one token
    answers for the next events= of its events, in partition order."""
    c = S.coalesce
    try:
        records = akvtest.kcat_consume(c.st.brokers, c.st.topic,
                                       c.st.rundir, name="kcat-coalesce")
    finally:
        c.st.stop()
    mine = [(r["partition"], r["offset"], json.loads(r["value"])["pk"])
            for r in records if r["key"] == c.pk and
            json.loads(r["value"]).get("action") != "secret_view"]
    at = {(p, o): n for n, (p, o, _) in enumerate(mine)}
    wrong = []
    for s in c.lines:
        n = at.get((s["partition"], s["offset"]))
        assert n is not None, "no %s event at p%d offset %d" % (
            c.hot, s["partition"], s["offset"])
        answered = [pk for _, _, pk in mine[n:n + s["events"]]]
        if s["event"] not in answered:
            later = [i for i, (_, _, pk) in enumerate(mine)
                     if pk == s["event"]]
            wrong.append("offset %d events=%d names the event at offset "
                         "%s" % (s["offset"], s["events"], ",".join(
                             str(mine[i][1]) for i in later) or "?"))
    assert not wrong, "%d of %d result lines of %s name an event they do " \
        "not answer for: %s" % (len(wrong), len(c.lines), c.hot,
                                "; ".join(wrong[:3]))


# ---------------------------------------------------------------------------
# 4: backpressure


def test_backpressure_pauses_and_bounds_memory():
    st = new_stack("backpressure", partitions=1)
    group = "scale-backpressure"
    idents = ["bp-%03d" % i for i in range(600)]
    create_many(st, idents)
    st.live_tokens()
    st.vault_faults({"latency_ms": 100, "scope": "kv"})
    t0 = time.monotonic()
    w = start(st, "backpressure-worker", group, extra={
        "sync": {"max_pending": 50}, "log": {"level": "debug"}})
    wait_converged(st, 90, workers=[w])
    dt = time.monotonic() - t0
    wait_lag_zero(st, group, 30, workers=[w])
    hwm = akvtest.peak_rss_kib(w.pid)
    assert hwm, "no VmHWM for the worker"
    paused = [int(l.rsplit("paused: ", 1)[1].split()[0])
              for l in w.stderr_text().splitlines()
              if "partition=0 paused: " in l]
    stats, _ = stop_worker(w)
    assert paused, "the partition was never paused (no 'paused' line)"
    # The bound is checked after each poll batch (up to 500 events), so
    # the unfinished events may pass it by up to one batch.
    assert max(paused) <= 50 + POLL_BATCH, \
        "paused at %d unfinished events" % max(paused)
    assert stats["matched"] == len(idents), \
        "matched=%d, %d events" % (stats["matched"], len(idents))
    assert stats["written"] == len(idents), \
        "written=%d for %d tokens" % (stats["written"], len(idents))
    note("%d events through a 100 ms Vault in %.1fs: paused %d time(s) "
         "at %s unfinished; peak RSS %.1f MiB" % (
             len(idents), dt, len(paused),
             ",".join(map(str, sorted(set(paused))[:8])), hwm / MIB))
    st.stop()


def kafka_properties(props):
    return akvtest.RawCfg("(" + ", ".join(
        '("%s", "%s")' % nv for nv in props.items()) + ")")


def test_small_prefetch_queue_keeps_fetching():
    """librdkafka stops fetching while its queue is over
    queued.max.messages.kbytes and, left alone, looks again only a second
    later. With a queue and fetches of 64 KiB (about 400 events a fetch),
    40,000 events would take well over a minute that way; the worker wakes
    the fetcher as the queue drains, finishes within the timeout and says
    how often it did."""
    st = new_stack("prefetch", partitions=4)
    group = "scale-prefetch"
    gen = [akvtest.binary("akv-bench-gen"), "produce", "--brokers",
           st.brokers, "--topic", st.topic, "--events", "40000",
           "--token-events", "200", "--ghost-tokens", "50", "--quiet"]
    r = subprocess.run(gen, stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(), timeout=120)
    assert r.returncode == 0, "akv-bench-gen exited %d: %s" % (
        r.returncode, r.stderr.decode(errors="replace")[-300:])
    summary = json.loads(r.stdout.decode().strip().splitlines()[-1])
    small = {"queued.max.messages.kbytes": "64", "fetch.max.bytes": "65536",
             "message.max.bytes": "65536",
             "max.partition.fetch.bytes": "16384"}
    w, stats = run_to_end(st, "prefetch-worker", group, timeout=60, extra={
        "kafka": {"properties": kafka_properties(small)}})
    assert stats["consumed"] == summary["events"], \
        "consumed %d of %d events" % (stats["consumed"], summary["events"])
    assert stats["matched"] == summary["token_events"], \
        "matched %d of %d token events" % (stats["matched"],
                                           summary["token_events"])
    assert stats["gone"] > 0 and stats["written"] == 0, stats
    woken = re.search(r"fetcher woken (\d+) time", w.stderr_text())
    assert woken and int(woken.group(1)) > 0, \
        "no fetch wake-up reported: %s" % (woken and woken.group(0))
    parts = lag_by_partition(st, group)
    assert all(p["committed"] == p["end"] for p in parts.values()), \
        lag_text(parts)
    note("%d events through a 64 KiB prefetch queue; fetcher woken %s "
         "times" % (stats["consumed"], woken.group(1)))
    st.stop()


# ---------------------------------------------------------------------------
# 5: shutdown drains


def wait_vault_requests(st, n, timeout=20):
    """Until fake-vault got \\p n requests in all: it counts each as it
    arrives, before any latency, so with a slow Vault this is how many
    syncs sent their first request."""
    ok = wait_until(lambda: st.vault_stats().get("requests", 0) >= n,
                    timeout, interval=0.02)
    assert ok, "fake-vault got only %s requests within %ds, wanted %d" % (
        st.vault_stats().get("requests"), timeout, n)


def test_sigterm_drains_syncs_in_flight():
    st = S.shutdown = new_stack("shutdown", partitions=2)
    group = "scale-shutdown"
    st.vault_faults({"latency_ms": 300, "scope": "kv"})
    timeout_ms = 10000
    a = start(st, "shutdown-a", group, extra={
        "sync": {"shutdown_timeout_ms": timeout_ms}})
    wait_assigned([a])
    requests = st.vault_stats()["requests"]
    idents = ["drain-%02d" % i for i in range(50)]
    create_many(st, idents)
    st.live_tokens()
    wait_vault_requests(st, requests + len(idents))
    done_before = len(akvtest.sync_lines(a.stderr_text()))
    stats, dt = stop_worker(a, timeout=timeout_ms / 1000 + 10)
    assert done_before < len(idents) // 2, \
        "%d of %d syncs had already finished at SIGTERM" % (done_before,
                                                           len(idents))
    assert dt <= timeout_ms / 1000 + 5, "exit took %.1fs" % dt
    lines = akvtest.sync_lines(a.stderr_text())
    answered = sum(s["events"] for s in lines)
    assert stats["matched"] == len(idents) and answered == len(idents), \
        "matched=%d, answered %d of %d events" % (
            stats["matched"], answered, len(idents))
    assert "unfinished at shutdown" not in a.stderr_text(), \
        "syncs left unfinished with a %d ms shutdown timeout" % timeout_ms
    wait_converged(st, 5)
    _, b = run_to_end(st, "shutdown-b", group)
    assert b["matched"] == 0, \
        "the next worker redid %d events; all were finished" % b["matched"]
    note("SIGTERM with %d of %d syncs finished: exited 0 after %.1fs, all "
         "%d written; the next worker redid nothing" % (
             done_before, len(idents), dt, stats["written"]))


@depends("test_sigterm_drains_syncs_in_flight")
def test_short_shutdown_timeout_leaves_only_the_rest_to_redo():
    st = S.shutdown
    group = "scale-shutdown"
    # 100..1600 ms per Vault request, three per sync: some syncs finish
    # within the 2.5 s shutdown timeout, some do not.
    st.vault_faults({"latency_ms": 100, "latency_jitter_ms": 1500,
                     "scope": "kv"})
    timeout_ms = 2500
    a = start(st, "shutdown-c", group, extra={
        "sync": {"shutdown_timeout_ms": timeout_ms}})
    wait_assigned([a])
    events0, _, _ = token_events(st)
    requests = st.vault_stats()["requests"]
    idents = ["short-%02d" % i for i in range(50)]
    create_many(st, idents)
    st.live_tokens()
    wait_vault_requests(st, requests + len(idents))
    stats, dt = stop_worker(a, timeout=timeout_ms / 1000 + 15)
    assert dt <= timeout_ms / 1000 + 5, "exit took %.1fs" % dt
    st.vault_faults(None)

    # Which events did it finish? One token, one event, one result each.
    events, _, _ = token_events(st)
    new = sorted(set(events) - set(events0))
    assert len(new) == len(idents), "%d new token events" % len(new)
    done = {(s["partition"], s["offset"])
            for s in akvtest.sync_lines(a.stderr_text())}
    unfinished = [(p, o) for p, o, _, _ in new if (p, o) not in done]
    assert stats["matched"] == len(idents), "matched=%d" % stats["matched"]
    assert unfinished, "every sync finished within %d ms" % timeout_ms
    assert "unfinished at shutdown" in a.stderr_text(), \
        "no 'unfinished at shutdown' warning"
    # The committed watermark: per partition, the first unfinished event.
    parts = lag_by_partition(st, group)
    redo = []
    for n, p in parts.items():
        mine = sorted(o for q, o in unfinished if q == n)
        if mine:
            assert p["committed"] == mine[0], \
                "p%d committed %d, its first unfinished event is at %d" % (
                    n, p["committed"], mine[0])
            redo += [(q, o) for q, o, _, _ in new
                     if q == n and o >= mine[0]]
        else:
            assert p["committed"] > max([o for q, o, _, _ in new if q == n]
                                        or [-1]), \
                "p%d committed %d short of its finished events" % (
                    n, p["committed"])
    _, b = run_to_end(st, "shutdown-d", group)
    assert b["matched"] == len(redo), \
        "the next worker redid %d events; %d were past the watermark " \
        "(%d unfinished)" % (b["matched"], len(redo), len(unfinished))
    wait_converged(st, 10)
    note("shutdown timeout %d ms: exited 0 after %.1fs with %d of %d "
         "unfinished; the next worker redid %d (the unfinished and the "
         "finished ones behind them)" % (timeout_ms, dt, len(unfinished),
                                          len(idents), b["matched"]))
    st.stop()


# ---------------------------------------------------------------------------


def test_no_secret_in_any_output():
    akvtest.stop_all()
    kinds = SECRETS.kinds()
    assert kinds.get("token key", 0) >= 30, \
        "only %d token keys collected" % kinds.get("token key", 0)
    logs = S.rundir.logs()
    t0 = time.monotonic()
    akvtest.assert_no_secrets(logs)
    note("scanned %d files (%.1f MB) for %s in %.1fs" % (
        len(logs), sum(p.stat().st_size for p in logs) / 1e6, ", ".join(
            "%d %s" % (n, k) for k, n in sorted(kinds.items())),
        time.monotonic() - t0))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "scale", setup=setup, teardown=teardown)
