#!/usr/bin/python3
"""Kafka faults only a real cluster has: a partition leader killed, the
group coordinator killed, the whole cluster down for 20 s. The workers keep
going (or wait) and lose nothing.

Always on the real broker (tests/kafka/kafka-local, Apache Kafka in KRaft
mode) with three nodes; each scenario runs its own stack in a subdirectory
of the run directory: a 6-partition topic replicated on all three nodes,
its dead-letter topic, fake-vault keeping every version, fake-authentik.
Two ak2vault replicas of one consumer group (session timeout 10 s,
vault.on_delete = soft-delete) run throughout while a driver thread keeps
changing tokens through fake-authentik's API (creates, set_key, rotations,
intent and description patches, deletes, re-creates of deleted
identifiers) at a steady pace, recording every state ({key, intent}) each
token went through, read back from /_fake/tokens after each call.

  1. leader kill: after a warm-up, half of the changes go to the tokens of
     one partition; the node leading the most-written partition (measured
     from the end offsets) is SIGKILLed mid-run. While it is down the
     changes go on, and that partition's committed offset must move past
     its end at the kill (the new leader serves it, the worker consumes
     and commits). Then the replica owning that partition is SIGTERMed —
     a rolling restart during a broker failure — and must exit 0 within
     40 s (one still running is SIGKILLed, with its threads' ak2vault
     frames taken by gdb when there is one, and the test fails); a fresh
     replica takes its place. 12 s or more after the kill the node is
     started again and the test waits for a full ISR.
  2. coordinator kill: the node coordinating the workers' group is
     SIGKILLed mid-run; another node must become coordinator, and while
     the old one is still down the workers must commit every partition up
     to at least its end as it was when the coordinator moved (they
     rejoined and commit there); then the node is started again.
  3. whole cluster down for 20 s: two nodes are SIGKILLed and the third is
     frozen (SIGSTOP), so that no node answers anything; after 20 s it is
     thawed and the two are started again. (kafka-local restarts one node
     at a time and answers `start N` only once the node is back, which a
     single voter of a three-voter KRaft quorum never is — it gives up
     after about a minute — so killing all three could not be undone
     through its control.) The workers must not exit; their /readyz may
     turn unready meanwhile.

Every scenario ends the same way, once the driver stopped:

  * the group settles: `ak2vault lag` shows every partition committed to
    its end, twice in a row with the same ends (bounded wait);
  * Vault equals authentik: every live token's current version is exactly
    {"key", "intent"} as authentik holds it; a deleted token's current
    version is soft-deleted (or the token never reached Vault);
  * version audit: each token's Vault versions, oldest first, lie on its
    recorded states in order (no roll-back, no state it never had);
  * the dead-letter topic, read back with kcat, is empty, and no worker
    counted a poison or dead-lettered event;
  * both workers exit 0 on SIGTERM;
  * (last test) no captured output holds a secret.
Each check is also run once on a deliberately wrong expectation (a key or
an intent changed, a forged Vault version, a committed offset one short, a
fake dead-letter record), which it must reject: a check that cannot fail
proves nothing. Every worker's /livez must answer 200 throughout.

While a node is down the test reads the group's progress from the
workers' /metrics (their acknowledged commits, sampled often), and asks
`ak2vault lag` once with the dead node in its bootstrap: it must answer
(figures or an error) within LAG_BOUND seconds. librdkafka 2.0.2's
rd_kafka_query_watermark_offsets() ignores its timeout when the
partition's leader dies under it (fixed in librdkafka 2.3.0); the worker
and `lag` ask ListOffsets through rd_kafka_offsets_for_times(), which
keeps to it.

A stand-in limitation, accounted for honestly: fake-authentik answers an
API call only once Kafka acknowledged its event (5 s message timeout) and
answers 500 "could not publish the event to Kafka" otherwise — but the
change itself is made, and the event is lost (real authentik records the
event in its database first). The driver records such calls; after the
fault it makes one more change to each such token (a description patch,
or a re-create and delete for a deleted one) so that an event for its
current state exists. Their number is printed. The workers' own key reads
(view_key) publish a secret_view event too, so they get 500s (transient,
retried) while Kafka is unreachable.

Printed figures: the fault timeline, API calls that failed or took more
than a second, the longest gap between commits (the workers' committed
offsets, sampled from /metrics) and between Vault writes, time unready,
rebalances, failed commits, sync retries, settle time.

$AKV_SEED replays a run's choice of changes (the seed is printed).
Failures name identifiers, states by their index in a token's history
("key #2") and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, note, wait_until  # noqa: E402

TOPIC = akvtest.TOPIC
DLQ = TOPIC + ".dlq"
PARTITIONS = 6
NODES = 3
REPLICAS = 2
S = SimpleNamespace(rundir=None, stacks=[], seed=None, reads=0)

BASE_CFG = {
    "kafka": {"session_timeout_ms": 10000},
    "vault": {"on_delete": "soft-delete"},
    "dlq": {"topic": DLQ},
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000,
             "retry_after_max_ms": 5000, "config_retry_ms": 500,
             "log_interval_ms": 2000},
    "metrics": {"listen": "127.0.0.1:0"},
}
ASSIGN_TIMEOUT = 60
STOP_TIMEOUT = 40
SETTLE_TIMEOUT = 180
# `ak2vault lag` with a node down: its requests time out after 10 s each.
LAG_BOUND = 45
WARM_TOKENS = 60
MIN_LIVE = 45             # deletes stop below this many live tokens
PACE = 0.08               # seconds between the starts of two changes
LEAD_IN = 8.0             # seconds of changes before a fault
FAULT_MIN = 12.0          # a killed node stays down at least this long
AFTER = 5.0               # seconds of changes after the cluster is whole
OUTAGE = 20.0             # scenario 3
PROGRESS_TIMEOUT = 60     # the worker's progress while a node is down

ASSIGNED = re.compile(r"assigned ([1-9]\d*) partition")
METRICS_PORT = re.compile(r"serving /metrics .*\(port (\d+)\)")
KAFKA_WARN = re.compile(r"\b(_[A-Z][A-Z_]+|[A-Z][A-Z_]{4,}): ")


def setup(rundir):
    S.rundir = rundir
    S.seed = int(os.environ.get("AKV_SEED") or random.randrange(1, 10**9))
    note("seed %d (replay with AKV_SEED=%d)" % (S.seed, S.seed))


def teardown(rundir):
    for st in S.stacks:
        thaw_all(st)
        st.stop()


# ---------------------------------------------------------------------------
# the stack, nodes and workers


def new_stack(name):
    st = akvtest.Stack(S.rundir.sub(name), kafka="real", brokers=NODES,
                       partitions=PARTITIONS, topics=(DLQ + ":1",),
                       vault_args=("--max-versions", "100000"))
    st.frozen = set()
    S.stacks.append(st)
    return st


def node_addr(st, node):
    return st.brokers.split(",")[node - 1]


def live_brokers(st, down=()):
    """The bootstrap list without the nodes in \\p down (kcat gives up when
    its first bootstrap connection hits a dead node)."""
    return ",".join(node_addr(st, n) for n in range(1, NODES + 1)
                    if n not in down)


def leaders(st):
    """{partition: leader node} as the first live node sees it."""
    out = {}
    for item in st.kafka_command("leaders " + TOPIC).split():
        p, n = item.split(":")
        out[int(p)] = int(n)
    return out


def coordinator(st, group):
    return int(st.kafka_command("coordinator " + group))


def jvm_pid(st, node):
    """The pid of node \\p node's JVM (a child of kafka-local)."""
    want = ("/node%d/server.properties" % node).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == st.kafka.pid and any(a.endswith(want) for a in argv):
            return int(entry)
    raise AssertionError("no JVM of node %d under kafka-local" % node)


