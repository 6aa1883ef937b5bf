#!/usr/bin/python3
"""End to end: authentik token changes reach Vault through ak2vault.

The stack is mock-kafka (topic authentik.events with 4 partitions),
fake-vault and fake-authentik on loopback, each with fresh random secrets.
The tests run in order and share it:

  1. two `ak2vault run` replicas join one consumer group;
  2. 50 tokens are created, 20 keys changed (set_key and the fake's
     background rotation), a few tokens patched, 5 deleted;
  3. Vault converges on authentik's current key and intent for every live
     token;
  4. hand-made poison events (non-slug identifiers, an over-long one, one
     without a name) are skipped and a later token still syncs, and none of
     them ever became a Vault or authentik request;
  5. SIGTERM stops both replicas cleanly, with consistent final stats;
  6. a third worker in a NEW group resyncs everything with --exit-at-end
     and writes no new version;
  7. a restarted replica of the first group resumes from its committed
     offsets, and after it stopped alone, the next one has nothing to do;
  8. a backlog of 20,000 realistic events (akv-bench-gen) is caught up by
     a new group with far fewer key reads than token events, as syncs
     wait for their token's later events (sync.catchup_delay_ms), and
     with one read per event when that is 0;
  9. the stand-ins stop cleanly, and no captured output of any process
     contains a token key, the Vault root token or the authentik API token.

Failures name identifiers and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, workers=[], created=[],
                    deleted=[], poison={}, kv_before=None,
                    kv_writes_before=None, resync_stats=None)
GROUP = "ak2vault-e2e"
WORKER_CFG = akvtest.merge_settings(akvtest.MOCK_GROUP_WORKAROUND, {
    # Short retries: should a request fail (none should), it costs little.
    "sync": {"retry_initial_ms": 50, "retry_max_ms": 1000},
})
SYNC_TIMEOUT = 60
STOP_TIMEOUT = 20
# Substrings of the poison identifiers; no valid identifier contains them.
POISON_MARKERS = ("escape", "bad", "slash", "pct")
LONG_NAME = "x" * 300
# match.exclude_identifiers' default: the worker's own API token.
EXCLUDED = "ak2vault-worker"


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


def snapshot_keys():
    """Reads every live token (which records its key as a secret)."""
    return S.stack.live_tokens()


def worker_logs():
    return {w.name: w.stderr_text() for w in S.workers}


def vault_mismatches():
    """Live tokens whose Vault copy differs (the excluded one left out)."""
    return S.stack.vault_mismatches(exclude=(EXCLUDED,))


def describe(mismatches):
    return akvtest.describe(mismatches, limit=12)


def stop_and_stats(workers):
    """SIGTERMs every worker at once, waits; @returns {name: stats}."""
    for w in workers:
        w.signal(signal.SIGTERM)
    problems, stats = [], {}
    for w in workers:
        rc = w.wait(STOP_TIMEOUT)
        if rc is None:
            w.stop(1)
            problems.append("%s did not exit within %ds of SIGTERM" % (
                w.name, STOP_TIMEOUT))
            continue
        if rc != 0:
            problems.append("%s exited %d: %s" % (w.name, rc,
                                                  w.stderr_tail(3)))
        st = akvtest.final_stats(w.stderr_text())
        if st is None:
            problems.append("%s: last log line is not the final stats line"
                            % w.name)
        else:
            stats[w.name] = st
    assert not problems, "; ".join(problems)
    return stats


def run_to_end(name, group, timeout=SYNC_TIMEOUT, log_level="info",
               settings=None):
    """Runs one worker with --exit-at-end (and \\p settings over
    WORKER_CFG); @returns its final stats."""
    extra = akvtest.merge_settings(dict(WORKER_CFG, log={"level": log_level}),
                                   settings or {})
    w = S.stack.start_worker(name, group, exit_at_end=True, extra=extra)
    S.workers.append(w)
    rc = w.wait(timeout)
    if rc is None:
        w.stop(5)
        raise AssertionError("%s with --exit-at-end still running after %ds"
                             % (name, timeout))
    assert rc == 0, "%s exited %d: %s" % (name, rc, w.stderr_tail(3))
    st = akvtest.final_stats(w.stderr_text())
    assert st is not None, "%s: no final stats line" % name
    return st


def check_consistency(name, st, log):
    """The final stats agree with the per-event log lines."""
    synced = akvtest.sync_lines(log)
    match_poison = len(akvtest.poison_lines(log))
    sync_poison = log.count(" poison partition=")
    problems = []
    by_result = {}
    for s in synced:
        by_result[s["result"]] = by_result.get(s["result"], 0) + 1
    for r in ("written", "unchanged", "gone", "filtered"):
        if by_result.get(r, 0) != st[r]:
            problems.append("%s=%d but %d '%s' lines" % (
                r, st[r], by_result.get(r, 0), r))
    if st["poison"] != match_poison + sync_poison:
        problems.append("poison=%d but %d poison lines" % (
            st["poison"], match_poison + sync_poison))
    if st["consumed"] != st["skipped"] + st["matched"] + match_poison:
        problems.append("consumed=%d != skipped+matched+poison events"
                        % st["consumed"])
    # An event still retrying at shutdown was matched but has no result.
    if st["retries"] == 0:
        answered = sum(x["events"] for x in synced)
        if st["matched"] != answered + sync_poison:
            problems.append("matched=%d but results answer for %d" % (
                st["matched"], answered + sync_poison))
    assert not problems, "%s: %s" % (name, "; ".join(problems))


# ---------------------------------------------------------------------------


def test_stack_and_two_replicas_start():
    # The dead-letter topic exists beforehand, as README asks of users: a
    # real broker creates no topic on its own.
    S.stack = akvtest.Stack(S.rundir, partitions=4,
                            topics=(akvtest.TOPIC + ".dlq:1",),
                            authentik_args=("--verbose",))
    for name in ("worker-a", "worker-b"):
        S.workers.append(S.stack.start_worker(name, GROUP,
                                              extra=WORKER_CFG))

    def consuming():
        return all("consuming topic=" in w.stderr_text()
                   for w in S.workers[:2])
    ok = akvtest.wait_until(consuming, 15)
    dead = ["%s exited %s: %s" % (w.name, w.wait(0), w.stderr_tail(3))
            for w in S.workers[:2] if not w.running()]
    assert not dead, "; ".join(dead)
    assert ok, "the workers did not start consuming within 15s"


@depends("test_stack_and_two_replicas_start")
def test_token_changes_through_the_api():
    st = S.stack
    kinds = ["deploy-bot", "ci-runner", "grafana", "backup-agent",
             "metrics-scraper", "ldap-sync", "webhook-relay", "terraform"]
    for i in range(50):
        ident = "%s-%02d" % (kinds[i % len(kinds)], i)
        intent = "app_password" if i % 3 == 0 else "api"
        st.create_token(ident, intent=intent,
                        description="e2e token %d" % i,
                        expiring=(i % 4 != 0))
        S.created.append(ident)
    snapshot_keys()
    # 12 keys set by the test, 8 rotated like authentik's expiry task.
    for ident in S.created[0:12]:
        st.set_key(ident, "e2e" + akvtest.random_secret(45))
    for ident in S.created[12:20]:
        st.rotate(ident)
    # Updates that touch no key, and two intent changes.
    for ident in S.created[20:25]:
        st.patch_token(ident, {"description": "patched"})
    st.patch_token(S.created[26], {"intent": "app_password"})
    st.patch_token(S.created[27], {"intent": "api"})
    # Deleted: two with changed keys, three untouched.
    S.deleted = [S.created[3], S.created[14], S.created[40],
                 S.created[41], S.created[49]]
    for ident in S.deleted:
        st.delete_token(ident)
    # The worker's own token: created and re-keyed, never mirrored.
    st.create_token(EXCLUDED, description="the worker's API token")
    st.set_key(EXCLUDED, "e2e" + akvtest.random_secret(45))
    live = snapshot_keys()
    assert len(live) == 46, "fake-authentik holds %d tokens, wanted 46" % (
        len(live))
    note("50 tokens created, 12 set_key, 8 rotated, 7 patched, 5 deleted; "
         "%s created and re-keyed" % EXCLUDED)


@depends("test_token_changes_through_the_api")
def test_vault_converges_on_authentik():
    last = []

    def converged():
        last[:] = vault_mismatches()
        return not last
    t0 = time.monotonic()
    ok = akvtest.wait_until(converged, SYNC_TIMEOUT, interval=0.5)
    assert ok, "after %ds, %d live tokens differ in Vault: %s" % (
        SYNC_TIMEOUT, len(last), describe(last))
    snapshot_keys()
    # Nothing but the tokens the test made has a Vault path; the excluded
    # token caused no request at all.
    unexpected = sorted(set(S.stack.vault_current()) - set(S.created))
    assert not unexpected, "unexpected Vault paths: %s" % unexpected[:10]
    asked = [r.get("path") for r in S.stack.vault_requests()
             if EXCLUDED in r.get("path", "")]
    assert not asked, "Vault was asked about %s: %s" % (EXCLUDED, asked[:3])
    logs = worker_logs()
    assert not any("token=%s " % EXCLUDED in text for text in logs.values()), \
        "a worker synced %s" % EXCLUDED
    note("Vault matched authentik for 45 live tokens after %.1fs" % (
        time.monotonic() - t0))


def handmade_event(name, action="model_created"):
    """A token event shaped like authentik's; name None leaves it out."""
    model = {"pk": uuid.uuid4().hex, "app": "authentik_core",
             "name": name, "model_name": "token"}
    if name is None:
        del model["name"]
    return {
        "pk": str(uuid.uuid4()),
        "user": {"pk": 4, "email": "admin@example.com",
                 "username": "akadmin"},
        "action": action,
        "app": "authentik.events.middleware",
        "context": {
            "model": model,
            "http_request": {"args": {}, "path": "/api/v3/core/tokens/",
                             "method": "POST",
                             "request_id": uuid.uuid4().hex,
                             "user_agent": "curl/8.5.0"}},
        "client_ip": "192.0.2.10",
        "created": "2026-04-21T09:12:00.498765Z",
        "expires": "2027-04-21T09:12:00.497311Z",
        "brand": {"pk": "0bb0bcf421994958b51ffc2627ea8fe6",
                  "app": "authentik_brands", "name": "Default brand",
                  "model_name": "brand"},
    }


