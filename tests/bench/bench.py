#!/usr/bin/python3
"""ak2vault benchmark (`make bench`; `make bench FULL=1` for the full sizes;
`make bench KAFKA=real` on the real broker).

Starts the loopback stand-ins (a Kafka broker, fake-vault, fake-authentik),
creates tokens through fake-authentik's API, writes the topics with
bin/akv-bench-gen, runs bin/ak2vault and prints ONE table. The broker is
--kafka mock (mock-kafka, librdkafka's mock cluster; the default, or
$AKV_KAFKA) or --kafka real (tests/kafka/kafka-local: Apache Kafka, KRaft,
from `make kafka`; every topic is created when it starts, as it creates
none on its own).

  filter  N realistic authentik events, 0.5% of them token events, read by
          `ak2vault run --exit-at-end` and, for the ceiling, by kcat as a
          balanced consumer of a fresh group on the same topic
          (`kcat -G GROUP -o beginning -e TOPIC > /dev/null`); both timed
          from their start to their last message, taking turns for
          --filter-rounds rounds (3 with --full), fresh groups each; the
          median round is reported.
  sync    token events only (M events over T tokens) with latency injected
          on every request to both fakes; the same worker with
          sync.max_in_flight = 64 and = 1, each on its own topic and Vault
          prefix, as a ratio; p50/p99 latency from event to Vault write.
  replay  the last sync topic read again from the earliest offset by a new
          group: Vault writes (must be 0), authentik calls, time.
  freshness
          a worker with the default configuration idles at lag 0 on its own
          topic, which a second fake-authentik publishes to; then one key
          change every 100 ms (set_key through the API, C changes, each on
          a token of its own) with latency injected on both fakes; p50/p99/
          max from the start of the API call to the created_time of the
          Vault version holding the new key.
  reconcile
          R tokens in a third fake-authentik whose events never reach the
          topic (its drop_events fault: the forwarding policy's target
          down), one worker with reconcile.on_start and a reconcile every
          --recon-gap-ms after the last: run 1 backfills an empty Vault
          prefix; run 2 finds the estate unchanged (warm cache); before
          run 3, 1% of the tokens are rotated in authentik, 1% deleted
          there and 1% of the secrets soft-deleted by hand in Vault.
          Per run: time, authentik calls, Vault data reads, metadata
          reads, writes; every change must be found and repaired.

Each row also has the worker's peak RSS and CPU seconds per 1,000 events
(os.wait4() rusage). Sizes are options (--help); --json PATH writes the
same figures as JSON. Exits 1 when a scenario fails: a worker exit status
other than 0, events lost or not all processed, or fake-vault not holding
every token's current key afterwards (compared with fake-authentik's
/_fake/tokens; keys are never printed). Standard library only.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import akvtest  # noqa: E402
from akvtest import note, say  # noqa: E402

SETUP_TOPIC = "bench.setup"  # fake-authentik publishes its own events here
FILTER_TOPIC = "bench.filter"
SYNC_TOPIC = "bench.sync.%d"  # one per sync run
FRESH_TOPIC = "bench.fresh"  # the second fake-authentik's, freshness only
FRESH_PARTITIONS = 4
RECON_TOPIC = "bench.recon"  # the third one's: it drops every event
PREFIX_RECON = "bench-recon"
PREFIX_FILTER = "bench-filter"
PREFIX_SYNC = "bench-sync-%d"
PREFIX_FRESH = "bench-fresh"
MIF_SETTING = "sync.max_in_flight"
SCENARIOS = ("filter", "sync", "replay", "freshness", "reconcile")

# The mock keeps at most 5 MiB of batches per partition and drops the
# oldest silently. akv-bench-gen's lz4 batches take about 165 bytes per
# event, so 25,000 events per partition fill about 80% of it. This bounds
# the mock only: the real broker keeps every segment (kafka-local: 64 MiB
# segments, default retention), so there the filter topic has
# REAL_FILTER_PARTITIONS whatever its size (1,000,000 events: about 21 MB a
# partition).
EVENTS_PER_PARTITION = 25000
REAL_FILTER_PARTITIONS = 8

# Settings of the filter, sync and replay workers, on both brokers: a sync
# retry (none is expected: no fault but latency is injected) waits at most
# 2 s rather than 30 s, so one hiccup of the loaded machine cannot
# dominate a timing. The freshness worker has none of this: it runs with
# the defaults.
WORKER_BASE = {
    "sync": {"retry_max_ms": 2000},
    "log": {"level": "info"},
}
# On the mock only: its group coordinator sometimes holds a member's
# re-join for a whole session timeout; keep that stall short. Every bench
# group has one member, whose join a real coordinator completes at once
# (kafka-local: group.initial.rebalance.delay.ms = 0), so there the
# default (45 s) stays.
WORKER_MOCK = {"kafka": {"session_timeout_ms": 6000}}

LOG_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ")


class BenchFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------
# Small helpers


def parse_time(text):
    """RFC 3339 / ISO 8601 UTC ("...Z", any number of decimals) to epoch
    seconds."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    if not m:
        raise ValueError("not a UTC timestamp: %r" % text)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    secs = base.replace(tzinfo=datetime.timezone.utc).timestamp()
    frac = m.group(2) or "0"
    return secs + int(frac) / 10 ** len(frac)


def log_lines(proc):
    """(epoch seconds, line) of every timestamped line of a worker log."""
    out = []
    for line in proc.stderr_text().splitlines():
        m = LOG_TS_RE.match(line)
        if m:
            out.append((parse_time(m.group(1) + "Z"), line))
    return out


def last_line_time(lines, needle):
    times = [t for t, line in lines if needle in line]
    return max(times) if times else None


def first_line_time(lines, needle):
    times = [t for t, line in lines if needle in line]
    return min(times) if times else None


def rate(n, total, join):
    """Events per second after the group join (None if unknown)."""
    if join is None or total - join <= 0:
        return None
    return round(n / (total - join))


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if v >= 100:
        return "%.0f" % v
    return "%.*f" % (digits, v)


def usage_figures(usage, events):
    cpu = usage.ru_utime + usage.ru_stime
    return {"rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "cpu_s": round(cpu, 3),
            "cpu_s_per_1k": round(cpu / events * 1000.0, 4) if events
            else None}


def run_gen(rundir, name, args, timeout=600):
    """Runs akv-bench-gen; @returns its JSON summary."""
    argv = [akvtest.binary("akv-bench-gen")] + [str(a) for a in args]
    with open(rundir.file("%s.stderr.log" % name), "ab") as err:
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err,
                               stdin=subprocess.DEVNULL, timeout=timeout,
                               env=akvtest.child_env())
        except subprocess.TimeoutExpired:
            raise BenchFailure("akv-bench-gen %s: still running after %ds"
                               % (args[0], timeout)) from None
    out = r.stdout.decode(errors="replace").strip()
    summary = None
    if out:
        try:
            summary = json.loads(out.splitlines()[-1])
        except ValueError:
            summary = None
    if r.returncode != 0:
        tail = " | ".join(rundir.file("%s.stderr.log" % name).read_text(
            errors="replace").strip().splitlines()[-3:])
        raise BenchFailure("akv-bench-gen %s exited %d: %s"
                           % (args[0], r.returncode, tail))
    if summary is None:
        raise BenchFailure("akv-bench-gen %s printed no summary" % args[0])
    return summary


def wait_worker(worker, timeout):
    got = worker.wait_rusage(timeout)
    if got is None:
        worker.stop()
        raise BenchFailure("%s still running after %ds (see %s)" % (
            worker.name, timeout, worker.stderr_path))
    rc, usage = got
    if rc != 0:
        raise BenchFailure("%s exited %s: %s" % (worker.name, rc,
                                                 worker.stderr_tail()))
    return usage


def alive(worker, label):
    """Raises when \p worker has exited (and reaps it)."""
    got = worker.wait_rusage(0)
    if got is not None:
        raise BenchFailure("%s: the worker exited early (status %s): %s" % (
            label, got[0], worker.stderr_tail()))


def run_reaped(argv, rundir, name, timeout):
    """Runs \p argv with stdout to /dev/null, reaping it with wait4; its
    stderr lines are timestamped as they arrive (and logged).
    @returns (exit status, start time, exit time, rusage, [(time, stderr
    line)])."""
    lines = []
    t0 = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=akvtest.child_env(), start_new_session=True)

    def pump():
        with open(rundir.file("%s.stderr.log" % name), "wb") as log:
            for raw in iter(proc.stderr.readline, b""):
                lines.append((time.time(), raw.decode(errors="replace")))
                log.write(raw)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                t_exit = time.time()
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise BenchFailure("%s still running after %ds" % (
                    argv[0], timeout))
            time.sleep(0.002)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        proc.stderr.close()
    return proc.returncode, t0, t_exit, usage, lines