def freeze(st, node):
    pid = jvm_pid(st, node)
    os.kill(pid, signal.SIGSTOP)
    st.frozen.add(pid)


def thaw_all(st):
    for pid in list(getattr(st, "frozen", ())):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        st.frozen.discard(pid)


def start_worker(st, name, group):
    return st.start_worker(name, group, extra=BASE_CFG)


def assigned(w):
    return len(ASSIGNED.findall(w.stderr_text()))


def check_alive(workers):
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in workers if not w.running()]
    assert not dead, "a worker died: " + "; ".join(dead)


def wait_assigned(workers, timeout=ASSIGN_TIMEOUT):
    def ready():
        if any(not w.running() for w in workers):
            return "dead"
        return all(assigned(w) for w in workers)
    ok = wait_until(ready, timeout)
    check_alive(workers)
    assert ok, "not assigned partitions within %ds: %s" % (
        timeout, ", ".join(w.name for w in workers if not assigned(w)))


def stop_worker(w):
    """SIGTERM; @returns its final stats (exit status 0 required)."""
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


def lag_parts(st, group, down=()):
    """`ak2vault lag --json` through the live nodes only: {partition:
    {"committed", "end", "low", "lag"}}."""
    cfg = akvtest.write_config(
        st.rundir.file("ak2vault-lag-faults.cfg"), live_brokers(st, down),
        st.authentik_url, st.vault_addr, group=group, topic=TOPIC)
    argv = [akvtest.binary("ak2vault"), "lag", "-c", str(cfg), "--group",
            group, "--json"]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, env=akvtest.child_env(),
                           cwd=str(st.rundir.path), timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("ak2vault lag still running after 60s") \
            from None
    with open(st.rundir.file("ak2vault-lag.stdout.log"), "ab") as f:
        f.write(r.stdout)
    with open(st.rundir.file("ak2vault-lag.stderr.log"), "ab") as f:
        f.write(r.stderr)
    if r.returncode != 0:
        raise AssertionError("ak2vault lag exited %d: %s" % (
            r.returncode, SECRETS.scrub(
                r.stderr.decode(errors="replace").strip()[-300:])))
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise AssertionError("ak2vault lag --json printed no JSON: %r" %
                             r.stdout[:200]) from None
    return {p["partition"]: p for p in out["partitions"]}


def lag_while_down(st, group, problems):
    """`ak2vault lag` asked while a leader is down, the dead node still in
    its bootstrap, must answer in bounded time: the figures, or an error
    naming what it could not read. @returns what it said, shortly."""
    t0 = time.monotonic()
    try:
        parts = lag_parts(st, group)
        said = "answered for %d partitions" % len(parts)
    except AssertionError as e:
        said = str(e)[:160]
    took = time.monotonic() - t0
    if took > LAG_BOUND:
        problems.append("ak2vault lag took %.1fs with a node down: %s" % (
            took, said))
    return "%s after %.1fs" % (said, took)


def try_lag(st, group, down=()):
    try:
        return lag_parts(st, group, down)
    except AssertionError:
        return None


def caught_up(parts):
    return len(parts) == PARTITIONS and all(
        p["committed"] == p["end"] or p["end"] == p["low"]
        for p in parts.values())


def lag_text(parts):
    return ", ".join("p%d %d/%d" % (n, p["committed"], p["end"])
                     for n, p in sorted(parts.items()))