@depends("test_vault_converges_on_authentik")
def test_poison_events_are_skipped():
    st = S.stack
    names = {
        "dot-dot path": "../../escape (expires=2027-04-21 "
                        "09:12:00.497311+00:00)",
        "slash": "bad/slash",
        "percent-encoded slash": "with%2Fpct",
        "300-char name": LONG_NAME,
        "no name": None,
    }
    # Every kind into every partition, so whichever partition the valid
    # token lands in has poison in front of it.
    for p in range(st.partitions):
        for kind, name in names.items():
            ev = handmade_event(name)
            S.poison[ev["pk"]] = kind
            akvtest.kcat_produce(st.brokers, st.topic,
                                 ev["context"]["model"]["pk"],
                                 json.dumps(ev), S.rundir, partition=p)
    valid = "after-poison-ok"
    st.create_token(valid, intent="api", description="after the poison")
    S.created.append(valid)

    def valid_synced():
        tok = st.live_tokens().get(valid)
        cur = st.vault_current().get(valid)
        return tok and cur and cur[1] == {"key": tok["key"],
                                          "intent": "api"}
    assert akvtest.wait_until(valid_synced, 30), \
        "%s did not reach Vault within 30s after the poison" % valid

    def all_logged():
        seen = {p["event"] for log in worker_logs().values()
                for p in akvtest.poison_lines(log)}
        return not (set(S.poison) - seen)
    logged = akvtest.wait_until(all_logged, 15)
    seen = {}
    for log in worker_logs().values():
        for p in akvtest.poison_lines(log):
            seen[p["event"]] = p
    missing = sorted({S.poison[pk] for pk in S.poison if pk not in seen})
    assert logged, "no poison log line for: %s" % ", ".join(missing)

    # The valid token's event came after poison in its own partition.
    lines = [s for log in worker_logs().values()
             for s in akvtest.sync_lines(log) if s["token"] == valid]
    assert lines, "no sync log line for %s" % valid
    part, off = lines[0]["partition"], lines[0]["offset"]
    before = [p for p in seen.values()
              if p["partition"] == part and p["offset"] < off]
    assert len(before) == len(names), \
        "partition %d: %d poison events before offset %d, wanted %d" % (
            part, len(before), off, len(names))

    # No poison identifier ever became a request.
    reqs = [r.get("path", "") for r in st.vault_requests()]
    assert reqs, "fake-vault recorded no requests"
    bad = sorted({m for path in reqs for m in POISON_MARKERS if m in path})
    assert not bad, "Vault request paths contain %s" % bad
    too_long = [path for path in reqs if len(path.rsplit("/", 1)[-1]) > 255]
    assert not too_long, "a Vault request path has a 256+ char segment"
    ak_paths = [l for l in st.authentik.stderr_text().splitlines()
                if "/api/v3/" in l]
    bad = sorted({m for l in ak_paths for m in POISON_MARKERS if m in l})
    assert not bad, "authentik request paths contain %s" % bad
    assert not any(LONG_NAME[:256] in l for l in ak_paths), \
        "the 300-char name became an authentik request"
    snapshot_keys()
    note("%d poison events skipped (%d kinds x %d partitions)" % (
        len(S.poison), len(names), st.partitions))