def create_tokens(ak, idents, scenario):
    """Creates \p idents (api intent, expiring) through the fake-authentik
    that \p ak calls, 16 at a time."""
    def create(ident):
        status, _ = ak("POST", "/api/v3/core/tokens/", {
            "identifier": ident, "intent": "api",
            "description": "%s benchmark token" % scenario,
            "expiring": True})
        if status != 201:
            raise BenchFailure("%s: creating token %s: HTTP %s" % (
                scenario, ident, status))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(create, idents))


def final_stats(worker):
    st = akvtest.final_stats(worker.stderr_text())
    if st is None:
        raise BenchFailure("%s: no final stats line in its log"
                           % worker.name)
    return st


# ---------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args, rundir):
        self.args = args
        self.rundir = rundir
        self.results = {}
        self.notes = []
        self.failures = []
        self.stack = None
        self.tokens = {}  # identifier -> {"pk", "name"}
        self.keys = None  # identifier -> key (fake-authentik, at the end)
        self.mif_supported = False
        self.fresh_ak = None  # freshness's own fake-authentik
        self.recon_ak = None  # reconcile's

    # -- setup --------------------------------------------------------------

    def start(self):
        a = self.args
        ref = subprocess.run([akvtest.binary("ak2vault"), "config-reference"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=akvtest.child_env(), timeout=30)
        self.mif_supported = ("`%s`" % MIF_SETTING) in ref.stdout.decode(
            errors="replace")
        akvtest.binary("akv-bench-gen")
        # Every topic a worker reads and its dead-letter topic (dlq.enabled
        # is on by default): the real broker creates no topic on its own.
        topics = ["%s:%d" % (FILTER_TOPIC, a.partitions),
                  "%s.dlq:1" % FILTER_TOPIC]
        for i in range(len(self.sync_runs())):
            topics += ["%s:%d" % (SYNC_TOPIC % i, a.sync_partitions),
                       "%s.dlq:1" % (SYNC_TOPIC % i)]
        topics += ["%s:%d" % (FRESH_TOPIC, FRESH_PARTITIONS),
                   "%s.dlq:1" % FRESH_TOPIC,
                   "%s:1" % RECON_TOPIC, "%s.dlq:1" % RECON_TOPIC]
        t0 = time.monotonic()
        self.stack = akvtest.Stack(self.rundir, partitions=1,
                                   topic=SETUP_TOPIC, brokers=a.brokers,
                                   topics=topics, kafka=a.kafka)
        note("stack up in %.1fs: %s %s (%d broker(s)), vault %s, authentik "
             "%s" % (time.monotonic() - t0, self.kafka_name(),
                     self.stack.brokers, a.brokers, self.stack.vault_addr,
                     self.stack.authentik_url))

    def kafka_name(self):
        if self.args.kafka == "mock":
            return "mock-kafka (librdkafka's mock cluster)"
        stamps = sorted(p.name[len(".kafka-"):] for p in
                        akvtest.KAFKA_LIBS.glob(".kafka-*"))
        return "Apache Kafka %s (kafka-local, KRaft)" % (
            stamps[-1] if stamps else "?")

    def sync_runs(self):
        """The max_in_flight of each sync run; None: not set (not
        supported by this build, so both runs are the worker as is)."""
        if self.mif_supported:
            return [1, self.args.max_in_flight]
        return [None, None]

    def create_tokens(self, n):
        """n tokens through fake-authentik's API, 16 at a time; their pk
        and str() (the name events carry) go to self.tokens."""
        t0 = time.monotonic()
        idents = ["bench-%05d" % i for i in range(n)]

        def create(ident):
            status, out = self.stack.ak("POST", "/api/v3/core/tokens/", {
                "identifier": ident, "intent": "api",
                "description": "benchmark token", "expiring": True})
            if status != 201:
                raise BenchFailure("creating token %s: HTTP %s" % (ident,
                                                                  status))
            return out

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for out in pool.map(create, idents):
                ident = out["identifier"]
                name = ident
                if out.get("expiring") and out.get("expires"):
                    # str(token): "ident (expires=2026-04-22 09:12:00.412345
                    # +00:00)", Python's str() of an aware datetime
                    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"
                                 r"(?:\.(\d{1,6}))?Z$", out["expires"])
                    if m:
                        when = datetime.datetime.strptime(
                            m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
                            microsecond=int((m.group(2) or "0").ljust(6, "0")),
                            tzinfo=datetime.timezone.utc)
                        name = "%s (expires=%s)" % (ident, when)
                self.tokens[ident] = {"pk": out["pk"].replace("-", ""),
                                      "name": name}
        note("created %d tokens through fake-authentik's API in %.1fs" % (
            n, time.monotonic() - t0))

    def tokens_file(self, name, idents):
        lines = ["%s\t%s\t%s" % (self.tokens[i]["pk"], i,
                                 self.tokens[i]["name"]) for i in idents]
        return self.rundir.write(name, "\n".join(lines) + "\n")

    def live_keys(self):
        """{identifier: (key, intent)} from fake-authentik (keys are
        registered as secrets and never printed)."""
        return {i: (t.get("key"), t.get("intent"))
                for i, t in self.stack.live_tokens().items()}

    def check_vault(self, prefix, idents, kv=None):
        """Every token's current Vault version holds fake-authentik's
        current key and intent. @returns the KV dump used."""
        keys = self.live_keys()
        kv = kv if kv is not None else self.stack.vault_kv()
        missing, wrong = [], []
        for ident in idents:
            sec = kv.get("%s/%s" % (prefix, ident))
            if not sec:
                missing.append(ident)
                continue
            cur = sec.get("versions", {}).get(str(sec.get("current_version")),
                                              {})
            data = cur.get("data") or {}
            key, intent = keys.get(ident, (None, None))
            if data.get("key") != key or data.get("intent") != intent:
                wrong.append(ident)
        if missing or wrong:
            raise BenchFailure(
                "fake-vault under %s/: %d of %d tokens missing (%s), %d with "
                "another key than authentik's current one (%s)" % (
                    prefix, len(missing), len(idents),
                    ", ".join(missing[:5]) or "-", len(wrong),
                    ", ".join(wrong[:5]) or "-"))
        return kv

    def worker_extra(self, topic, prefix, mif):
        extra = {g: dict(v) for g, v in WORKER_BASE.items()}
        if self.args.kafka == "mock":
            extra = akvtest.merge_settings(extra, WORKER_MOCK)
        extra.setdefault("kafka", {})["topic"] = topic
        if self.args.kafka_property:
            extra["kafka"]["properties"] = akvtest.RawCfg(
                "(" + ", ".join("(%s, %s)" % (json.dumps(n), json.dumps(v))
                                for n, v in self.args.kafka_property) + ")")
        extra["vault"] = {"prefix": prefix}
        if mif is not None:
            extra["sync"][MIF_SETTING.split(".")[1]] = mif
        return extra

    def stats_delta(self, before):
        v = self.stack.vault_stats()
        a = self.stack.authentik_stats()
        return {"vault_writes": v["kv_writes"] - before[0]["kv_writes"],
                "vault_requests": v["requests"] - before[0]["requests"],
                "authentik_calls": a["requests"] - before[1]["requests"]}

    def stats_now(self):
        return (self.stack.vault_stats(), self.stack.authentik_stats())

    # -- filter -------------------------------------------------------------

    def filter(self):
        a = self.args
        idents = sorted(self.tokens)[:a.filter_tokens]
        gen_args = ["produce", "--brokers", self.stack.brokers,
                    "--topic", FILTER_TOPIC, "--events", a.events,
                    "--token-ratio", a.token_ratio,
                    "--manifest", self.rundir.file("filter.manifest")]
        if a.ghost_tokens:
            gen_args += ["--ghost-tokens", a.filter_tokens]
        else:
            gen_args += ["--tokens-file",
                         self.tokens_file("filter.tokens", idents)]
        if a.seed is not None:
            gen_args += ["--seed", a.seed]
        gen = run_gen(self.rundir, "gen-filter", gen_args)
        note("filter topic: %d events (%d token events), %.0f MB of JSON, "
             "%.0f bytes/event, %d partitions, low watermarks all 0; "
             "produced in %.1fs" % (gen["events"], gen["token_events"],
                        gen["bytes"] / 1e6, gen["bytes"] / gen["events"],
                        gen["partitions"], gen["seconds"]))

        # kcat and the worker take turns, each round on fresh groups (and
        # a fresh Vault prefix, so that every round writes as much): on a
        # small machine one run of either varies by a third from the next,
        # so the figures are those of the median round.
        rounds = []
        for r in range(a.filter_rounds):
            k = self.filter_kcat(gen)
            w = self.filter_worker(gen, "%s-%d" % (PREFIX_FILTER, r + 1)
                                   if a.filter_rounds > 1 else PREFIX_FILTER)
            w.update(k)
            w["ratio"] = round(w["events_per_s"] / w["ceiling_per_s"], 3)
            if w["events_per_s_after_join"] and \
                    w["ceiling_per_s_after_join"]:
                w["ratio_after_join"] = round(
                    w["events_per_s_after_join"] /
                    w["ceiling_per_s_after_join"], 3)
            note("filter round %d: ak2vault %.2fs (%d events/s), kcat %.2fs "
                 "(%d events/s), ratio %.2f" % (
                     r + 1, w["time_s"], w["events_per_s"],
                     w["ceiling_time_s"], w["ceiling_per_s"], w["ratio"]))
            rounds.append(w)
        res = dict(sorted(rounds, key=lambda x: x["ratio"])[len(rounds) // 2])
        res.update({"events": gen["events"],
                    "token_events": gen["token_events"],
                    "tokens": gen["tokens"], "partitions": gen["partitions"],
                    "bytes": gen["bytes"], "ghost_tokens": bool(a.ghost_tokens),
                    "max_in_flight": (a.max_in_flight if self.mif_supported
                                      else None),
                    "rounds": len(rounds),
                    "ratios": [x["ratio"] for x in rounds],
                    # the peak over every round
                    "rss_mb": max(x["rss_mb"] for x in rounds)})
        self.results["filter"] = res

    def filter_kcat(self, gen):
        """The ceiling: kcat as a balanced consumer of a fresh group. Not
        quiet (-q): its only stderr lines then say when the group gave it
        its partitions and when the last one reached its end, right after
        its last message; stdout, the messages, goes to /dev/null."""
        a = self.args
        group = "bench-kcat-" + uuid.uuid4().hex[:8]
        argv = ["kcat", "-b", self.stack.brokers, "-G", group,
                "-o", "beginning", "-e", FILTER_TOPIC]
        rc, k0, kexit, kusage, klines = run_reaped(
            argv, self.rundir, "kcat-ceiling", a.timeout)
        if rc != 0:
            raise BenchFailure("kcat exited %d" % rc)
        kend = [t for t, line in klines if "Reached end" in line and
                "exiting" in line]
        kassigned = [t for t, line in klines if "assigned:" in line]
        kcat_s = (kend[-1] if kend else kexit) - k0
        kcat_join = kassigned[0] - k0 if kassigned else None
        return {"ceiling_time_s": round(kcat_s, 3),
                "ceiling_exit_s": round(kexit - k0, 3),
                "ceiling_join_s": round(kcat_join, 3)
                if kcat_join is not None else None,
                "ceiling_per_s": round(gen["events"] / kcat_s),
                "ceiling_per_s_after_join": rate(gen["events"], kcat_s,
                                                 kcat_join),
                "kcat": usage_figures(kusage, gen["events"])}

    def filter_worker(self, gen, prefix):
        """One worker in a fresh group reads the filter topic to its end,
        syncing its token events under \p prefix; checked against
        fake-authentik."""
        a = self.args
        before = self.stats_now()
        group = "bench-filter-" + uuid.uuid4().hex[:8]
        t0 = time.time()
        w = self.stack.start_worker(
            "ak2vault-filter", group, exit_at_end=True,
            extra=self.worker_extra(FILTER_TOPIC, prefix,
                                    a.max_in_flight if self.mif_supported
                                    else None))
        usage = wait_worker(w, a.timeout)
        exit_s = time.time() - t0
        lines = log_lines(w)
        end = last_line_time(lines, "every assigned partition consumed")
        assigned = first_line_time(lines, "[kafka] assigned ")
        worker_s = (end - t0) if end else exit_s
        join = assigned - t0 if assigned else None
        st = final_stats(w)
        delta = self.stats_delta(before)
        if st["consumed"] != gen["events"]:
            raise BenchFailure("filter: the worker consumed %d of %d events"
                               % (st["consumed"], gen["events"]))
        if st["matched"] != gen["token_events"] or st["poison"] or \
                st["dead_lettered"]:
            raise BenchFailure(
                "filter: matched=%d (want %d) poison=%d dead_lettered=%d" % (
                    st["matched"], gen["token_events"], st["poison"],
                    st["dead_lettered"]))
        if not a.ghost_tokens:
            # Every token the topic references (all of them, unless there
            # are fewer token events than tokens).
            referenced = sorted({line.split("\t", 1)[0] for line in
                                 self.rundir.file("filter.manifest")
                                 .read_text().splitlines() if line})
            self.check_vault(prefix, referenced)
        res = {"time_s": round(worker_s, 3),
               "events_per_s": round(gen["events"] / worker_s),
               "exit_s": round(exit_s, 3),
               "join_s": round(join, 3) if join is not None else None,
               "events_per_s_after_join": rate(gen["events"], worker_s,
                                               join),
               "stats": st, "prefix": prefix}
        res.update(usage_figures(usage, gen["events"]))
        res.update(delta)
        return res

    # -- sync ---------------------------------------------------------------

    def sync_run(self, index, mif, idents, tokens_file):
        a = self.args
        topic = SYNC_TOPIC % index
        prefix = PREFIX_SYNC % index
        label = "max_in_flight=%s" % (mif if mif is not None else "default")
        group = "bench-sync-%d-%s" % (index, uuid.uuid4().hex[:8])
        before = self.stats_now()
        t0 = time.time()
        w = self.stack.start_worker(
            "ak2vault-sync-%d" % index, group,
            extra=self.worker_extra(topic, prefix, mif))
        # Only once the worker owns every partition: the latency is from
        # event to Vault, not from event to the end of the group join.
        def assigned():
            alive(w, label)
            return sum(int(m) for m in re.findall(
                r"assigned (\d+) partition", w.stderr_text())) >= \
                a.sync_partitions
        if not akvtest.wait_until(assigned, 60, 0.05):
            raise BenchFailure("sync (%s): the worker was not assigned all "
                               "%d partitions within 60s: %s" % (
                                   label, a.sync_partitions,
                                   w.stderr_tail()))
        joined_s = time.time() - t0
        manifest = self.rundir.file("sync-%d.manifest" % index)
        gen_args = ["produce", "--brokers", self.stack.brokers,
                    "--topic", topic, "--events", a.token_events,
                    "--token-events", a.token_events,
                    "--tokens-file", tokens_file, "--manifest", manifest]
        if a.seed is not None:
            gen_args += ["--seed", a.seed + 1 + index]
        gen = run_gen(self.rundir, "gen-sync-%d" % index, gen_args)

        # Done when the group's committed offsets reach the end of every
        # partition (the worker commits only the finished prefix); an empty
        # partition has nothing to commit.
        def done():
            alive(w, label)
            chk = run_gen(self.rundir, "gen-check", [
                "check", "--brokers", self.stack.brokers, "--topic", topic,
                "--group", group])
            return all(c >= h or h == lo for c, h, lo in zip(
                chk["committed"], chk["high"], chk["low"])) and chk
        chk = akvtest.wait_until(done, a.timeout, 0.5)
        if not chk:
            w.stop()
            raise BenchFailure("sync (%s): not every event committed after "
                               "%ds" % (label, a.timeout))
        w.signal(signal.SIGTERM)
        usage = wait_worker(w, 60)
        st = final_stats(w)
        delta = self.stats_delta(before)
        if chk["records"] != a.token_events or any(chk["low"]):
            raise BenchFailure("sync (%s): the topic holds %d records, low "
                               "watermarks %s" % (label, chk["records"],
                                                  chk["low"]))
        if st["consumed"] != a.token_events or st["matched"] != \
                a.token_events or st["poison"] or st["dead_lettered"]:
            raise BenchFailure(
                "sync (%s): consumed=%d matched=%d (want %d) poison=%d "
                "dead_lettered=%d" % (label, st["consumed"], st["matched"],
                                      a.token_events, st["poison"],
                                      st["dead_lettered"]))
        kv = self.check_vault(prefix, idents)
        keys = self.live_keys()

        # Latency, per token: from the timestamp of the token's LAST event
        # (its `created`, which is also the record timestamp) to the
        # created_time of the first Vault version that holds the state
        # that event announces. The tokens do not change while the
        # benchmark runs, so that state is the token's current key and
        # intent, and the version is the earliest one holding them — the
        # worker may have written it while handling an earlier event of the
        # same token (it reads the current state from authentik, and
        # coalesces events of a token that arrive while its sync runs).
        # When that version predates the last event, Vault already held
        # what the event announced: latency 0. Only last events are
        # measured: an earlier event's own state is not observable once the
        # worker has collapsed it into a later one.
        last = {}
        for line in manifest.read_text().splitlines():
            ident, created_us, _ = line.split("\t")
            last[ident] = max(last.get(ident, 0), int(created_us))
        lat = []
        clamped = 0
        write_times = []
        for ident, t_us in last.items():
            sec = kv["%s/%s" % (prefix, ident)]
            key, intent = keys[ident]
            versions = sorted(((int(v), d) for v, d in
                               sec.get("versions", {}).items()),
                              key=lambda x: x[0])
            for _, d in versions:
                write_times.append(parse_time(d["created_time"]))
            match = [parse_time(d["created_time"]) for _, d in versions
                     if (d.get("data") or {}).get("key") == key and
                     (d.get("data") or {}).get("intent") == intent]
            if not match:
                raise BenchFailure("sync (%s): no Vault version of %s holds "
                                   "its current key" % (label, ident))
            ms = (match[0] - t_us / 1e6) * 1000.0
            if ms < 0:
                clamped += 1
                ms = 0.0
            lat.append(ms)

        # The end of the run: the last sync the worker logged (or, should
        # its log not say, the last Vault write).
        lines = log_lines(w)
        end = last_line_time(lines, "[sync] token=") or max(write_times)
        start = gen["first_ts_us"] / 1e6
        elapsed = end - start
        res = {"max_in_flight": mif, "topic": topic,
               "partitions": gen["partitions"], "events": a.token_events,
               "tokens": len(idents), "bytes": gen["bytes"],
               "time_s": round(elapsed, 3),
               "events_per_s": round(a.token_events / elapsed, 1),
               "p50_ms": round(percentile(lat, 50), 1),
               "p99_ms": round(percentile(lat, 99), 1),
               "max_ms": round(max(lat), 1),
               "latency_tokens": len(lat), "latency_clamped": clamped,
               "joined_after_s": round(joined_s, 3), "stats": st}
        res.update(usage_figures(usage, a.token_events))
        res.update(delta)
        note("sync (%s): %d events in %.1fs (%.0f/s), p50 %.0f ms, p99 %.0f "
             "ms, %d Vault writes, %d authentik calls" % (
                 label, a.token_events, elapsed, a.token_events / elapsed,
                 res["p50_ms"], res["p99_ms"], delta["vault_writes"],
                 delta["authentik_calls"]))
        return res

    def sync(self):
        a = self.args
        idents = sorted(self.tokens)[:a.tokens]
        tokens_file = self.tokens_file("sync.tokens", idents)
        plan = {"latency_ms": a.latency_ms}
        self.stack.vault_faults(plan)
        self.stack.authentik_faults(plan)
        runs = []
        try:
            for i, mif in enumerate(self.sync_runs()):
                runs.append(self.sync_run(i, mif, idents, tokens_file))
        finally:
            if "replay" not in self.args.scenarios:
                self.stack.vault_faults(None)
                self.stack.authentik_faults(None)
        base, best = runs[0], runs[-1]
        self.results["sync"] = {
            "latency_ms_injected": a.latency_ms,
            "max_in_flight_supported": self.mif_supported,
            "runs": runs,
            "ratio": round(best["events_per_s"] / base["events_per_s"], 2)}

    # -- replay -------------------------------------------------------------

    def replay(self):
        a = self.args
        if "sync" not in self.results:
            self.stack.vault_faults(None)  # sync left them for replay
            self.stack.authentik_faults(None)
            raise BenchFailure("not run: it needs the sync scenario")
        index = len(self.sync_runs()) - 1
        src = self.results["sync"]["runs"][index]
        mif = src["max_in_flight"]
        before = self.stats_now()
        group = "bench-replay-" + uuid.uuid4().hex[:8]
        t0 = time.time()
        w = self.stack.start_worker(
            "ak2vault-replay", group, exit_at_end=True,
            extra=self.worker_extra(src["topic"], PREFIX_SYNC % index, mif))
        try:
            usage = wait_worker(w, a.timeout)
        finally:
            self.stack.vault_faults(None)
            self.stack.authentik_faults(None)
        exit_s = time.time() - t0
        lines = log_lines(w)
        end = last_line_time(lines, "every assigned partition consumed")
        assigned = first_line_time(lines, "[kafka] assigned ")
        elapsed = (end - t0) if end else exit_s
        join = assigned - t0 if assigned else None
        st = final_stats(w)
        delta = self.stats_delta(before)
        if st["consumed"] != a.token_events:
            raise BenchFailure("replay: consumed %d of %d events" % (
                st["consumed"], a.token_events))
        res = {"max_in_flight": mif, "topic": src["topic"],
               "events": a.token_events, "time_s": round(elapsed, 3),
               "events_per_s": round(a.token_events / elapsed, 1),
               "exit_s": round(exit_s, 3),
               "join_s": round(join, 3) if join is not None else None,
               "events_per_s_after_join": rate(a.token_events, elapsed, join),
               "stats": st}
        res.update(usage_figures(usage, a.token_events))
        res.update(delta)
        self.results["replay"] = res
        note("replay: %d events in %.1fs, %d Vault writes, %d authentik "
             "calls" % (a.token_events, elapsed, delta["vault_writes"],
                        delta["authentik_calls"]))
        if delta["vault_writes"] != 0:
            raise BenchFailure("replay: %d Vault writes (must be 0)"
                               % delta["vault_writes"])
        self.check_vault(PREFIX_SYNC % index, sorted(self.tokens)[:a.tokens])

    # -- freshness ----------------------------------------------------------

    def fresh_authentik(self):
        """A second fake-authentik, publishing to FRESH_TOPIC: the freshness
        worker reads a topic that carries only its own tokens' events, as a
        user's would. @returns its base URL."""
        p = akvtest.Proc("fake-authentik-fresh", [
            akvtest.binary("fake-authentik"), "--listen", "127.0.0.1:0",
            "--brokers", self.stack.brokers, "--topic", FRESH_TOPIC],
            self.rundir,
            env={"AUTHENTIK_API_TOKEN": self.stack.authentik_token},
            address_line=True)
        self.fresh_ak = p
        return "http://" + p.address

    def freshness(self):
        a = self.args
        n = a.fresh_changes
        url = self.fresh_authentik()
        auth = {"Authorization": "Bearer " + self.stack.authentik_token}

        def ak(method, path, body=None):
            return akvtest.http_json(method, url + path, body, headers=auth)

        # One token per change: a token changes once, so every change has
        # exactly one Vault version to look for, and no coalescing of
        # changes (the worker merges the events of a token that arrive
        # while its sync runs) can hide a late one.
        idents = ["fresh-%04d" % i for i in range(n)]
        create_tokens(ak, idents, "freshness")

        # The worker as a user runs it: the defaults, only the broker,
        # topic, group, URLs and prefix set (and --kafka-property, if given).
        group = "bench-fresh-" + uuid.uuid4().hex[:8]
        extra = {"vault": {"prefix": PREFIX_FRESH}}
        if a.kafka_property:
            extra["kafka"] = {"properties": akvtest.RawCfg(
                "(" + ", ".join("(%s, %s)" % (json.dumps(k), json.dumps(v))
                                for k, v in a.kafka_property) + ")")}
        cfg = akvtest.write_config(
            self.rundir.file("ak2vault-fresh.cfg"), self.stack.brokers, url,
            self.stack.vault_addr, group=group, topic=FRESH_TOPIC,
            extra=extra)
        w = akvtest.Proc("ak2vault-fresh", [
            akvtest.binary("ak2vault"), "run", "-c", str(cfg)], self.rundir,
            env={"VAULT_TOKEN": self.stack.vault_token,
                 "AUTHENTIK_TOKEN": self.stack.authentik_token})
        self.stack.workers.append(w)

        def check():
            return run_gen(self.rundir, "gen-check", [
                "check", "--brokers", self.stack.brokers, "--topic",
                FRESH_TOPIC, "--group", group])

        def lag_zero():
            alive(w, "freshness")
            chk = check()
            return all(c >= h or h == lo for c, h, lo in zip(
                chk["committed"], chk["high"], chk["low"])) and chk

        def fresh_kv():
            return {k[len(PREFIX_FRESH) + 1:]: v for k, v in
                    self.stack.vault_kv().items()
                    if k.startswith(PREFIX_FRESH + "/")}

        # Catch up with the tokens' creation, then idle at lag 0.
        t0 = time.monotonic()
        if not akvtest.wait_until(
                lambda: lag_zero() and len(fresh_kv()) == n, 120, 0.5):
            w.stop()
            raise BenchFailure("freshness: the worker did not reach lag 0 "
                               "with all %d tokens in Vault within 120s: %s"
                               % (n, w.stderr_tail()))
        caught_up_s = time.monotonic() - t0
        before_kv = fresh_kv()
        before_version = {i: int(before_kv[i]["current_version"])
                          for i in idents}
        plan = {"latency_ms": a.latency_ms}
        self.stack.vault_faults(plan)
        akvtest.fault_plan(url, plan)
        try:
            # Idle: its fetches now wait at the broker for data.
            time.sleep(a.fresh_idle_s)
            alive(w, "freshness")
            v0 = self.stack.vault_stats()
            ak0 = akvtest.http_json("GET", url + "/_fake/stats")[1]
            calls = [None] * n

            def change(i):
                key = "fresh" + akvtest.random_secret(40)
                akvtest.SECRETS.add("token key", key)
                start = time.time()
                status, _ = ak("POST", "/api/v3/core/tokens/%s/set_key/"
                               % idents[i], {"key": key})
                calls[i] = (key, start, time.time(), status)

            # One change every interval, on a schedule (a slow call does
            # not push the next one back): the calls run on a small pool.
            interval = a.fresh_interval_ms / 1000.0
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                futs = []
                s0 = time.monotonic()
                for i in range(n):
                    delay = s0 + i * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futs.append(pool.submit(change, i))
                for f in futs:
                    f.result()
            bad = [idents[i] for i in range(n) if calls[i][3] != 204]
            if bad:
                raise BenchFailure("freshness: set_key refused for %d "
                                   "token(s) (%s)" % (len(bad),
                                                      ", ".join(bad[:5])))

            # Only now look at Vault (reading its whole store while the
            # changes run would load the machine being measured).
            def landed():
                alive(w, "freshness")
                kv = fresh_kv()
                return all(((kv.get(i, {}).get("versions", {}).get(
                    str(kv[i].get("current_version")), {}).get("data")
                    or {}).get("key") == calls[j][0])
                    for j, i in enumerate(idents)) and kv
            time.sleep(1.0)
            kv = akvtest.wait_until(landed, 60, 0.5)
            if not kv:
                raise BenchFailure("freshness: not every change reached "
                                   "Vault within 60s of the last one")
            if not akvtest.wait_until(lag_zero, 30, 0.5):
                raise BenchFailure("freshness: the worker did not commit "
                                   "every event within 30s")
            v1 = self.stack.vault_stats()
            ak1 = akvtest.http_json("GET", url + "/_fake/stats")[1]
        finally:
            self.stack.vault_faults(None)
            akvtest.fault_plan(url, None)
        w.signal(signal.SIGTERM)
        usage = wait_worker(w, 60)
        st = final_stats(w)
        chk = check()
        if st["consumed"] != chk["records"] or st["poison"] or \
                st["dead_lettered"]:
            raise BenchFailure(
                "freshness: consumed=%d of %d records, poison=%d, "
                "dead_lettered=%d" % (st["consumed"], chk["records"],
                                      st["poison"], st["dead_lettered"]))

        # Each change: exactly one new Vault version, the next number,
        # holding the key set (and fake-authentik's live key); the
        # latency is from the start of the API call to that version's
        # created_time (fake-vault: CLOCK_REALTIME, nanoseconds; this
        # process: time.time(), the same clock).
        status, live = akvtest.http_json("GET", url + "/_fake/tokens")
        if status != 200:
            raise BenchFailure("freshness: GET /_fake/tokens: %s" % status)
        live = {t["identifier"]: t for t in live["tokens"]}
        akvtest.SECRETS.add_many("token key", (t.get("key") for t in
                                               live.values()))
        lat, after_answer, api_ms, wrong = [], [], [], []
        last_write = 0.0
        for j, ident in enumerate(idents):
            key, start, answered, _ = calls[j]
            sec = kv[ident]
            want = before_version[ident] + 1
            holding = sorted(int(v) for v, d in sec["versions"].items()
                             if (d.get("data") or {}) ==
                             {"key": key, "intent": "api"})
            if live[ident].get("key") != key or holding != [want] or \
                    int(sec["current_version"]) != want:
                wrong.append(ident)
                continue
            created = parse_time(sec["versions"][str(want)]["created_time"])
            last_write = max(last_write, created)
            lat.append((created - start) * 1000.0)
            after_answer.append((created - answered) * 1000.0)
            api_ms.append((answered - start) * 1000.0)
        if wrong:
            raise BenchFailure(
                "freshness: %d of %d changes not exactly one new Vault "
                "version (the next number) holding the key set (%s)" % (
                    len(wrong), n, ", ".join(wrong[:5])))
        first = min(c[1] for c in calls)
        res = {"changes": n, "tokens": n, "partitions": FRESH_PARTITIONS,
               "interval_ms": a.fresh_interval_ms,
               "latency_ms_injected": a.latency_ms,
               "idle_s": a.fresh_idle_s,
               "caught_up_s": round(caught_up_s, 1),
               "records": chk["records"],
               "time_s": round(last_write - first, 3),
               "p50_ms": round(percentile(lat, 50), 1),
               "p99_ms": round(percentile(lat, 99), 1),
               "max_ms": round(max(lat), 1),
               "min_ms": round(min(lat), 1),
               "after_answer_p50_ms": round(percentile(after_answer, 50), 1),
               "after_answer_p99_ms": round(percentile(after_answer, 99), 1),
               "api_call_p50_ms": round(percentile(api_ms, 50), 1),
               "api_call_max_ms": round(max(api_ms), 1),
               "vault_writes": v1["kv_writes"] - v0["kv_writes"],
               "vault_requests": v1["requests"] - v0["requests"],
               # the worker's calls: the set_key calls are this script's
               "authentik_calls": ak1["requests"] - ak0["requests"] - n,
               "stats": st}
        res.update(usage_figures(usage, st["consumed"]))
        self.results["freshness"] = res
        note("freshness: %d changes, p50 %.0f ms, p99 %.0f ms, max %.0f ms "
             "from the API call to the Vault version (set_key answered in "
             "%.0f ms at p50), %d Vault writes" % (
                 n, res["p50_ms"], res["p99_ms"], res["max_ms"],
                 res["api_call_p50_ms"], res["vault_writes"]))
        if res["vault_writes"] != n:
            raise BenchFailure("freshness: %d Vault writes for %d changes" %
                               (res["vault_writes"], n))

    # -- reconcile ----------------------------------------------------------

    def recon_authentik(self):
        """A third fake-authentik, publishing to RECON_TOPIC, with every
        event dropped. @returns a function calling its API."""
        p = akvtest.Proc("fake-authentik-recon", [
            akvtest.binary("fake-authentik"), "--listen", "127.0.0.1:0",
            "--brokers", self.stack.brokers, "--topic", RECON_TOPIC],
            self.rundir,
            env={"AUTHENTIK_API_TOKEN": self.stack.authentik_token},
            address_line=True)
        self.recon_ak = p
        url = "http://" + p.address
        auth = {"Authorization": "Bearer " + self.stack.authentik_token}

        def ak(method, path, body=None):
            return akvtest.http_json(method, url + path, body, headers=auth,
                                     timeout=60)
        status, _ = ak("POST", "/_fake/faults", {"drop_events": True})
        if status != 200:
            raise BenchFailure("reconcile: drop_events refused: %s" % status)
        return url, ak

    def recon_worker(self, url):
        a = self.args
        port = akvtest.free_port()
        extra = self.worker_extra(RECON_TOPIC, PREFIX_RECON, None)
        extra["vault"]["on_delete"] = "soft-delete"
        extra["reconcile"] = {"on_start": True,
                              "interval_ms": a.recon_gap_ms,
                              "max_requests_per_second": 100000}
        extra["metrics"] = {"listen": "127.0.0.1:%d" % port}
        cfg = akvtest.write_config(
            self.rundir.file("ak2vault-recon.cfg"), self.stack.brokers, url,
            self.stack.vault_addr, group="bench-recon-" + uuid.uuid4().hex[:8],
            topic=RECON_TOPIC, extra=extra)
        w = akvtest.Proc("ak2vault-recon", [
            akvtest.binary("ak2vault"), "run", "-c", str(cfg)], self.rundir,
            env={"VAULT_TOKEN": self.stack.vault_token,
                 "AUTHENTIK_TOKEN": self.stack.authentik_token})
        self.stack.workers.append(w)
        return w, port

    @staticmethod
    def recon_metrics(port):
        status, _, body = akvtest.http_get_text(
            "http://127.0.0.1:%d/metrics" % port, timeout=10)
        if status != 200:
            raise BenchFailure("reconcile: /metrics answered %s" % status)
        out = {}
        for fam in akvtest.parse_exposition(body).values():
            for name, labels, value in fam["samples"]:
                if name.startswith("ak2vault_reconcile_"):
                    out[name + "".join("{%s}" % v for v in labels.values())] \
                        = value
        return out

    def recon_run(self, w, port, ak, label):
        """Waits for the worker's next reconcile to end; @returns its
        figures (counters read between runs)."""
        a = self.args
        runs = "ak2vault_reconcile_runs_total{ok}"
        before_m = self.recon_metrics(port)
        before_v = self.stack.vault_stats()
        before_a = ak("GET", "/_fake/stats")[1]
        done = akvtest.wait_until(lambda: alive(w, "reconcile") or (
            self.recon_metrics(port).get(runs, 0) > before_m.get(runs, 0)),
            a.timeout, 0.1)
        if not done:
            raise BenchFailure("reconcile: %s did not end within %ds" % (
                label, a.timeout))
        m = self.recon_metrics(port)
        v = self.stack.vault_stats()
        au = ak("GET", "/_fake/stats")[1]
        return {"run": label, "time_s": round(
                    m["ak2vault_reconcile_duration_seconds"], 3),
                "identifiers": int(m["ak2vault_reconcile_tokens"]),
                "authentik_calls": au["requests"] - before_a["requests"],
                "vault_data_reads": v["kv_reads"] - before_v["kv_reads"],
                "vault_metadata_reads":
                    v["metadata_reads"] - before_v["metadata_reads"],
                "vault_writes":
                    v["kv_write_requests"] - before_v["kv_write_requests"],
                "vault_requests": v["requests"] - before_v["requests"],
                "metrics": m,
                "metrics_before": before_m}

    def recon_changes(self, ak, idents):
        """1% rotated and 1% deleted in authentik (events dropped), 1% of
        the secrets soft-deleted in Vault by hand; @returns the three
        lists."""
        k = max(1, len(idents) // 100)
        rotated, deleted, hand = idents[0:k], idents[k:2 * k], \
            idents[2 * k:3 * k]
        keys = {}

        def rotate(ident):
            key = "recon" + akvtest.random_secret(40)
            akvtest.SECRETS.add("token key", key)
            keys[ident] = key
            return ak("POST", "/api/v3/core/tokens/%s/set_key/" % ident,
                      {"key": key})[0] == 204

        def delete(ident):
            return ak("DELETE", "/api/v3/core/tokens/%s/" % ident)[0] == 204

        def vault_delete(ident):
            return akvtest.http_json(
                "DELETE", "%s/v1/kv/data/%s/%s" % (
                    self.stack.vault_addr, PREFIX_RECON, ident),
                headers={"X-Vault-Token": self.stack.vault_token})[0] == 204
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            ok = list(pool.map(rotate, rotated)) + \
                list(pool.map(delete, deleted)) + \
                list(pool.map(vault_delete, hand))
        if not all(ok):
            raise BenchFailure("reconcile: %d of %d changes refused" % (
                ok.count(False), len(ok)))
        return rotated, deleted, hand, keys

    def recon_check(self, ak, rotated, deleted, hand, keys):
        """Every change found and repaired: rotated keys and hand-deleted
        secrets live in Vault with authentik's key, deleted tokens'
        secrets soft-deleted."""
        status, live = ak("GET", "/_fake/tokens")
        if status != 200:
            raise BenchFailure("reconcile: GET /_fake/tokens: %s" % status)
        live = {t["identifier"]: t for t in live["tokens"]}
        akvtest.SECRETS.add_many("token key", (t.get("key") for t in
                                               live.values()))
        kv = {k[len(PREFIX_RECON) + 1:]: v for k, v in
              self.stack.vault_kv().items()
              if k.startswith(PREFIX_RECON + "/")}
        wrong = []
        for ident, tok in live.items():
            sec = kv.get(ident, {})
            cur = sec.get("versions", {}).get(str(sec.get("current_version")),
                                              {})
            if cur.get("deletion_time") or cur.get("destroyed") or \
                    cur.get("data") != {"key": tok["key"], "intent": "api"}:
                wrong.append(ident)
        for ident in deleted:
            sec = kv.get(ident, {})
            cur = sec.get("versions", {}).get(str(sec.get("current_version")),
                                              {})
            if not cur.get("deletion_time"):
                wrong.append(ident)
        if any(live.get(i, {}).get("key") != keys[i] for i in rotated):
            raise BenchFailure("reconcile: fake-authentik lost a rotation")
        if wrong:
            raise BenchFailure(
                "reconcile: %d token(s) not as authentik has them after "
                "run 3 (%s)" % (len(wrong), ", ".join(sorted(wrong)[:5])))
        return len(live)

    def reconcile(self):
        a = self.args
        url, ak = self.recon_authentik()
        idents = ["recon-%05d" % i for i in range(a.recon_tokens)]
        t0 = time.monotonic()
        create_tokens(ak, idents, "reconcile")
        note("reconcile: %d tokens created with their events dropped in "
             "%.1fs" % (len(idents), time.monotonic() - t0))
        w, port = self.recon_worker(url)
        runs = []
        try:
            def listening():
                alive(w, "reconcile")
                try:
                    return self.recon_metrics(port)
                except (OSError, BenchFailure):
                    return None
            if not akvtest.wait_until(listening, 30, 0.1):
                raise BenchFailure("reconcile: no /metrics within 30s")
            runs.append(self.recon_run(w, port, ak, "backfill"))
            runs.append(self.recon_run(w, port, ak, "unchanged"))
            changes = self.recon_changes(ak, idents)
            if self.recon_metrics(port).get("ak2vault_reconcile_running"):
                raise BenchFailure(
                    "reconcile: run 3 began before the changes were made; "
                    "raise --recon-gap-ms")
            runs.append(self.recon_run(w, port, ak, "3% changed"))
        finally:
            w.signal(signal.SIGTERM)
        usage = wait_worker(w, 60)
        self.recon_check(ak, *changes)
        last, prev = runs[2]["metrics"], runs[2]["metrics_before"]
        found = {kind: int(last.get("ak2vault_reconcile_drift_total{%s}" %
                                    kind, 0) -
                           prev.get("ak2vault_reconcile_drift_total{%s}" %
                                    kind, 0))
                 for kind in ("stale_key", "orphan", "missing")}
        k = len(changes[0])
        if found != {"stale_key": k, "orphan": k, "missing": k}:
            raise BenchFailure("reconcile: run 3 found %s, wanted %d of "
                               "each" % (found, k))
        warm = runs[1]
        if warm["vault_writes"] or warm["vault_data_reads"] or \
                warm["vault_metadata_reads"] > warm["identifiers"]:
            raise BenchFailure(
                "reconcile: the unchanged estate cost %d write(s), %d data "
                "read(s), %d metadata reads for %d identifiers" % (
                    warm["vault_writes"], warm["vault_data_reads"],
                    warm["vault_metadata_reads"], warm["identifiers"]))
        for r in runs:
            del r["metrics"], r["metrics_before"]
        res = {"tokens": len(idents), "changed_each_kind": k,
               "found": found, "gap_ms": a.recon_gap_ms, "runs": runs}
        res.update(usage_figures(usage, 0))
        self.results["reconcile"] = res
        note("reconcile: %s" % "; ".join(
            "%s %.1fs, %d authentik calls, %d data reads, %d metadata "
            "reads, %d writes" % (
                r["run"], r["time_s"], r["authentik_calls"],
                r["vault_data_reads"], r["vault_metadata_reads"],
                r["vault_writes"]) for r in runs))

    # -- output -------------------------------------------------------------

    def table(self):
        a = self.args
        cols = [("scenario", "<"), ("events", ">"), ("time_s", ">"),
                ("events/s", ">"), ("ceiling/s", ">"), ("ratio", ">"),
                ("rss_MB", ">"), ("cpu_s/1k", ">"), ("p50_ms", ">"),
                ("p99_ms", ">"), ("max_ms", ">"), ("vault_writes", ">"),
                ("authentik_calls", ">")]
        rows = []
        f = self.results.get("filter")
        if f:
            rows.append(["filter", f["events"], fmt(f["time_s"], 2),
                         fmt(f["events_per_s"]), fmt(f["ceiling_per_s"]),
                         fmt(f["ratio"], 2), fmt(f["rss_mb"]),
                         fmt(f["cpu_s_per_1k"], 4), "-", "-", "-",
                         f["vault_writes"], f["authentik_calls"]])
        s = self.results.get("sync")
        if s:
            for i, r in enumerate(s["runs"]):
                if s["max_in_flight_supported"]:
                    name = "sync mif=%d" % r["max_in_flight"]
                else:
                    name = "sync run %d" % (i + 1)
                last = i == len(s["runs"]) - 1
                rows.append([name, r["events"], fmt(r["time_s"], 2),
                             fmt(r["events_per_s"]), "-",
                             fmt(s["ratio"], 2) if last and
                             s["max_in_flight_supported"] else
                             ("n/a" if last else "-"),
                             fmt(r["rss_mb"]), fmt(r["cpu_s_per_1k"], 4),
                             fmt(r["p50_ms"], 0), fmt(r["p99_ms"], 0),
                             fmt(r.get("max_ms"), 0),
                             r["vault_writes"], r["authentik_calls"]])
        r = self.results.get("replay")
        if r:
            rows.append(["replay", r["events"], fmt(r["time_s"], 2),
                         fmt(r["events_per_s"]), "-", "-", fmt(r["rss_mb"]),
                         fmt(r["cpu_s_per_1k"], 4), "-", "-", "-",
                         r["vault_writes"], r["authentik_calls"]])
        r = self.results.get("freshness")
        if r:
            rows.append(["freshness", r["changes"], fmt(r["time_s"], 2),
                         "-", "-", "-", fmt(r["rss_mb"]),
                         fmt(r["cpu_s_per_1k"], 4), fmt(r["p50_ms"], 0),
                         fmt(r["p99_ms"], 0), fmt(r["max_ms"], 0),
                         r["vault_writes"], r["authentik_calls"]])
        r = self.results.get("reconcile")
        if r:
            for run in r["runs"]:
                rows.append(["reconcile %s" % run["run"], run["identifiers"],
                             fmt(run["time_s"], 2), "-", "-", "-",
                             fmt(r["rss_mb"]), "-", "-", "-", "-",
                             run["vault_writes"], run["authentik_calls"]])
        widths = [max(len(c[0]), *(len(str(row[i])) for row in rows))
                  if rows else len(c[0]) for i, c in enumerate(cols)]

        def line(cells):
            return "  ".join(str(v).ljust(w) if al == "<" else
                             str(v).rjust(w) for v, w, (_, al) in
                             zip(cells, widths, cols)).rstrip()
        say("")
        say(line([c[0] for c in cols]))
        for row in rows:
            say(line(row))
        say("")
        for n in self.footnotes():
            say(n)

    def footnotes(self):
        a = self.args
        out = ["kafka: %s, %d broker(s)%s." % (
            self.kafka_name(), a.brokers,
            "" if a.kafka == "real" else
            "; its fetch waits fetch.wait.max.ms (500 ms by default) even "
            "when data arrives")]
        f = self.results.get("filter")
        if f:
            out.append(
                "filter: %d authentik events (%d token events, %.2f%%) in %d "
                "partitions, %.0f MB of JSON (%.0f bytes/event; lz4 level 3 "
                "on the wire); "
                "ceiling = `kcat -b ... -G <fresh group> -o beginning -e "
                "TOPIC > /dev/null` on the same topic (not -q: its stderr "
                "marks assignment and end); both timed from process start "
                "to the last message (ak2vault: \"every assigned partition "
                "consumed\" in its log; kcat: \"Reached end ... exiting\"), "
                "group join included; ratio = ak2vault / kcat. %s"
                % (f["events"], f["token_events"],
                   100.0 * f["token_events"] / f["events"], f["partitions"],
                   f["bytes"] / 1e6, f["bytes"] / f["events"],
                   "%d rounds, kcat and ak2vault taking turns, fresh groups "
                   "each: the median round's figures (ratios %s), peak RSS "
                   "over all rounds." % (f["rounds"], ", ".join(
                       "%.2f" % r for r in f["ratios"]))
                   if f["rounds"] > 1 else "One round."))
            if f.get("ratio_after_join"):
                out.append(
                    "filter: the group join took %.1fs (ak2vault) and %.1fs "
                    "(kcat); after it: ak2vault %d events/s, kcat %d "
                    "events/s, ratio %.2f." % (
                        f["join_s"], f["ceiling_join_s"],
                        f["events_per_s_after_join"],
                        f["ceiling_per_s_after_join"],
                        f["ratio_after_join"]))
            if f["ghost_tokens"]:
                out.append(
                    "filter: the token events reference %d tokens that do "
                    "NOT exist in fake-authentik (--ghost-tokens): every "
                    "one costs the worker a 404." % f["tokens"])
            else:
                out.append(
                    "filter: the token events reference %d tokens created "
                    "through fake-authentik's API (no latency injected), "
                    "synced to Vault under %s/%s and checked." % (
                        f["tokens"], f["prefix"],
                        " (a prefix of its own in each round)"
                        if f["rounds"] > 1 else ""))
        s = self.results.get("sync")
        if s:
            r0 = s["runs"][0]
            mode = ("ratio = events/s with max_in_flight %d over events/s "
                    "with 1" % s["runs"][-1]["max_in_flight"]
                    if s["max_in_flight_supported"] else
                    "max_in_flight not supported by this build: both runs "
                    "are the worker as is, no ratio")
            out.append(
                "sync: %d token events over %d tokens, %d partitions, each "
                "run on its own topic and Vault prefix, produced as one burst "
                "once the worker owned every partition; %d ms latency "
                "injected on every request to fake-vault and "
                "fake-authentik; %s." % (
                    r0["events"], r0["tokens"], r0["partitions"],
                    s["latency_ms_injected"], mode))
            out.append(
                "sync: time from the first event's timestamp to the last sync "
                "the worker logged; p50/p99 over the %d tokens, from the "
                "timestamp of each token's last event to the created_time of "
                "the first Vault version holding its current key (counted "
                "as 0 when that version is older than the event: %s)." % (
                    r0["latency_tokens"],
                    ", ".join("%s token(s) in run %d" % (
                        r["latency_clamped"], i + 1)
                        for i, r in enumerate(s["runs"]))))
        r = self.results.get("replay")
        if r:
            out.append(
                "replay: the %s topic again, from the earliest offset, by a "
                "new group%s, same latency, fresh worker (empty cache); "
                "time from start to the last message, %s of it the group "
                "join (%s events/s after it)." % (
                    r["topic"], " with max_in_flight %d" % r["max_in_flight"]
                    if r["max_in_flight"] else "",
                    "%.1fs" % r["join_s"] if r["join_s"] is not None
                    else "?", r["events_per_s_after_join"] or "?"))
        r = self.results.get("freshness")
        if r:
            out.append(
                "freshness: a worker with the default configuration, idle "
                "at lag 0 for %ss on its own %d-partition topic (fed by a "
                "second fake-authentik), then %d set_key calls through "
                "fake-authentik's API, one every %d ms, each on a token of "
                "its own; %d ms latency injected on every request to "
                "fake-vault and that fake-authentik; p50/p99/max from the "
                "start of the API call to the created_time of the Vault "
                "version holding the new key (fake-vault: nanoseconds, the "
                "same clock), each checked to be exactly one new version. "
                "The call itself took %s ms at p50 (its 5 ms plus the "
                "event's acks=all publish); from its answer to Vault: p50 "
                "%s ms, p99 %s ms; time_s = first call to last write." % (
                    fmt(r["idle_s"]), r["partitions"], r["changes"],
                    r["interval_ms"], r["latency_ms_injected"],
                    fmt(r["api_call_p50_ms"], 0),
                    fmt(r["after_answer_p50_ms"], 0),
                    fmt(r["after_answer_p99_ms"], 0)))
        r = self.results.get("reconcile")
        if r:
            out.append(
                "reconcile: %d tokens whose events never reached the topic, "
                "one worker (reconcile.on_start, a run every %d ms after the "
                "last, one token at a time, pace unlimited); events = "
                "identifiers visited; before the third run %d tokens were "
                "rotated and %d deleted in authentik and %d secrets "
                "soft-deleted by hand in Vault; found: %s; all repaired. "
                "Vault reads per run (data/metadata): %s. rss_MB is the "
                "worker's peak over the three runs." % (
                    r["tokens"], r["gap_ms"], r["changed_each_kind"],
                    r["changed_each_kind"], r["changed_each_kind"],
                    ", ".join("%s %d" % kv for kv in sorted(
                        r["found"].items())),
                    ", ".join("%s %d/%d" % (
                        x["run"], x["vault_data_reads"],
                        x["vault_metadata_reads"]) for x in r["runs"])))
        if a.kafka_property:
            out.append("worker kafka.properties: %s." % ", ".join(
                "%s=%s" % nv for nv in a.kafka_property))
        out.append("rss_MB = peak RSS of the worker, cpu_s/1k = its user+sys "
                   "CPU seconds per 1,000 events (wait4 rusage); %d CPU(s)."
                   % (os.cpu_count() or 0))
        out.append(self.targets())
        return out

    def targets(self):
        """One line: the targets a full run must meet (informative:
        they do not fail the benchmark: a loaded machine misses them)."""
        real = self.args.kafka == "real"
        parts = []
        f = self.results.get("filter")
        if f and real:
            parts.append("filter ratio >= 0.9: %s (%.2f)" % (
                "yes" if f["ratio"] >= 0.9 else "NO", f["ratio"]))
        r = self.results.get("freshness")
        if r and real:
            parts.append("freshness p99 <= 50 ms: %s (%s ms)" % (
                "yes" if r["p99_ms"] <= 50 else "NO", fmt(r["p99_ms"], 0)))
        rss = [("filter", f)] + [("sync run %d" % (i + 1), x) for i, x in
                                 enumerate((self.results.get("sync") or
                                            {}).get("runs", []))] + \
            [("replay", self.results.get("replay")), ("freshness", r),
             ("reconcile", self.results.get("reconcile"))]
        over = ["%s %.1f MB" % (n, x["rss_mb"]) for n, x in rss
                if x and x["rss_mb"] > 64]
        parts.append("peak RSS <= 64 MB: %s" % (
            "NO (%s)" % ", ".join(over) if over else "yes"))
        return "targets%s: %s." % (
            "" if real else " (the ratio and freshness ones are for the "
            "real broker)", "; ".join(parts))

    def write_json(self, path, ok):
        doc = {"version": 1,
               "date": datetime.datetime.now(datetime.timezone.utc)
               .strftime("%Y-%m-%dT%H:%M:%SZ"),
               "full": self.args.full, "ok": ok,
               "failures": self.failures, "cpus": os.cpu_count(),
               "params": {k: v for k, v in vars(self.args).items()
                          if k not in ("json",)},
               "scenarios": self.results, "notes": self.footnotes()}
        Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) +
                              "\n")


def property_arg(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("want NAME=VALUE: %r" % text)
    return (name, value)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="ak2vault benchmark: filter, sync, replay and "
                    "freshness scenarios against the loopback stand-ins; "
                    "prints one table.")
    p.add_argument("--full", action="store_true",
                   help="the full sizes: 1,000,000 filter events, 20,000 "
                        "token events over 5,000 tokens")
    p.add_argument("--kafka", choices=("mock", "real"),
                   default=os.environ.get("AKV_KAFKA") or "mock",
                   help="the broker: mock (mock-kafka) or real (Apache "
                        "Kafka from `make kafka`); default $AKV_KAFKA, else "
                        "mock")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of %s (replay needs sync)"
                   % ",".join(SCENARIOS))
    p.add_argument("--events", type=int,
                   help="filter events (default 100000, full 1000000)")
    p.add_argument("--token-ratio", type=float, default=0.005,
                   help="share of token events in the filter topic")
    p.add_argument("--filter-tokens", type=int,
                   help="tokens the filter topic's token events reference "
                        "(default 200, full 500)")
    p.add_argument("--filter-rounds", type=int,
                   help="kcat and worker runs of the filter, taking turns; "
                   "the median round is reported (default 3 with --full, "
                   "else 1)")
    p.add_argument("--ghost-tokens", action="store_true",
                   help="make the filter topic's tokens not exist in "
                        "fake-authentik (every token event is a 404)")
    p.add_argument("--partitions", type=int,
                   help="filter topic partitions (default: real broker "
                        "%d; mock %d events each, at least 8, a multiple "
                        "of 8)" % (REAL_FILTER_PARTITIONS,
                                   EVENTS_PER_PARTITION))
    p.add_argument("--token-events", type=int,
                   help="sync events (default 2000, full 20000)")
    p.add_argument("--tokens", type=int,
                   help="sync tokens (default 500, full 5000)")
    p.add_argument("--sync-partitions", type=int, default=8,
                   help="partitions of each sync topic")
    p.add_argument("--latency-ms", type=int, default=5,
                   help="latency injected on every fake request in sync, "
                        "replay and freshness")
    p.add_argument("--fresh-changes", type=int, default=100,
                   help="freshness: key changes (one token each)")
    p.add_argument("--fresh-interval-ms", type=int, default=100,
                   help="freshness: milliseconds between two changes")
    p.add_argument("--fresh-idle-s", type=float, default=2.0,
                   help="freshness: seconds the worker idles at lag 0 "
                        "before the first change")
    p.add_argument("--recon-tokens", type=int,
                   help="tokens of the reconcile scenario (10000 with "
                   "--full, else 1000)")
    p.add_argument("--recon-gap-ms", type=int, default=4000,
                   help="reconcile.interval_ms of the reconcile scenario: "
                   "the pause between its runs, when the changes are made")
    p.add_argument("--max-in-flight", type=int, default=64,
                   help="sync.max_in_flight of the second sync run (and of "
                        "filter and replay), when the build has it")
    p.add_argument("--brokers", type=int, default=1,
                   help="Kafka brokers (real: 1 or 3)")
    p.add_argument("--kafka-property", metavar="NAME=VALUE", action="append",
                   default=[], type=property_arg,
                   help="a librdkafka property for every worker "
                        "(kafka.properties), e.g. "
                        "queued.max.messages.kbytes=1000000; repeatable")
    p.add_argument("--seed", type=int, help="akv-bench-gen seed")
    p.add_argument("--timeout", type=int, default=1800,
                   help="per worker run, seconds")
    p.add_argument("--json", help="also write the figures to this file")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    bad = [s for s in a.scenarios if s not in SCENARIOS]
    if bad:
        p.error("unknown scenario(s): %s" % ", ".join(bad))
    if "replay" in a.scenarios and "sync" not in a.scenarios:
        p.error("replay needs sync")
    if a.events is None:
        a.events = 1000000 if a.full else 100000
    if a.filter_tokens is None:
        a.filter_tokens = 500 if a.full else 200
    if a.filter_rounds is None:
        a.filter_rounds = 3 if a.full else 1
    if a.token_events is None:
        a.token_events = 20000 if a.full else 2000
    if a.tokens is None:
        a.tokens = 5000 if a.full else 500
    if a.recon_tokens is None:
        a.recon_tokens = 10000 if a.full else 1000
    if a.partitions is None and a.kafka == "real":
        a.partitions = REAL_FILTER_PARTITIONS
    elif a.partitions is None:
        need = -(-a.events // EVENTS_PER_PARTITION)
        a.partitions = max(8, -(-need // 8) * 8)
    for name in ("events", "filter_tokens", "token_events", "tokens",
                 "partitions", "sync_partitions", "max_in_flight", "brokers",
                 "filter_rounds", "fresh_changes", "fresh_interval_ms",
                 "recon_tokens", "recon_gap_ms"):
        if getattr(a, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    if a.token_events < a.tokens:
        p.error("--token-events must be at least --tokens (every token is "
                "referenced)")
    return a


def main(argv):
    args = parse_args(argv)
    akvtest.install_signal_handlers()
    rundir = akvtest.RunDir("bench")
    bench = Bench(args, rundir)
    t0 = time.monotonic()
    ok = False
    try:
        say("# ak2vault benchmark (%s); logs in %s (kept on failure or "
            "with AKV_KEEP=1)" % (
                "full" if args.full else "small; --full for the full sizes",
                rundir.path))
        bench.start()
        need = 0
        if "filter" in args.scenarios and not args.ghost_tokens:
            need = args.filter_tokens
        if "sync" in args.scenarios:
            need = max(need, args.tokens)
        if need:
            bench.create_tokens(need)
        for name in SCENARIOS:
            if name not in args.scenarios:
                continue
            try:
                getattr(bench, name)()
            except (BenchFailure, AssertionError) as e:
                bench.failures.append("%s: %s" % (name, akvtest.reason_of(e)))
                note("FAILED %s: %s" % (name, akvtest.reason_of(e)))
        ok = not bench.failures and all(
            s in bench.results for s in args.scenarios)
    except (KeyboardInterrupt, akvtest.Interrupted):
        bench.failures.append("interrupted")
    except Exception as e:  # noqa: BLE001
        bench.failures.append(akvtest.reason_of(e))
        note("FAILED: %s" % akvtest.reason_of(e))
    finally:
        if bench.stack is not None:
            rcs = bench.stack.stop()
            for extra in (bench.fresh_ak, bench.recon_ak):
                if extra is not None:
                    rcs[extra.name] = extra.stop()
            bad = {n: rc for n, rc in rcs.items() if rc not in (0, None)
                   and n in ("mock-kafka", "kafka-local", "fake-vault",
                             "fake-authentik", "fake-authentik-fresh",
                             "fake-authentik-recon")}
            if bad:
                bench.failures.append("stand-ins exited %s" % bad)
                ok = False
        if bench.results:
            bench.table()
        if args.json:
            bench.write_json(args.json, ok)
            note("figures written to %s" % args.json)
        for f in bench.failures:
            say("FAILED: %s" % f)
        note("benchmark took %.0fs" % (time.monotonic() - t0))
        akvtest.stop_all()
        rundir.cleanup(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