def wait_settled(st, group, workers, timeout=SETTLE_TIMEOUT):
    """Until every partition is committed to its end twice in a row, a
    second apart, with the same ends. @returns the seconds it took."""
    t0 = time.monotonic()
    last = {}
    prev = [None]

    def done():
        check_alive(workers)
        parts = try_lag(st, group)
        if parts is None:
            return False
        last.clear()
        last.update(parts)
        ends = {n: p["end"] for n, p in parts.items()}
        if caught_up(parts) and prev[0] == ends:
            return True
        prev[0] = ends if caught_up(parts) else None
        return False
    ok = wait_until(done, timeout, interval=1.0)
    assert ok, "after %ds the group's committed offsets are not at the " \
        "ends (committed/end): %s" % (timeout, lag_text(last))
    return time.monotonic() - t0


def read_topic(st, topic, what):
    S.reads += 1
    return akvtest.kcat_consume(st.brokers, topic, st.rundir,
                                name="kcat-%s-%d" % (what, S.reads))


def dlq_problem(recs):
    if not recs:
        return None
    return "the dead-letter topic holds %d record(s): %s" % (
        len(recs), "; ".join("p%s@%s %s" % (
            r["partition"], r["offset"],
            dict(r["headers"]).get("ak2vault.error.reason"))
            for r in recs[:5]))


# ---------------------------------------------------------------------------
# the driver: token changes through fake-authentik's API


class Book:
    """Every state ({key, intent}) each token went through, in order, read
    back from /_fake/tokens after each call (the driver is the only writer,
    one call at a time). A call fake-authentik answered with 500 "could
    not publish the event to Kafka" made its change but lost its event:
    its identifier is kept in \\p undelivered until a later change of the
    token was delivered."""

    def __init__(self, st, rng):
        self.st = st
        self.rng = rng
        self.hist = {}         # identifier -> [(key, intent), ...]
        self.live = {}         # identifier -> (key, intent)
        self.deleted = []      # deleted and not re-created
        self.flipped = set()   # last change an intent flip
        self.undelivered = set()
        self.counts = {}
        self.lost_events = 0   # calls answered "could not publish"
        self.slow_calls = 0    # calls that took more than a second
        self.max_call = 0.0
        self.calls = 0

    def _count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def _call(self, ident, method, url_path, body, want, fake=False):
        t0 = time.monotonic()
        if fake:
            status, out = akvtest.http_json(
                method, self.st.authentik_url + url_path, body, timeout=30)
        else:
            status, out = akvtest.http_json(
                method, self.st.authentik_url + url_path, body, headers={
                    "Authorization": "Bearer " + self.st.authentik_token},
                timeout=30)
        dt = time.monotonic() - t0
        self.calls += 1
        self.max_call = max(self.max_call, dt)
        if dt > 1.0:
            self.slow_calls += 1
        if status == want:
            self.undelivered.discard(ident)
            return True
        detail = out.get("detail") if isinstance(out, dict) else None
        if status == 500 and "could not publish" in str(detail):
            self.lost_events += 1
            self.undelivered.add(ident)
            return False
        raise AssertionError("%s %s returned %s (wanted %s)%s" % (
            method, url_path, status, want,
            ": %s" % SECRETS.scrub(str(detail)) if detail else ""))

    def _read(self, ident):
        tok = self.st.live_tokens().get(ident)
        return (tok["key"], tok["intent"]) if tok else None

    def _record(self, ident):
        state = self._read(ident)
        if state is None:
            self.live.pop(ident, None)
            if ident not in self.deleted:
                self.deleted.append(ident)
            return
        if ident in self.deleted:
            self.deleted.remove(ident)
        if not self.hist.get(ident) or self.live.get(ident) != state:
            self.hist.setdefault(ident, []).append(state)
        self.live[ident] = state

    def create(self, ident, intent="api"):
        self._count("recreate" if ident in self.deleted else "create")
        self._call(ident, "POST", "/api/v3/core/tokens/", {
            "identifier": ident, "intent": intent,
            "description": "faults %s" % ident, "expiring": True}, 201)
        self.flipped.discard(ident)
        self._record(ident)

    def set_key(self, ident):
        key = "faults" + akvtest.random_secret(40)
        SECRETS.add("token key", key)
        self._count("set_key")
        self._call(ident, "POST", "/api/v3/core/tokens/%s/set_key/" % ident,
                   {"key": key}, 204)
        self.flipped.discard(ident)
        self._record(ident)

    def rotate(self, ident):
        self._count("rotate")
        self._call(ident, "POST", "/_fake/tokens/%s/rotate" % ident, None,
                   200, fake=True)
        self.flipped.discard(ident)
        self._record(ident)

    def flip(self, ident):
        intent = "app_password" if self.live[ident][1] == "api" else "api"
        self._count("intent")
        self._call(ident, "PATCH", "/api/v3/core/tokens/%s/" % ident,
                   {"intent": intent}, 200)
        self.flipped.add(ident)
        self._record(ident)

    def describe(self, ident):
        self._count("description")
        return self._call(ident, "PATCH", "/api/v3/core/tokens/%s/" % ident,
                          {"description": "changed %d" %
                           self.rng.randrange(10**6)}, 200)

    def delete(self, ident):
        self._count("delete")
        self._call(ident, "DELETE", "/api/v3/core/tokens/%s/" % ident, None,
                   204)
        self.flipped.discard(ident)
        self._record(ident)

    def change(self, hot=None):
        """One seeded random change; half of them on \\p hot identifiers
        when given."""
        rng = self.rng
        live = sorted(self.live)
        pick = rng.random()
        if self.deleted and pick < 0.06:
            self.create(rng.choice(self.deleted),
                        "app_password" if rng.random() < 0.2 else "api")
            return
        pool = [i for i in (hot or ()) if i in self.live]
        ident = rng.choice(pool if pool and rng.random() < 0.5 else live)
        if pick < 0.14 and len(live) > MIN_LIVE:
            self.delete(ident)
        elif pick < 0.45:
            self.set_key(ident)
        elif pick < 0.60:
            self.rotate(ident)
        elif pick < 0.80 and ident not in self.flipped:
            self.flip(ident)
        elif pick < 0.80:
            self.set_key(ident)
        else:
            self.describe(ident)

    def redeliver(self, timeout=120):
        """One more change for each token whose last change lost its
        event, until one is delivered. @returns how many tokens."""
        n = len(self.undelivered)
        deadline = time.monotonic() + timeout
        while self.undelivered:
            assert time.monotonic() < deadline, \
                "fake-authentik still cannot publish after %ds (%d tokens " \
                "waiting)" % (timeout, len(self.undelivered))
            ident = sorted(self.undelivered)[0]
            if ident in self.live:
                self.describe(ident)
            else:
                self.create(ident)
                if ident not in self.undelivered:
                    self.delete(ident)
            if ident in self.undelivered:
                time.sleep(1.0)
        return n

    def check_against_authentik(self):
        live = {i: (t["key"], t["intent"])
                for i, t in self.st.live_tokens().items()}
        assert live == self.live, "the test's record of authentik is " \
            "wrong for: %s" % sorted(i for i in set(live) | set(self.live)
                                     if live.get(i) != self.live.get(i))

    def keys(self, ident):
        out = []
        for k, _ in self.hist.get(ident, ()):
            if k not in out:
                out.append(k)
        return out

    def key_no(self, ident, key):
        ks = self.keys(ident)
        return "key #%d" % (ks.index(key) + 1) if key in ks else \
            "a key it never had"