@depends("test_stack_and_two_replicas_start")
def test_sigterm_stops_both_replicas():
    stats = stop_and_stats(S.workers[:2])
    logs = worker_logs()
    for name, st in stats.items():
        check_consistency(name, st, logs[name])
    total = {k: sum(s[k] for s in stats.values()) for k in
             akvtest.STATS_FIELDS}
    vstats = S.stack.vault_stats()
    assert total["written"] == vstats.get("kv_writes"), \
        "workers report %d writes, fake-vault created %s versions" % (
            total["written"], vstats.get("kv_writes"))
    if S.poison:
        assert total["poison"] >= len(S.poison), \
            "poison=%d, %d poison events were produced" % (
                total["poison"], len(S.poison))
    assert total["matched"] > 0 and total["written"] > 0, \
        "matched=%d written=%d" % (total["matched"], total["written"])
    # Healthy stand-ins: no request failed, nothing had to be retried.
    assert total["retries"] == 0, \
        "retries=%d with healthy stand-ins" % total["retries"]
    astats = S.stack.authentik_stats() or {}
    assert vstats.get("denied") == 0 and astats.get("denied") == 0, \
        "denied requests: fake-vault %s, fake-authentik %s" % (
            vstats.get("denied"), astats.get("denied"))
    failed = sorted({"%s %s" % (r.get("method"), r.get("status"))
                     for r in S.stack.vault_requests()
                     if r.get("status", 0) >= 500 or
                     r.get("status") in (400, 401, 403, 405)})
    assert not failed, "Vault answered errors: %s" % ", ".join(failed)
    if vstats.get("cas_mismatch"):
        note("fake-vault saw %s check-and-set mismatches" %
             vstats["cas_mismatch"])
    for name, st in sorted(stats.items()):
        note("%s: consumed=%d matched=%d written=%d unchanged=%d gone=%d "
             "poison=%d" % (name, st["consumed"], st["matched"],
                            st["written"], st["unchanged"], st["gone"],
                            st["poison"]))


