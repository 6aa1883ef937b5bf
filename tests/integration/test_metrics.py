#!/usr/bin/python3
"""The worker's HTTP endpoint: /metrics, /livez, /readyz, and signals.

One stack (mock-kafka with 2 partitions, fake-vault, fake-authentik); the
tests run in order and share it:

  1. a worker with metrics.listen answers /livez, /readyz (once assigned),
     refuses other methods and paths;
  2. after tokens are created, changed and touched without a change, a
     scrape passes a strict exposition-format check and its counters agree
     with what the run did: events consumed (= the topic's end offsets),
     matched, written (= Vault versions), unchanged (= the sync log), Vault
     requests (= what fake-vault saw), latency observations;
  3. fake-vault answers slowly: lag in messages and seconds grows on
     /metrics, /readyz turns unready once the partition is stalled for
     metrics.stall_timeout_ms, and both recover when Vault is fast again;
  4. fake-vault sealed (503): ak2vault_upstream_up{upstream="vault"} is 0
     and /readyz says Vault is unreachable, then recovers;
  5. the final stats line agrees with the last scrape;
  6. a new worker reports the group's committed offsets of its idle
     partitions; a second SIGTERM exits at once while syncs hang, and
     commits nothing past the unfinished events; a new worker then
     converges.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import depends, note, sample  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, worker=None, port=None,
                    tokens=[], last=None)
GROUP = "ak2vault-metrics"
TOPIC = akvtest.TOPIC
STALL_MS = 3000


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


def worker_cfg(port, **more):
    cfg = {
        "kafka": dict(akvtest.MOCK_GROUP_WORKAROUND.get("kafka", {})),
        "sync": {"retry_initial_ms": 50, "retry_max_ms": 500},
        "vault": {"timeout_ms": 60000},
        "metrics": {"listen": "127.0.0.1:%d" % port, "lag_interval_ms": 300,
                    "stall_timeout_ms": STALL_MS},
    }
    for group, entries in more.items():
        cfg.setdefault(group, {}).update(entries)
    return cfg


def url(path, port=None):
    return "http://127.0.0.1:%d%s" % (port or S.port, path)


def scrape(port=None):
    status, ctype, body = akvtest.http_get_text(url("/metrics", port))
    assert status == 200, "/metrics answered %s" % status
    assert ctype.startswith("text/plain; version=0.0.4"), \
        "/metrics content type %r" % ctype
    fams = akvtest.parse_exposition(body)
    S.last = fams
    return fams


def total(fams, name, **labels):
    """Sum over the series of \\p name whose labels include \\p labels."""
    fam = fams.get(name)
    if fam is None:
        return None
    want = {k: str(v) for k, v in labels.items()}
    return sum(v for s, lab, v in fam["samples"]
               if s == name and all(lab.get(k) == x for k, x in want.items()))


def per_partition(fams, name):
    return {int(lab["partition"]): v for s, lab, v in fams[name]["samples"]
            if s == name and lab.get("topic") == TOPIC}


def readyz(port=None):
    status, _, body = akvtest.http_get_text(url("/readyz", port))
    return status, body.strip()


def caught_up(fams):
    """Every assigned partition finished to its end, nothing in flight."""
    lag = per_partition(fams, "ak2vault_consumer_lag_messages")
    return (len(lag) == 2 and not any(lag.values()) and
            total(fams, "ak2vault_syncs_pending") == 0)


def broker_ends():
    """The log end of each partition, as the broker says now."""
    return {p["partition"]: p["end"]
            for p in S.stack.lag(GROUP)["partitions"]}


def wait_settled(timeout=60):
    """Caught up, and nothing arrived meanwhile: every sync's view_key read
    makes fake-authentik publish an event of its own."""
    deadline = time.monotonic() + timeout
    while True:
        before = broker_ends()
        wait_caught_up(max(1, deadline - time.monotonic()))
        if broker_ends() == before:
            return
        assert time.monotonic() < deadline, "events kept arriving"


def wait_caught_up(timeout=60):
    """Caught up to what the broker holds now (not to an end offset the
    worker read a moment ago)."""
    ends = broker_ends()

    def done():
        if not caught_up(scrape()):
            return False
        seen = per_partition(S.last, "ak2vault_end_offset")
        return all(seen.get(p, -1) >= e for p, e in ends.items())
    ok = akvtest.wait_until(done, timeout)
    assert ok, "not caught up within %ds: lag %s, committed %s, end %s" % (
        timeout, per_partition(S.last, "ak2vault_consumer_lag_messages"),
        per_partition(S.last, "ak2vault_committed_offset"),
        per_partition(S.last, "ak2vault_end_offset"))


def vault_versions():
    """Versions written under authentik/ in fake-vault."""
    return sum(len(sec.get("versions", {}))
               for path, sec in S.stack.vault_kv().items()
               if path.startswith("authentik/"))


def vault_v1_requests():
    """Every /v1 request fake-vault saw: the worker's syncs, and its token
    lookup (the harness itself only uses /_fake)."""
    return S.stack.vault_requests()


# ---------------------------------------------------------------------------


def test_endpoints_answer():
    S.stack = akvtest.Stack(S.rundir, partitions=2)
    S.port = akvtest.free_port()
    S.worker = S.stack.start_worker("worker-m", GROUP,
                                    extra=worker_cfg(S.port))
    ok = akvtest.wait_until(lambda: readyz()[0] == 200
                            if S.worker.running() else True, 30)
    assert S.worker.running(), "the worker exited: %s" % \
        S.worker.stderr_tail(3)
    assert ok, "/readyz never answered 200: %r" % (readyz(),)
    assert "serving /metrics /livez /readyz" in S.worker.stderr_text()
    status, ctype, body = akvtest.http_get_text(url("/livez"))
    assert status == 200 and body.strip() == "ok", (status, body)
    assert ctype.startswith("text/plain"), ctype
    assert akvtest.http_get_text(url("/nope"))[0] == 404
    status, _ = akvtest.http_json("POST", url("/metrics"), {})
    assert status == 405, "POST /metrics answered %s" % status
    fams = scrape()
    assert sample(fams, "ak2vault_assigned_partitions") == 2
    assert sample(fams, "ak2vault_ready") == 1
    assert sample(fams, "ak2vault_build_info", version="0.1.0",
                  librdkafka=fams["ak2vault_build_info"]["samples"][0][1][
                      "librdkafka"]) == 1


@depends("test_endpoints_answer")
def test_process_and_librdkafka_figures():
    """The standard process_* families and librdkafka's statistics (a
    broker's round trip, the fetch queues) are there with sane values,
    and promtool accepts the scrape."""
    def rtt_known():
        fams = scrape()
        fam = fams.get("ak2vault_kafka_broker_rtt_seconds")
        return fam and any(v > 0 for _, _, v in fam["samples"]) and fams
    fams = akvtest.wait_until(rtt_known, 20)
    assert fams, "no broker round trip after 20 s: %s" % \
        S.last.get("ak2vault_kafka_broker_rtt_seconds")
    rss = sample(fams, "process_resident_memory_bytes")
    assert 1e6 < rss < 1e9, "rss %s" % rss
    assert sample(fams, "process_virtual_memory_bytes") >= rss
    assert sample(fams, "process_open_fds") >= 3
    assert sample(fams, "process_max_fds") >= sample(fams, "process_open_fds")
    start = sample(fams, "process_start_time_seconds")
    assert abs(start - sample(fams, "ak2vault_start_time_seconds")) < 5, \
        "process started at %s, the worker says %s" % (
            start, sample(fams, "ak2vault_start_time_seconds"))
    assert sample(fams, "process_cpu_seconds_total") > 0
    assert fams["process_cpu_seconds_total"]["type"] == "counter"
    assert sample(fams, "ak2vault_kafka_fetch_queue_messages") >= 0
    assert sample(fams, "ak2vault_kafka_fetch_queue_bytes") >= 0
    promtool = shutil.which("promtool")
    assert promtool, "promtool not installed (make deps installs " \
        "Debian's prometheus)"
    status, _, body = akvtest.http_get_text(url("/metrics"))
    r = subprocess.run([promtool, "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics: %s" % (
        r.stdout + r.stderr).decode(errors="replace")[:500]
    note("process_* and librdkafka's figures exported (rss %.1f MB, "
         "%d fds); promtool check metrics accepts the scrape" % (
             rss / 1e6, sample(fams, "process_open_fds")))


def log_has(needle, timeout=10):
    return akvtest.wait_until(lambda: needle in S.worker.stderr_text(),
                              timeout)


@depends("test_process_and_librdkafka_figures")
def test_signals_change_the_log_level_and_reload():
    """SIGUSR1 and SIGUSR2 move the log level one step; SIGHUP reads the
    configuration file again, applies what may change (log.level, the
    reconcile's schedule and pace) and names what takes a restart; a file
    that no longer loads changes nothing. The worker keeps running."""
    S.worker.signal(signal.SIGUSR1)
    assert log_has("SIGUSR1: log level now debug"), S.worker.stderr_tail(3)
    S.worker.signal(signal.SIGUSR2)
    assert log_has("SIGUSR2: log level now info"), S.worker.stderr_tail(3)
    cfg = S.rundir.file("worker-m.cfg")
    original = cfg.read_text()
    S.stack.worker_config(GROUP, extra=akvtest.merge_settings(
        worker_cfg(S.port), {"log": {"level": "warn"},
                             "reconcile": {"max_requests_per_second": 7},
                             "sync": {"max_in_flight": 3}}),
        name="worker-m.cfg")
    S.worker.signal(signal.SIGHUP)
    assert log_has("read again: done"), S.worker.stderr_tail(5)
    log = S.worker.stderr_text()
    assert "SIGHUP: log.level \"info\" -> \"warn\"" in log, log[-600:]
    assert "SIGHUP: reconcile.max_requests_per_second 20 -> 7" in log
    assert "SIGHUP: sync.max_in_flight changed (64 -> 3): takes a " \
        "restart" in log, log[-600:]
    cfg.write_text(original + "\nbroken {{{\n")
    S.worker.signal(signal.SIGHUP)
    assert log_has("; nothing changed"), S.worker.stderr_tail(3)
    cfg.write_text(original)
    S.worker.signal(signal.SIGHUP)
    assert log_has("SIGHUP: log.level \"warn\" -> \"info\""), \
        S.worker.stderr_tail(3)
    assert S.worker.running(), "the worker exited"
    assert readyz()[0] == 200
    note("SIGUSR1/SIGUSR2 moved the log level; SIGHUP applied log.level and "
         "the reconcile pace, named sync.max_in_flight as needing a "
         "restart, and kept everything when the file was broken")


@depends("test_endpoints_answer")
def test_counters_agree_with_the_run():
    for i in range(12):
        ident = "metrics-tok-%02d" % i
        S.stack.create_token(ident)
        S.tokens.append(ident)
    for ident in S.tokens[:4]:
        S.stack.set_key(ident, akvtest.random_secret(40))
    # A change that does not touch what is mirrored: the sync finds Vault
    # up to date ("unchanged"). Only once the writes are done, or a busy
    # machine lets one sync answer for both.
    wait_caught_up()
    for ident in S.tokens[4:7]:
        S.stack.patch_token(ident, {"description": "touched"})
    wait_settled()
    fams = scrape()
    log = S.worker.stderr_text()
    syncs = akvtest.sync_lines(log)
    by_result = {}
    for s in syncs:
        by_result[s["result"]] = by_result.get(s["result"], 0) + 1
    ends = per_partition(fams, "ak2vault_end_offset")
    consumed = sample(fams, "ak2vault_events_consumed_total")
    matched = sample(fams, "ak2vault_events_matched_total")
    skipped = sample(fams, "ak2vault_events_skipped_total")
    invalid = sample(fams, "ak2vault_events_invalid_total")
    written = sample(fams, "ak2vault_syncs_total", result="written")
    unchanged = sample(fams, "ak2vault_syncs_total", result="unchanged")
    problems = []
    if consumed != sum(ends.values()):
        problems.append("consumed %s != end offsets %s" % (consumed, ends))
    if consumed != matched + skipped + invalid:
        problems.append("consumed %s != matched %s + skipped %s + invalid "
                        "%s" % (consumed, matched, skipped, invalid))
    if matched < len(S.tokens) + 4 + 3:
        problems.append("matched %s < %d token events" % (
            matched, len(S.tokens) + 7))
    if written != vault_versions():
        problems.append("written %s != %d Vault versions" % (
            written, vault_versions()))
    if written != by_result.get("written", 0):
        problems.append("written %s != %d log lines" % (
            written, by_result.get("written", 0)))
    if unchanged != by_result.get("unchanged", 0) or unchanged < 1:
        problems.append("unchanged %s, %d log lines" % (
            unchanged, by_result.get("unchanged", 0)))
    answered = sum(s["events"] for s in syncs)
    if sample(fams, "ak2vault_sync_latency_seconds_count") != answered:
        problems.append("latency observations %s != %d events answered" % (
            sample(fams, "ak2vault_sync_latency_seconds_count"), answered))
    vault_reqs = total(fams, "ak2vault_upstream_requests_total",
                       upstream="vault")
    if vault_reqs != len(vault_v1_requests()):
        problems.append("vault requests %s != %d seen by fake-vault" % (
            vault_reqs, len(vault_v1_requests())))
    if sample(fams, "ak2vault_upstream_request_duration_seconds_count",
              upstream="vault") != vault_reqs:
        problems.append("vault request durations != requests")
    if not total(fams, "ak2vault_upstream_requests_total",
                 upstream="authentik", status="200"):
        problems.append("no authentik 200s counted")
    for name in ("ak2vault_consumer_lag_messages",
                 "ak2vault_consumer_lag_seconds",
                 "ak2vault_partition_stalled"):
        vals = per_partition(fams, name)
        if sorted(vals) != [0, 1] or any(vals.values()):
            problems.append("%s = %s" % (name, vals))
    ttl = sample(fams, "ak2vault_vault_token_ttl_seconds")
    lease = sample(fams, "ak2vault_vault_token_lease_seconds")
    if S.stack.real_vault:
        # An AppRole token of REAL_VAULT_TOKEN_TTL, renewed as it goes.
        cap = int(akvtest.REAL_VAULT_TOKEN_TTL.rstrip("s"))
        if not (0 < ttl <= lease <= cap):
            problems.append("AppRole token: TTL %s, lease %s, role's TTL "
                            "%d s" % (ttl, lease, cap))
    elif ttl != float("inf"):
        problems.append("the root token's TTL is %s, not +Inf" % ttl)
    if not sample(fams, "ak2vault_commits_total", result="ok"):
        problems.append("no commits counted")
    assert not problems, "; ".join(problems)
    note("consumed %d, matched %d, written %d, unchanged %d, %d Vault "
         "requests" % (consumed, matched, written, unchanged, vault_reqs))


@depends("test_counters_agree_with_the_run")
@akvtest.fake_vault_only("needs Vault answering slowly")
def test_slow_vault_grows_lag_and_stalls_readiness():
    S.stack.vault_faults({"latency_ms": 6000, "scope": "kv"})
    before = scrape()
    t0 = time.monotonic()
    for i in range(3):
        S.stack.set_key(S.tokens[i], akvtest.random_secret(40))
    # Lag in messages appears as soon as the end offsets are read again.
    ok = akvtest.wait_until(
        lambda: total(scrape(), "ak2vault_consumer_lag_messages") >= 3, 10)
    assert ok, "lag in messages did not reach 3: %s" % per_partition(
        S.last, "ak2vault_consumer_lag_messages")
    first = max(per_partition(S.last, "ak2vault_consumer_lag_seconds")
                .values())
    # More events while the first ones hang: lag in messages grows.
    for i in range(3, 6):
        S.stack.set_key(S.tokens[i], akvtest.random_secret(40))
    ok = akvtest.wait_until(
        lambda: total(scrape(), "ak2vault_consumer_lag_messages") >= 6, 10)
    assert ok, "lag in messages did not grow to 6: %s" % per_partition(
        S.last, "ak2vault_consumer_lag_messages")
    # Not stalled before stall_timeout_ms...
    if time.monotonic() - t0 < STALL_MS / 1000.0 - 0.5:
        status, body = readyz()
        assert status == 200, "unready before the stall timeout: %s" % body
    # ...then stalled, and lag in seconds keeps growing.
    ok = akvtest.wait_until(lambda: readyz()[0] == 503, 10)
    status, body = readyz()
    assert ok and "stalled" in body, "/readyz: %s %s" % (status, body)
    fams = scrape()
    assert total(fams, "ak2vault_partition_stalled") >= 1
    assert sample(fams, "ak2vault_ready") == 0
    later = max(per_partition(fams, "ak2vault_consumer_lag_seconds")
                .values())
    assert later > first and later >= STALL_MS / 1000.0 - 0.5, \
        "lag seconds went from %.2f to %.2f" % (first, later)
    assert sample(fams, "ak2vault_upstream_up", upstream="vault") == 1, \
        "a slow Vault counted as down"
    note("lag %d messages, %.1f s; /readyz: %s" % (
        total(fams, "ak2vault_consumer_lag_messages"), later, body))
    # Vault fast again: the hanging requests finish, everything recovers.
    S.stack.vault_faults(None)
    wait_caught_up(60)
    ok = akvtest.wait_until(lambda: readyz()[0] == 200, 10)
    assert ok, "/readyz did not recover: %s" % (readyz(),)
    fams = scrape()
    assert total(fams, "ak2vault_partition_stalled") == 0
    assert total(fams, "ak2vault_consumer_lag_seconds") == 0
    assert sample(fams, "ak2vault_syncs_total", result="written") > \
        sample(before, "ak2vault_syncs_total", result="written")


@depends("test_counters_agree_with_the_run")
def test_sealed_vault_is_unreachable_then_recovers():
    if S.stack.real_vault:
        S.stack.vault_server.seal()
    else:
        S.stack.vault_faults({"sealed_for_ms": 60000})
    S.stack.set_key(S.tokens[7], akvtest.random_secret(40))
    ok = akvtest.wait_until(
        lambda: sample(scrape(), "ak2vault_upstream_up",
                       upstream="vault") == 0, 15)
    assert ok, "ak2vault_upstream_up{upstream=\"vault\"} stayed 1"
    ok = akvtest.wait_until(lambda: readyz()[0] == 503, 5)
    status, body = readyz()
    assert ok and "vault unreachable" in body, (status, body)
    assert total(S.last, "ak2vault_upstream_requests_total",
                 upstream="vault", status="503") >= 1
    assert sample(S.last, "ak2vault_sync_retries_total") >= 1
    if S.stack.real_vault:
        S.stack.vault_server.unseal()
    else:
        S.stack.vault_faults(None)
    wait_caught_up(30)
    ok = akvtest.wait_until(lambda: readyz()[0] == 200, 10)
    assert ok, "/readyz did not recover: %s" % (readyz(),)
    assert sample(scrape(), "ak2vault_upstream_up", upstream="vault") == 1


@depends("test_endpoints_answer")
def test_final_stats_agree_with_the_last_scrape():
    wait_caught_up(30)
    fams = scrape()
    S.worker.signal(signal.SIGTERM)
    rc = S.worker.wait(30)
    assert rc == 0, "exit %s: %s" % (rc, S.worker.stderr_tail(3))
    st = akvtest.final_stats(S.worker.stderr_text())
    assert st, "no final stats line"
    want = {
        "consumed": sample(fams, "ak2vault_events_consumed_total"),
        "skipped": sample(fams, "ak2vault_events_skipped_total"),
        "matched": sample(fams, "ak2vault_events_matched_total"),
        "poison": sample(fams, "ak2vault_events_invalid_total"),
        "written": sample(fams, "ak2vault_syncs_total", result="written"),
        "unchanged": sample(fams, "ak2vault_syncs_total",
                            result="unchanged"),
        "retries": sample(fams, "ak2vault_sync_retries_total"),
        "dead_lettered": sample(fams, "ak2vault_dlq_messages_total"),
    }
    bad = ["%s: stats %s, scrape %s" % (k, st[k], v)
           for k, v in want.items() if st[k] != v]
    assert not bad, "; ".join(bad)


@depends("test_final_stats_agree_with_the_last_scrape")
@akvtest.fake_vault_only("needs Vault holding requests for 20 s")
def test_second_sigterm_exits_at_once_without_committing_unfinished():
    # Every KV request hangs for 20 s: the syncs cannot finish.
    S.stack.vault_faults({"latency_ms": 20000, "scope": "kv"})
    port = akvtest.free_port()
    w = S.stack.start_worker("worker-term", GROUP, extra=worker_cfg(
        port, sync={"shutdown_timeout_ms": 30000}))
    ok = akvtest.wait_until(lambda: w.running() and
                            readyz(port)[0] == 200, 30)
    assert ok, "worker-term not ready: %s" % w.stderr_tail(3)
    committed_before = {p["partition"]: p["committed"]
                        for p in S.stack.lag(GROUP)["partitions"]}
    # An idle partition reports the group's committed offset, read when
    # the partition was assigned.
    ok = akvtest.wait_until(lambda: per_partition(
        scrape(port), "ak2vault_committed_offset") == committed_before, 10)
    assert ok, "committed offsets %s, the group has %s" % (
        per_partition(S.last, "ak2vault_committed_offset"), committed_before)
    for ident in S.tokens[8:11]:
        S.stack.set_key(ident, akvtest.random_secret(40))
    ok = akvtest.wait_until(
        lambda: sample(scrape(port), "ak2vault_syncs_in_flight") >= 1, 15)
    assert ok, "no sync in flight"
    w.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert w.running(), "the first SIGTERM did not wait for the syncs"
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    rc = w.wait(5)
    dt = time.monotonic() - t0
    assert rc is not None, "still running 5 s after the second SIGTERM"
    assert rc == 128 + signal.SIGTERM, "exit %s" % rc
    assert "second signal: exiting now" in w.stderr_text()
    lag = S.stack.lag(GROUP)
    for p in lag["partitions"]:
        assert p["committed"] == committed_before[p["partition"]], \
            "partition %d committed %d -> %d past unfinished events" % (
                p["partition"], committed_before[p["partition"]],
                p["committed"])
    assert lag["lag"] >= 3, "lag %d: the unfinished events were skipped" % \
        lag["lag"]
    note("exited %.2f s after the second SIGTERM; lag %d kept" % (
        dt, lag["lag"]))
    # The next owner redoes them.
    S.stack.vault_faults(None)
    w2 = S.stack.start_worker("worker-after", GROUP, exit_at_end=True,
                              extra=worker_cfg(akvtest.free_port()))
    rc = w2.wait(60)
    assert rc == 0, "worker-after exit %s: %s" % (rc, w2.stderr_tail(3))
    after = {p["partition"]: p["committed"]
             for p in S.stack.lag(GROUP)["partitions"]}
    behind = ["partition %d: %d < %d" % (p["partition"],
                                         after[p["partition"]], p["end"])
              for p in lag["partitions"] if after[p["partition"]] < p["end"]]
    assert not behind, "the held events were not redone: %s" % behind
    live = S.stack.live_tokens()
    current = S.stack.vault_current()
    stale = [i for i in S.tokens if current.get(i, (0, {}))[1].get("key")
             != live[i]["key"]]
    assert not stale, "stale in Vault: %s" % stale


if __name__ == "__main__":
    akvtest.run_tests(globals(), "metrics", setup=setup, teardown=teardown)