class Driver(threading.Thread):
    """Changes tokens at a steady pace until stopped; \\p hot (a list the
    main thread may replace) gets half of them."""

    def __init__(self, book):
        super().__init__(daemon=True, name="driver")
        self.book = book
        self.hot = None
        self.halt = threading.Event()
        self.error = None
        self.changes = 0

    def run(self):
        try:
            while not self.halt.is_set():
                t0 = time.monotonic()
                self.book.change(self.hot)
                self.changes += 1
                self.halt.wait(max(0.0, PACE - (time.monotonic() - t0)))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def check(self):
        if self.error is not None:
            raise AssertionError("the driver failed: %s" %
                                 akvtest.reason_of(self.error))

    def stop(self):
        self.halt.set()
        self.join(60)
        assert not self.is_alive(), "the driver did not stop"
        self.check()


def keep_driving(driver, workers, seconds):
    """The driver runs on for \\p seconds; the workers must stay up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        driver.check()
        check_alive(workers)
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


# ---------------------------------------------------------------------------
# watching the workers


def metrics_port(w):
    m = METRICS_PORT.search(w.stderr_text())
    return m.group(1) if m else None


class Monitor(threading.Thread):
    """Samples every worker's /livez, /readyz and /metrics twice a second:
    committed offsets (per partition, the highest any worker reports),
    readiness, liveness."""

    def __init__(self, workers):
        super().__init__(daemon=True, name="monitor")
        self.workers = workers
        self.halt = threading.Event()
        self.samples = []  # (t, {partition: committed}, {name: ready})
        self.unready = {w.name: 0.0 for w in workers}
        self.not_live = {}  # name -> [livez answers other than 200]
        self.not_ready_why = {}
        self.lock = threading.Lock()

    def add(self, w):
        with self.lock:
            self.workers.append(w)
            self.unready.setdefault(w.name, 0.0)

    def committed(self):
        """{partition: committed offset} of the latest sample."""
        with self.lock:
            return dict(self.samples[-1][1]) if self.samples else {}

    def run(self):
        last = time.monotonic()
        while not self.halt.is_set():
            now = time.monotonic()
            committed, ready = {}, {}
            with self.lock:
                workers = list(self.workers)
            for w in workers:
                port = metrics_port(w)
                if not port or not w.running():
                    continue
                base = "http://127.0.0.1:%s" % port
                st_l, _, body_l = akvtest.http_get_text(base + "/livez", 3)
                if st_l != 200:
                    self.not_live.setdefault(w.name, []).append(
                        "%s %s" % (st_l, body_l.strip()[:120]))
                st_r, _, body_r = akvtest.http_get_text(base + "/readyz", 3)
                ready[w.name] = st_r == 200
                if st_r != 200:
                    self.unready[w.name] += now - last
                    why = body_r.strip()[:100]
                    self.not_ready_why[why] = \
                        self.not_ready_why.get(why, 0) + 1
                st_m, _, text = akvtest.http_get_text(base + "/metrics", 3)
                if st_m != 200:
                    continue
                try:
                    fams = akvtest.parse_exposition(text)
                except AssertionError:
                    continue
                fam = fams.get("ak2vault_committed_offset") or {}
                for _, labels, v in fam.get("samples", ()):
                    p = int(labels.get("partition", -1))
                    if v >= 0:
                        committed[p] = max(committed.get(p, -1), int(v))
            with self.lock:
                self.samples.append((now, committed, ready))
            last = now
            self.halt.wait(0.5)

    def stop(self):
        self.halt.set()
        self.join(10)

    def longest_commit_gap(self, t_from, t_to):
        """The longest time in [t_from, t_to] during which no partition's
        committed offset moved: (seconds, start)."""
        best, best_at = 0.0, None
        prev, since = None, None
        for t, committed, _ in self.samples:
            if t < t_from or t > t_to:
                continue
            total = {p: v for p, v in committed.items()}
            if prev is None:
                prev, since = total, t
                continue
            moved = any(total.get(p, -1) > prev.get(p, -1) for p in total)
            if moved:
                if t - since > best:
                    best, best_at = t - since, since
                since = t
            prev = {p: max(v, prev.get(p, -1)) for p, v in total.items()}
        return best, best_at


def vault_write_gap(kv, t_from_wall, t_to_wall):
    """The longest gap between two successive Vault versions written in
    the wall-clock window: (seconds, start) or (None, None)."""
    stamps = []
    for sec in kv.values():
        for ver in (sec.get("versions") or {}).values():
            t = wall_time(ver.get("created_time"))
            if t is not None and t_from_wall <= t <= t_to_wall:
                stamps.append(t)
    stamps.sort()
    best, best_at = None, None
    for a, b in zip(stamps, stamps[1:]):
        if best is None or b - a > best:
            best, best_at = b - a, a
    return best, best_at


def wall_time(text):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", text or "")
    if not m:
        return None
    import calendar
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return base + float(m.group(2) or 0)


def worker_figures(workers):
    """Rebalances, failed commits and Kafka warnings from the workers'
    /metrics and logs."""
    figs = {"rebalances": 0, "commits_failed": 0, "commits_ok": 0}
    warns = {}
    for w in workers:
        port = metrics_port(w)
        if port and w.running():
            st_m, _, text = akvtest.http_get_text(
                "http://127.0.0.1:%s/metrics" % port, 3)
            if st_m == 200:
                fams = akvtest.parse_exposition(text)
                figs["rebalances"] += int(akvtest.sample(
                    fams, "ak2vault_rebalances_total") or 0)
                figs["commits_failed"] += int(akvtest.sample(
                    fams, "ak2vault_commits_total", result="error") or 0)
                figs["commits_ok"] += int(akvtest.sample(
                    fams, "ak2vault_commits_total", result="ok") or 0)
        for line in w.stderr_text().splitlines():
            if "kafka" not in line or not re.search(r"\bwarn", line,
                                                    re.IGNORECASE):
                continue
            m = KAFKA_WARN.search(line)
            if m:
                warns[m.group(1)] = warns.get(m.group(1), 0) + 1
    return figs, warns


# ---------------------------------------------------------------------------
# the end checks


def current(kv):
    """{identifier: (current version, data, deletion_time)}."""
    out = {}
    for path, sec in kv.items():
        if not path.startswith("authentik/"):
            continue
        cur = sec.get("current_version")
        ver = sec.get("versions", {}).get(str(cur), {})
        out[path[len("authentik/"):]] = (cur, ver.get("data"),
                                         ver.get("deletion_time") or "")
    return out


def vault_differences(book, kv, live=None):
    """[(identifier, what differs)] between Vault and authentik (\\p live:
    {identifier: (key, intent)}, the book's by default)."""
    live = book.live if live is None else live
    cur = current(kv)
    bad = []
    for ident in sorted(book.hist):
        want = live.get(ident)
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
    """Each token's Vault versions, oldest first, must lie on its recorded
    states in order. @returns (versions audited, [problems])."""
    n_versions = 0
    problems = []
    for ident, hist in sorted(book.hist.items()):
        sec = kv.get("authentik/" + ident)
        if sec is None:
            continue
        vers = sec.get("versions", {})
        pos = 0
        for n in range(1, (sec.get("current_version") or 0) + 1):
            data = (vers.get(str(n)) or {}).get("data")
            n_versions += 1
            if not isinstance(data, dict) or set(data) != {"key", "intent"}:
                problems.append("%s: v%d holds fields %s" % (
                    ident, n, sorted(data) if isinstance(data, dict)
                    else data))
                continue
            state = (data["key"], data["intent"])
            j = next((j for j in range(pos, len(hist)) if hist[j] == state),
                     None)
            if j is None:
                problems.append("%s: v%d holds %s (%s, %s)" % (
                    ident, n, "an earlier state" if state in hist[:pos]
                    else "a state authentik never had",
                    book.key_no(ident, state[0]), state[1]))
                continue
            pos = j
    return n_versions, problems


def describe(items, limit=8):
    text = "; ".join("%s: %s" % m for m in items[:limit])
    if len(items) > limit:
        text += " ... (%d in all)" % len(items)
    return text


def negative_controls(book, kv, parts):
    """Each end check, fed a deliberately wrong expectation, must fail."""
    live = [i for i in sorted(book.live)
            if current(kv).get(i, (0, None, ""))[1]]
    assert live, "no live token in Vault to test the checks with"
    wrong = dict(book.live)
    wrong[live[0]] = ("faults-not-the-key", book.live[live[0]][1])
    assert vault_differences(book, kv, wrong), \
        "the Vault comparison accepted a wrong key"
    wrong = dict(book.live)
    k, intent = book.live[live[-1]]
    wrong[live[-1]] = (k, "api" if intent == "app_password" else
                       "app_password")
    assert vault_differences(book, kv, wrong), \
        "the Vault comparison accepted a wrong intent"
    forged = json.loads(json.dumps(kv))
    sec = forged["authentik/" + live[0]]
    ver = sec["versions"][str(sec["current_version"])]
    ver["data"] = dict(ver["data"], key="faults-never-a-key")
    assert version_audit(book, forged)[1], \
        "the version audit accepted a state authentik never had"
    short = {n: dict(p) for n, p in parts.items()}
    busy = max(short, key=lambda n: short[n]["end"] - short[n]["low"])
    short[busy]["committed"] -= 1
    assert not caught_up(short), "the lag check accepted a committed " \
        "offset one short of the end"
    assert dlq_problem([{"partition": 0, "offset": 0, "headers": []}]), \
        "the dead-letter check accepted a record"


def final_checks(st, book, group, workers):
    """@returns (figures, [problems], Vault's secrets); the workers still
    run."""
    problems = []
    try:
        settle = wait_settled(st, group, workers)
    except AssertionError as e:
        problems.append(str(e))
        settle = float("nan")
    book.check_against_authentik()
    kv = st.vault_kv()
    bad = vault_differences(book, kv)
    if bad:  # a sync of a revoked partition may still be finishing
        time.sleep(2)
        kv = st.vault_kv()
        bad = vault_differences(book, kv)
    n_versions, audit = version_audit(book, kv)
    if bad:
        problems.append("%d token(s) differ from authentik with every "
                        "event committed: %s" % (len(bad), describe(bad)))
    if audit:
        problems.append("version audit: %s" % describe(audit, 6))
    parts = lag_parts(st, group)
    if not caught_up(parts):
        problems.append("committed/end %s" % lag_text(parts))
    dlq = dlq_problem(read_topic(st, DLQ, "dlq"))
    if dlq:
        problems.append(dlq)
    negative_controls(book, kv, parts)
    figs = {"settle": settle, "versions": n_versions,
            "tokens": len(book.hist), "live": len(book.live),
            "events": sum(p["end"] - p["low"] for p in parts.values())}
    return figs, problems, kv


def finish(st, name, book, group, workers, driver, monitor, timeline,
           window, problems=None):
    """Stops the driver, redelivers lost events, runs the end checks,
    stops the workers and prints the figures; fails with every problem
    found (\\p problems: those found during the fault). \\p window:
    (monotonic start, end) of the fault."""
    problems = list(problems or [])
    driver.stop()
    redelivered = book.redeliver()
    figs, found, kv = final_checks(st, book, group, workers)
    problems.extend(found)
    kfigs, warns = worker_figures(st.workers)
    monitor.stop()
    t_end = time.monotonic()
    gap, gap_at = monitor.longest_commit_gap(window[0] - LEAD_IN, t_end)
    wall0 = time.time() - (time.monotonic() - (window[0] - LEAD_IN))
    wgap, wgap_at = vault_write_gap(kv, wall0, wall0 + (t_end - window[0] +
                                                         LEAD_IN))
    stats = []
    for w in workers:
        try:
            stats.append(stop_worker(w))
        except AssertionError as e:
            problems.append(str(e))
    dl = sum(s["dead_lettered"] + s["poison"] for s in stats)
    poison = sum(len(akvtest.poison_lines(w.stderr_text()))
                 for w in st.workers)
    if dl or poison:
        problems.append("the workers dead-lettered or found poison: %d "
                        "(%d poison lines in their logs)" % (dl, poison))
    retries = sum(s["retries"] for s in stats)
    not_live = {n: v for n, v in monitor.not_live.items() if v}
    note("%s: timeline %s" % (name, "; ".join(
        "%s +%.1fs" % (what, t - window[0]) for what, t in timeline)))
    note("%s: %d changes (%s) in %d API calls, the slowest %.1fs, %d over "
         "1s; %d answered 'could not publish the event' (fake-authentik "
         "lost the event), %d token(s) changed again afterwards" % (
             name, driver.changes, ", ".join(
                 "%s=%d" % kv_ for kv_ in sorted(book.counts.items())),
             book.calls, book.max_call, book.slow_calls, book.lost_events,
             redelivered))
    note("%s: longest time without a commit %.1fs (from fault %+.1fs); "
         "longest gap between Vault writes %s; unready %s; livez failures "
         "%s; rebalances %d, commits ok %d / failed %d; sync retries %d; "
         "Kafka warnings %s; settled %.1fs after the driver stopped" % (
             name, gap, (gap_at - window[0]) if gap_at else 0.0,
             "%.1fs (from fault %+.1fs)" % (
                 wgap, wgap_at - wall0 - LEAD_IN) if wgap else "-",
             ", ".join("%s %.1fs" % kv_ for kv_ in
                       sorted(monitor.unready.items())),
             sum(len(v) for v in not_live.values()),
             kfigs["rebalances"], kfigs["commits_ok"],
             kfigs["commits_failed"], retries,
             ", ".join("%s=%d" % kv_ for kv_ in sorted(warns.items()))
             or "none", figs["settle"]))
    if monitor.not_ready_why:
        note("%s: /readyz said: %s" % (name, "; ".join(
            "%r x%d" % kv_ for kv_ in sorted(monitor.not_ready_why.items(),
                                             key=lambda i: -i[1])[:4])))
    note("%s: tokens=%d live=%d events=%d versions_audited=%d" % (
        name, figs["tokens"], figs["live"], figs["events"],
        figs["versions"]))
    if not_live:
        problems.append("/livez failed: %s" % "; ".join(
            "%s: %s" % (n, v[0]) for n, v in sorted(not_live.items())))
    assert not problems, "%s: %s" % (name, " || ".join(problems))
    st.stop()
    S.stacks.remove(st)


def begin(name, group, rng_offset):
    """A fresh stack, two workers assigned, WARM_TOKENS created, the
    driver and the monitor running. @returns (stack, book, workers,
    driver, monitor)."""
    st = new_stack(name)
    workers = [start_worker(st, "%s-w%d" % (name, i + 1), group)
               for i in range(REPLICAS)]
    wait_assigned(workers)
    book = Book(st, random.Random(S.seed + rng_offset))
    for i in range(WARM_TOKENS):
        book.create("%s-%03d" % (name, i),
                    "app_password" if book.rng.random() < 0.2 else "api")
    monitor = Monitor(workers)
    monitor.start()
    driver = Driver(book)
    driver.start()
    return st, book, workers, driver, monitor


def token_partitions(workers):
    """{identifier: partition of its latest sync} from the sync lines."""
    out = {}
    for w in workers:
        for s in akvtest.sync_lines(w.stderr_text()):
            out[s["token"]] = s["partition"]
    return out


# ---------------------------------------------------------------------------
# 1: the leader of the busiest partitions


def test_leader_of_busiest_partitions_killed():
    name, group = "leader", "faults-leader"
    st, book, workers, driver, monitor = begin(name, group, 1)
    # Half the changes go to the tokens of the partition most of them
    # landed on.
    where = {}
    wait_until(lambda: len(where.update(token_partitions(workers)) or
                           where) >= WARM_TOKENS, 30)
    by_part = {}
    for ident, p in where.items():
        by_part.setdefault(p, []).append(ident)
    hot_part = max(by_part, key=lambda p: len(by_part[p]))
    driver.hot = by_part[hot_part]
    before = lag_parts(st, group)
    keep_driving(driver, workers, LEAD_IN)
    after = lag_parts(st, group)
    writes = {p: after[p]["end"] - before[p]["end"] for p in after}
    busiest = max(writes, key=lambda p: writes[p])
    lead = leaders(st)
    victim = lead[busiest]
    led = sorted(p for p, n in lead.items() if n == victim)
    note("leader: writes per partition over %.0fs: %s (hot p%d); node %d "
         "leads p%s, the most written p%d" % (
             LEAD_IN, ", ".join("p%d %d" % kv for kv in sorted(
                 writes.items())), hot_part, victim,
             ",".join(map(str, led)), busiest))
    end_at_kill = lag_parts(st, group)[busiest]["end"]
    owner = owner_of(workers, busiest)
    t_kill = time.monotonic()
    st.kafka_command("kill %d" % victim)
    timeline = [("kill -9 node %d" % victim, t_kill)]
    problems = []

    # While it is down, the busiest partition moves to another leader and
    # the workers go on: its committed offset (as the workers' /metrics
    # report their commits; `ak2vault lag` is no use while a leader is
    # down, see replica_stopped) passes its end at the kill.
    def moved_on():
        driver.check()
        check_alive(workers)
        return monitor.committed().get(busiest, -1) > end_at_kill
    progressed = wait_until(moved_on, PROGRESS_TIMEOUT, interval=0.5)
    timeline.append(("p%d committed past its end at the kill (%d -> %d)" % (
        busiest, end_at_kill, monitor.committed().get(busiest, -1)),
        time.monotonic()))
    if not progressed:
        problems.append(
            "with node %d (the leader of p%d) down for %.0fs, p%d's "
            "committed offset never passed its end at the kill (%d): %s" % (
                victim, busiest, time.monotonic() - t_kill, busiest,
                end_at_kill, monitor.committed()))
    # A replica stopped meanwhile (a rolling restart during a broker
    # failure) exits 0 in time, and a fresh one takes its place.
    stopped = replica_stopped(owner, "node %d down" % victim, problems)
    timeline.append(("%s (owner of p%d) SIGTERMed: %s" % (
        owner.name, busiest, stopped), time.monotonic()))
    workers.remove(owner)
    fresh = start_worker(st, "%s-w%d" % (name, REPLICAS + 1), group)
    workers.append(fresh)
    monitor.add(fresh)
    wait_assigned([fresh])
    timeline.append(("%s assigned" % fresh.name, time.monotonic()))
    timeline.append(("ak2vault lag with node %d in its bootstrap: %s" % (
        victim, lag_while_down(st, group, problems)), time.monotonic()))
    keep_driving(driver, workers, max(0.0, t_kill + FAULT_MIN -
                                      time.monotonic()))
    st.kafka_command("start %d" % victim)
    timeline.append(("node %d back" % victim, time.monotonic()))
    st.kafka_command("ready")
    t_ready = time.monotonic()
    timeline.append(("full ISR", t_ready))
    keep_driving(driver, workers, AFTER)
    finish(st, name, book, group, workers, driver, monitor, timeline,
           (t_kill, t_ready), problems)


def owner_of(workers, partition):
    """The worker that logged the latest sync of \p partition (log lines
    start with their UTC time)."""
    best, best_at = workers[0], ""
    for w in workers:
        for line in w.stderr_text().splitlines():
            m = akvtest.SYNC_RE.search(line)
            if m and int(m.group(5)) == partition and line[:24] > best_at:
                best, best_at = w, line[:24]
    return best


def backtrace(w):
    """The ak2vault frames of every thread of the running \\p w, from gdb
    (without argument values), kept in <name>.backtrace.log; "" without
    gdb."""
    gdb = shutil.which("gdb")
    if not gdb:
        return "(no gdb)"
    path = w.rundir.file("%s.backtrace.log" % w.name)
    try:
        r = subprocess.run(
            [gdb, "-batch", "-p", str(w.pid), "-ex",
             "set print frame-arguments none", "-ex",
             "thread apply all bt"], stdin=subprocess.DEVNULL,
            capture_output=True, timeout=60, env=akvtest.child_env())
    except subprocess.TimeoutExpired:
        return "(gdb timed out)"
    text = r.stdout.decode(errors="replace")
    path.write_text(SECRETS.scrub(text))
    out = []
    for block in text.split("\nThread ")[1:]:
        names = re.findall(r"in (\w+) \(.*?\) at (worker/[\w/]+\.c:\d+)",
                           block)
        lib = re.findall(r"in (rd_kafka_\w+) \(", block)
        if names:
            out.append(" <- ".join("%s (%s)" % n for n in names[:3]) +
                       (" in %s" % lib[0] if lib else ""))
    return "; ".join(out) or "(no ak2vault frames)"


def replica_stopped(w, why, problems):
    """SIGTERMs \p w; it must exit 0 within STOP_TIMEOUT. A worker still
    running then is SIGKILLed and a problem is recorded. @returns a short
    description."""
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    rc = w.wait(STOP_TIMEOUT)
    dt = time.monotonic() - t0
    if rc is None:
        stuck = w.stderr_text().strip().splitlines()[-1:]
        frames = backtrace(w)
        w.signal(signal.SIGKILL)
        w.wait(10)
        problems.append(
            "%s, SIGTERMed with %s, still ran %ds later (killed); its last "
            "line: %s; where its threads were: %s" % (
                w.name, why, STOP_TIMEOUT,
                SECRETS.scrub(" ".join(stuck))[:300], frames))
        return "still running after %ds, SIGKILLed" % STOP_TIMEOUT
    if rc != 0:
        problems.append("%s exited %d after SIGTERM with %s: %s" % (
            w.name, rc, why, w.stderr_tail(3)))
    return "exit %d after %.1fs" % (rc, dt)


# ---------------------------------------------------------------------------
# 2: the group coordinator


def test_group_coordinator_killed():
    name, group = "coord", "faults-coordinator"
    st, book, workers, driver, monitor = begin(name, group, 2)
    keep_driving(driver, workers, LEAD_IN)
    victim = coordinator(st, group)
    at_kill = monitor.committed()
    t_kill = time.monotonic()
    st.kafka_command("kill %d" % victim)
    timeline = [("kill -9 node %d (coordinator)" % victim, t_kill)]
    problems = []

    moved = []

    def new_coordinator():
        driver.check()
        check_alive(workers)
        n = coordinator(st, group)
        if n != victim:
            moved.append(n)
        return moved
    wait_until(new_coordinator, PROGRESS_TIMEOUT, interval=1.0)
    assert moved, "node %d still named coordinator of %s %ds after it " \
        "was killed" % (victim, group, PROGRESS_TIMEOUT)
    timeline.append(("coordinator node %d" % moved[0], time.monotonic()))

    # Commits acknowledged while the old coordinator is dead were taken by
    # the new one: every partition's committed offset (as the workers'
    # /metrics report their acknowledged commits) must move past where it
    # was at the kill. The driver keeps writing to every partition.
    def committed_there():
        driver.check()
        check_alive(workers)
        now = monitor.committed()
        return len(now) == PARTITIONS and all(
            now.get(p, -1) > at_kill.get(p, -1) for p in range(PARTITIONS))
    ok = wait_until(committed_there, PROGRESS_TIMEOUT, interval=0.5)
    timeline.append(("every partition committed past its offset at the "
                     "kill", time.monotonic()))
    if not ok:
        now = monitor.committed()
        problems.append(
            "with the coordinator node %d down, the group did not commit "
            "past its offsets at the kill within %ds on the new "
            "coordinator node %d: committed at kill -> now %s" % (
                victim, PROGRESS_TIMEOUT, moved[0], ", ".join(
                    "p%d %s->%s" % (p, at_kill.get(p), now.get(p))
                    for p in range(PARTITIONS))))
    keep_driving(driver, workers, max(0.0, t_kill + FAULT_MIN -
                                      time.monotonic()))
    st.kafka_command("start %d" % victim)
    timeline.append(("node %d back" % victim, time.monotonic()))
    st.kafka_command("ready")
    t_ready = time.monotonic()
    timeline.append(("full ISR; coordinator node %d" % coordinator(
        st, group), t_ready))
    keep_driving(driver, workers, AFTER)
    finish(st, name, book, group, workers, driver, monitor, timeline,
           (t_kill, t_ready), problems)


# ---------------------------------------------------------------------------
# 3: the whole cluster down


def test_whole_cluster_down_20s():
    name, group = "outage", "faults-outage"
    st, book, workers, driver, monitor = begin(name, group, 3)
    keep_driving(driver, workers, LEAD_IN)
    coord = coordinator(st, group)
    # The coordinator is killed outright; the frozen node is another one.
    frozen = min(n for n in range(1, NODES + 1) if n != coord)
    killed = [n for n in range(1, NODES + 1) if n != frozen]
    t_down = time.monotonic()
    try:
        freeze(st, frozen)
        for n in killed:
            st.kafka_command("kill %d" % n)
        timeline = [("node %d frozen, nodes %s killed" % (
            frozen, "+".join(map(str, killed))), t_down)]
        keep_driving(driver, workers, OUTAGE - (time.monotonic() - t_down))
    finally:
        thaw_all(st)
    t_up = time.monotonic()
    timeline.append(("node %d thawed" % frozen, t_up))
    for n in killed:
        st.kafka_command("start %d" % n)
        timeline.append(("node %d back" % n, time.monotonic()))
    st.kafka_command("ready")
    t_ready = time.monotonic()
    timeline.append(("full ISR; coordinator node %d" % coordinator(
        st, group), t_ready))
    keep_driving(driver, workers, AFTER)
    finish(st, name, book, group, workers, driver, monitor, timeline,
           (t_down, t_ready))


# ---------------------------------------------------------------------------


def test_no_secret_in_any_output():
    for st in list(S.stacks):
        thaw_all(st)
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
    akvtest.run_tests(globals(), "kafka_faults", setup=setup,
                      teardown=teardown)