@depends("test_vault_converges_on_authentik",
         "test_sigterm_stops_both_replicas")
def test_resync_with_new_group_writes_nothing():
    st = S.stack
    S.kv_writes_before = st.vault_stats().get("kv_writes")
    S.kv_before = st.vault_kv()
    # At debug level: more log lines for the secret scan to look at.
    stats = run_to_end("worker-resync", GROUP + "-resync", log_level="debug")
    after = st.vault_kv()
    writes = st.vault_stats().get("kv_writes")
    assert writes == S.kv_writes_before, \
        "kv_writes went from %s to %s" % (S.kv_writes_before, writes)
    moved = sorted(
        p for p in set(S.kv_before) | set(after)
        if (S.kv_before.get(p) or {}).get("current_version") !=
        (after.get(p) or {}).get("current_version"))
    assert not moved, "new versions at: %s" % moved[:10]
    assert stats["matched"] > 0 and stats["unchanged"] > 0, \
        "matched=%d unchanged=%d" % (stats["matched"], stats["unchanged"])
    assert stats["written"] == 0, "written=%d" % stats["written"]
    S.resync_stats = stats
    check_consistency("worker-resync", stats,
                      S.workers[-1].stderr_text())
    mism = vault_mismatches()
    assert not mism, "Vault differs after the resync: " + describe(mism)
    note("resync: consumed=%d matched=%d unchanged=%d gone=%d poison=%d "
         "written=0" % (stats["consumed"], stats["matched"],
                        stats["unchanged"], stats["gone"],
                        stats["poison"]))


@depends("test_sigterm_stops_both_replicas",
         "test_resync_with_new_group_writes_nothing")
def test_restart_resumes_from_committed_offsets():
    """A replica of the first group starts where the group left off.

    Events finished after the group's last successful commit may come
    again (at-least-once): when both replicas stop at once, the second
    one's final commit can meet the rebalance the first one's leaving
    started. It must not start over, though."""
    everything = S.resync_stats["matched"] + S.resync_stats["poison"]
    stats = run_to_end("worker-restart", GROUP, timeout=30)
    again = stats["matched"] + stats["poison"]
    assert again < everything, \
        "the restarted replica re-processed %d of %d events: it started " \
        "over instead of resuming" % (again, everything)
    assert stats["written"] == 0, "written=%d" % stats["written"]
    if again:
        failed = [w.name for w in S.workers[:2]
                  if "commit (shutdown) failed" in w.stderr_text() or
                  "commit (revoke) failed" in w.stderr_text()]
        note("restart re-processed %d event(s) finished after the last "
             "successful commit (final commit failed in: %s)" % (
                 again, ", ".join(failed) or "none logged"))


@depends("test_restart_resumes_from_committed_offsets")
def test_exit_at_end_commits_everything():
    """A worker that stopped alone committed all it did: the next one in
    its group has nothing to re-process."""
    stats = run_to_end("worker-restart-2", GROUP, timeout=30)
    assert stats["matched"] == 0 and stats["poison"] == 0, \
        "events committed by the previous run came again: matched=%d " \
        "poison=%d" % (stats["matched"], stats["poison"])


BACKLOG_TOKENS = 100
BACKLOG_EVENTS = 20000
BACKLOG_TOKEN_EVENTS = 600


def catch_up(name, group, delay_ms):
    """A worker of a new group reads the whole topic with
    sync.catchup_delay_ms = \\p delay_ms; @returns the view_key reads it
    made, its final stats, its syncs and the tokens they were for."""
    before = S.stack.authentik_stats()["view_key"]
    st = run_to_end(name, group,
                    settings={"sync": {"catchup_delay_ms": delay_ms}})
    w = S.workers[-1]
    check_consistency(name, st, w.stderr_text())
    syncs = akvtest.sync_lines(w.stderr_text())
    return (S.stack.authentik_stats()["view_key"] - before, st, len(syncs),
            len({x["token"] for x in syncs}))


@depends("test_exit_at_end_commits_everything")
def test_a_backlog_is_caught_up_with_few_authentik_reads():
    """Far behind the log end, a sync waits (sync.catchup_delay_ms) for
    its token's later events and answers for them too. A backlog of 20,000
    realistic events, 600 of them about 100 tokens, read by a new group:
    with the default delay about one sync per token, fewer than with 0
    (then only events that come while a token's sync runs join it), and
    Vault equals authentik either way."""
    st = S.stack
    lines = []
    for i in range(BACKLOG_TOKENS):
        out = st.create_token("backlog-%02d" % i, expiring=False)
        lines.append("%s\t%s\t%s" % (out["pk"].replace("-", ""),
                                      out["identifier"], out["identifier"]))
    tokens = S.rundir.write("backlog.tokens", "\n".join(lines) + "\n")
    gen = subprocess.run(
        [akvtest.binary("akv-bench-gen"), "produce", "--brokers",
         st.brokers, "--topic", akvtest.TOPIC, "--events",
         str(BACKLOG_EVENTS), "--token-events", str(BACKLOG_TOKEN_EVENTS),
         "--tokens-file", str(tokens), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
        env=akvtest.child_env())
    assert gen.returncode == 0, "akv-bench-gen: %s" % gen.stderr.decode(
        errors="replace")[-300:]

    waited, st_waited, syncs, tokens = catch_up("worker-catchup",
                                                GROUP + "-catchup", 1000)
    each, st_each, syncs_each, _ = catch_up("worker-no-wait",
                                            GROUP + "-no-wait", 0)
    note("catch-up of %d events (%d matched, %d tokens): %d syncs and %d "
         "key reads with sync.catchup_delay_ms = 1000; %d and %d with 0" % (
             st_waited["consumed"], st_waited["matched"], tokens, syncs,
             waited, syncs_each, each))
    assert st_waited["matched"] == st_each["matched"], \
        "matched %d vs %d" % (st_waited["matched"], st_each["matched"])
    # A token whose event came in the last stretch, after its deferred
    # sync had started, needs one follow-up: a few may.
    assert syncs <= tokens * 1.25, \
        "catching up took %d syncs for %d tokens" % (syncs, tokens)
    assert syncs < syncs_each and waited < each, \
        "waiting saved nothing: %d syncs, %d without waiting" % (
            syncs, syncs_each)
    mism = vault_mismatches()
    assert not mism, "Vault differs after the catch-up: " + describe(mism)


@depends("test_exit_at_end_commits_everything")
@akvtest.fake_vault_only("needs Vault answering 503 (retry lines)")
def test_json_log_lines_carry_their_fields():
    """log.format = "json": every line is one JSON object; a sync's line
    carries token, partition and offset (numbers) and event, a retry's
    token, class and attempt, as fields of their own."""
    plan = S.stack.vault_faults({"error_rates": {"503": 0.3}, "seed": 7,
                                 "scope": "kv"})
    assert plan.get("error_rates"), plan
    try:
        stats = run_to_end("worker-json", GROUP + "-json",
                           settings={"log": {"format": "json"},
                                     "sync": {"retry_initial_ms": 20,
                                              "retry_max_ms": 100}})
    finally:
        S.stack.vault_faults(None)
    lines = [ln for ln in S.workers[-1].stderr_text().splitlines()
             if ln.strip()]
    docs = []
    for ln in lines:
        try:
            docs.append(json.loads(ln))
        except ValueError:
            raise AssertionError("not a JSON line: %r" % ln[:200]) from None
    syncs = [d for d in docs if d.get("component") == "sync" and
             "result=" in d.get("msg", "")]
    retries = [d for d in docs if d.get("component") == "sync" and
               "retry_in_ms=" in d.get("msg", "")]
    assert syncs and retries, "%d sync and %d retry lines" % (len(syncs),
                                                              len(retries))
    for d in syncs:
        assert isinstance(d.get("token"), str) and \
            isinstance(d.get("partition"), int) and \
            isinstance(d.get("offset"), int) and "event" in d, d
        assert "token=%s " % d["token"] in d["msg"], d
    for d in retries:
        assert isinstance(d.get("token"), str) and \
            d.get("class") == "transient" and \
            isinstance(d.get("attempt"), int) and d["attempt"] >= 1, d
    assert stats["matched"] > 0
    note("%d JSON lines: %d syncs with token/partition/offset/event, %d "
         "retries with class/attempt" % (len(docs), len(syncs),
                                         len(retries)))


@depends("test_stack_and_two_replicas_start")
def test_stand_ins_stop_cleanly():
    snapshot_keys()
    st = S.stack
    rcs = {p.name: p.stop() for p in (st.authentik, st.vault, st.kafka)}
    bad = ["%s exited %s" % (n, rc) for n, rc in rcs.items() if rc != 0]
    assert not bad, "; ".join(bad)


def test_no_secret_in_any_output():
    akvtest.stop_all()
    kinds = SECRETS.kinds()
    assert kinds.get("token key", 0) >= 50, \
        "only %d token keys collected" % kinds.get("token key", 0)
    logs = S.rundir.logs()
    akvtest.assert_no_secrets(logs)
    redacted = [p.name for p in logs if b"[redacted]" in p.read_bytes()]
    if redacted:
        note("worker scrubbed a secret from a log line in: %s" %
             ", ".join(redacted))
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "e2e", setup=setup, teardown=teardown)
