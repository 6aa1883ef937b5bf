#!/usr/bin/python3
"""Syncs no event asked for: `ak2vault sync IDENTIFIER...`, `ak2vault
reconcile` and the periodic reconcile inside `run`.

The stack is mock-kafka, fake-vault and fake-authentik on loopback; until
the tests of `run`, no worker runs, so the tokens' events stay on the
topic unread and Vault learns of them only through `sync` and
`reconcile`:

  1. tokens created with no worker running reach Vault through `sync`,
     reported as missing and written, with provenance;
  2. a secret edited by hand in Vault: `sync --dry-run` reports a stale
     key, exits 2 and sends Vault no write; `sync` restores it;
  3. a token deleted in authentik: the dry run reports an orphan and
     deletes nothing; `sync` deletes it per vault.on_delete (soft-delete
     here); a name neither side knows is gone and in sync;
  4. identifiers that are not slugs are usage errors; with Vault refusing
     the token, the run gives up at --timeout and exits 69;
  5. `ak2vault reconcile`: a token with no event, a token whose intent is
     not mirrored (match.intents is only api here) and a secret no token
     owns: the dry run reports each kind and writes nothing; the
     real run writes the missing one, deletes the orphan (after
     authentik's 404), leaves the excluded one alone; afterwards a dry run
     finds no drift; 130 tokens make the token list take two pages;
  6. a rotation and a deletion whose events authentik dropped (the
     forwarding target down: fake-authentik's drop_events) are repaired
     by the next reconcile;
  7. a token created between the two lists (the Vault LIST held back by
     fake-vault's latency) is visited as a possible orphan and kept;
  8. `run` with reconcile.on_start backfills tokens with no event on the
     topic, at reconcile.max_requests_per_second, and --exit-at-end
     waits for it;
  9. the periodic reconcile repairs a rotation and a deletion whose
     events were dropped, and its metrics count them;
 10. a warm reconcile costs one metadata read per token and no data read
     or write, and finds a hand edit, a soft delete and a destroy;
 11. a reconcile whose list fails is counted, logged and retried later,
     not at once;
 12. of three replicas only the holder of partition 0 reconciles; when
     it leaves, another takes over;
 13. reconciles every 0.2 s while keys rotate never put an older key
     back (version audit);
 14. a dry run reports each kind of drift (missing, stale_key,
     intent_differs, fields_differ, orphan, excluded) and writes
     nothing; reconcile repairs them;
 15. no captured output holds a token key or a credential.

Failures name identifiers and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402
from keyaudit import KeyBook, version_audit  # noqa: E402
from types import SimpleNamespace  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, cfg=None)
TOKENS = ["recon-a", "recon-b", "recon-c"]


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


def command(cmd, *args, env=None, timeout=120):
    """`ak2vault CMD -c CFG ARGS...` with the stack's credentials (\\p env
    overrides them); output kept as ak2vault-CMD.*.log. @returns (exit
    status, stdout)."""
    argv = [akvtest.binary("ak2vault"), cmd, "-c", str(S.cfg), *args]
    wenv = {"VAULT_TOKEN": S.stack.vault_token,
            "AUTHENTIK_TOKEN": S.stack.authentik_token}
    wenv.update(env or {})
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(
                           {k: v for k, v in wenv.items() if v is not None}),
                       cwd=str(S.rundir.path), timeout=timeout)
    with open(S.rundir.file("ak2vault-%s.stdout.log" % cmd), "ab") as f:
        f.write(r.stdout)
    with open(S.rundir.file("ak2vault-%s.stderr.log" % cmd), "ab") as f:
        f.write(r.stderr)
    return r.returncode, r.stdout.decode(errors="replace")


def command_json(cmd, *args, **kw):
    """The same with --json: (exit status, {identifier: row}, document)."""
    rc, out = command(cmd, "--json", *args, **kw)
    try:
        doc = json.loads(out)
    except ValueError:
        raise AssertionError("%s --json printed no JSON (exit %d): %r" %
                             (cmd, rc, SECRETS.scrub(out[:200]))) from None
    return rc, {t["identifier"]: t for t in doc["tokens"]}, doc


def sync(*args, **kw):
    return command("sync", *args, **kw)


def sync_json(*args, **kw):
    return command_json("sync", *args, **kw)


def reconcile_json(*args, **kw):
    return command_json("reconcile", *args, **kw)


def vault_writes():
    """Requests that change KV data or metadata, from fake-vault's log."""
    return [r for r in S.stack.vault_requests()
            if r.get("method") in ("POST", "PUT", "DELETE", "PATCH") and
            "/kv/" in r.get("path", "")]


def hand_write(identifier, data):
    status, _ = akvtest.http_json(
        "POST", S.stack.vault_addr + "/v1/kv/data/authentik/" + identifier,
        {"data": data}, headers={"X-Vault-Token": S.stack.vault_token})
    assert status == 200, "hand write of %s answered %s" % (identifier,
                                                           status)


def test_tokens_without_events_reach_vault():
    S.stack = akvtest.Stack(S.rundir)
    S.cfg = S.stack.worker_config("ak2vault-reconcile", extra={
        "vault": {"on_delete": "soft-delete"},
        "match": {"intents": ["api"]}})
    for t in TOKENS:
        S.stack.create_token(t)
    live = S.stack.live_tokens()
    assert S.stack.vault_current() == {}, "Vault is not empty before sync"
    rc, rows, doc = sync_json(*TOKENS)
    assert rc == 0, "sync exited %d" % rc
    for t in TOKENS:
        assert rows[t]["result"] == "written", "%s: %s" % (t, rows[t])
        assert rows[t]["drift"] == "missing", "%s: %s" % (t, rows[t])
    cur = S.stack.vault_current()
    for t in TOKENS:
        assert cur.get(t, (0, None))[1] == {
            "key": live[t]["key"], "intent": live[t]["intent"]}, \
            "%s not in Vault as authentik has it" % t
    assert doc["drift"] == 3 and doc["failed"] == 0, doc
    rc, rows, _ = sync_json(*TOKENS)
    assert rc == 0 and all(r["result"] == "unchanged" and
                           r["drift"] == "in_sync" for r in rows.values()), \
        "a second sync changed something: %s" % rows
    note("3 tokens with no worker running: written by `sync`, then in sync")


@depends("test_tokens_without_events_reach_vault")
def test_hand_edit_is_reported_then_restored():
    live = S.stack.live_tokens()
    forged = "forged" + akvtest.random_secret(20)
    SECRETS.add("token key", forged)
    hand_write("recon-a", {"key": forged, "intent": "api"})
    before = len(vault_writes())
    rc, rows, _ = sync_json("--dry-run", "recon-a", "recon-b")
    assert rc == 2, "dry run with drift exited %d, not 2" % rc
    assert rows["recon-a"]["drift"] == "stale_key", rows["recon-a"]
    assert rows["recon-a"]["result"] == "dry_run", rows["recon-a"]
    assert rows["recon-b"]["drift"] == "in_sync", rows["recon-b"]
    assert len(vault_writes()) == before, "the dry run wrote to Vault"
    rc, out = sync("--dry-run", "recon-b")
    assert rc == 0, "dry run without drift exited %d" % rc
    assert "recon-b" in out and "in_sync" in out, out
    rc, rows, _ = sync_json("recon-a")
    assert rc == 0 and rows["recon-a"]["result"] == "written", rows
    assert S.stack.vault_current()["recon-a"][1]["key"] == \
        live["recon-a"]["key"], "recon-a not restored"
    note("hand-edited key: dry run exit 2 with no Vault write; sync restored")


@depends("test_tokens_without_events_reach_vault")
def test_deleted_token_is_an_orphan():
    S.stack.delete_token("recon-c")
    before = len(vault_writes())
    rc, rows, _ = sync_json("--dry-run", "recon-c", "recon-nosuch")
    assert rc == 2, "dry run exited %d" % rc
    assert rows["recon-c"]["drift"] == "orphan", rows["recon-c"]
    assert rows["recon-nosuch"]["result"] == "gone", rows["recon-nosuch"]
    assert rows["recon-nosuch"]["drift"] == "in_sync", rows["recon-nosuch"]
    assert len(vault_writes()) == before, "the dry run wrote to Vault"
    rc, rows, _ = sync_json("recon-c")
    assert rc == 0 and rows["recon-c"]["result"] == "deleted", rows
    kv = S.stack.vault_kv()["authentik/recon-c"]
    cur = kv["versions"][str(kv["current_version"])]
    assert cur.get("deletion_time"), "recon-c's current version not deleted"
    note("token deleted in authentik: orphan in the dry run, deleted by sync")


@depends("test_tokens_without_events_reach_vault")
def test_bad_names_and_refused_vault():
    rc, _ = sync("not/a-slug")
    assert rc == 64, "a non-slug identifier exited %d, not 64" % rc
    rc, _, doc = sync_json("--timeout", "2", "recon-a",
                           env={"VAULT_TOKEN": "not-the-token"})
    assert rc == 69, "a refused Vault token exited %d, not 69" % rc
    assert doc["failed"] == 1, doc
    note("non-slug: 64; Vault refusing the token: 69 after --timeout")


@depends("test_deleted_token_is_an_orphan")
def test_reconcile_reports_then_repairs_every_kind():
    S.stack.create_token("recon-d")
    S.stack.create_token("recon-skip", intent="app_password")
    ghost = "ghost" + akvtest.random_secret(20)
    SECRETS.add("token key", ghost)
    hand_write("recon-ghost", {"key": ghost, "intent": "api"})
    before = len(vault_writes())
    rc, rows, doc = reconcile_json("--dry-run")
    assert rc == 2, "dry run with drift exited %d" % rc
    want = {"recon-a": ("unchanged", "in_sync"),
            "recon-b": ("unchanged", "in_sync"),
            "recon-d": ("dry_run", "missing"),
            "recon-ghost": ("dry_run", "orphan"),
            "recon-skip": ("filtered", "excluded")}
    for ident, (result, drift) in want.items():
        got = rows.get(ident)
        assert got and (got["result"], got["drift"]) == (result, drift), \
            "%s: %s, wanted %s/%s" % (ident, got, result, drift)
    assert len(vault_writes()) == before, "the dry run wrote to Vault"
    rc, rows, doc = reconcile_json()
    assert rc == 0, "reconcile exited %d" % rc
    assert rows["recon-d"]["result"] == "written", rows["recon-d"]
    assert rows["recon-ghost"]["result"] == "deleted", rows["recon-ghost"]
    assert rows["recon-skip"]["result"] == "filtered", rows["recon-skip"]
    cur = S.stack.vault_current()
    live = S.stack.live_tokens()
    assert cur["recon-d"][1] == {"key": live["recon-d"]["key"],
                                 "intent": "api"}, "recon-d not in Vault"
    assert "recon-skip" not in cur, "an excluded token was written"
    rc, rows, doc = reconcile_json("--dry-run")
    assert rc == 0 and doc["drift"] == 0, \
        "drift after a reconcile: %s" % [r for r in rows.values()
                                         if r["drift"] not in
                                         ("in_sync", "excluded")]
    note("dry run: missing, orphan, excluded reported, no write; reconcile "
         "repaired them; a second dry run found no drift")


@depends("test_reconcile_reports_then_repairs_every_kind")
def test_changes_whose_events_were_dropped_are_repaired():
    plan = S.stack.authentik_faults({"drop_events": True})
    assert plan.get("drop_events") is True, "plan not taken: %s" % plan
    before = S.stack.authentik_stats()
    key = "rot" + akvtest.random_secret(40)
    S.stack.set_key("recon-a", key)
    S.stack.delete_token("recon-b")
    after = S.stack.authentik_stats()
    S.stack.authentik_faults({})
    assert after["events_published"] == before["events_published"], \
        "events were published despite drop_events"
    dropped = after["events_dropped"] - before["events_dropped"]
    assert dropped >= 2, "dropped %d events, wanted one or more for each " \
        "of the two changes" % dropped
    rc, rows, _ = reconcile_json()
    assert rc == 0, "reconcile exited %d" % rc
    assert (rows["recon-a"]["result"], rows["recon-a"]["drift"]) == \
        ("written", "stale_key"), rows["recon-a"]
    assert (rows["recon-b"]["result"], rows["recon-b"]["drift"]) == \
        ("deleted", "orphan"), rows["recon-b"]
    assert S.stack.vault_current()["recon-a"][1]["key"] == key, \
        "recon-a's rotation not in Vault"
    note("a rotation and a deletion with their events dropped: repaired")


@depends("test_reconcile_reports_then_repairs_every_kind")
def test_reconcile_walks_every_page():
    names = ["recon-page-%03d" % i for i in range(130)]
    for n in names:
        S.stack.create_token(n)
    rc, rows, doc = reconcile_json()
    assert rc == 0, "reconcile exited %d" % rc
    missing = [n for n in names if rows.get(n, {}).get("result") != "written"]
    assert not missing, "not written: %s" % missing[:5]
    note("%d tokens over two pages of authentik's list: all written" %
         len(names))


@depends("test_reconcile_reports_then_repairs_every_kind")
def test_token_created_during_a_reconcile_is_no_orphan():
    """A token authentik's list did not have yet, whose secret was written
    before the Vault list was read: its secret is visited as a possible
    orphan, and authentik's answer for it (not the list) decides."""
    live_before = len(S.stack.live_tokens())
    S.stack.vault_faults({"latency_ms": 3000, "scope": "kv_list"})
    before = S.stack.vault_stats()["requests"]
    try:
        proc = subprocess.Popen(
            [akvtest.binary("ak2vault"), "reconcile", "--json", "-c",
             str(S.cfg)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=str(S.rundir.path),
            env=akvtest.child_env({"VAULT_TOKEN": S.stack.vault_token,
                                   "AUTHENTIK_TOKEN":
                                   S.stack.authentik_token}))
        # authentik's list is read, then Vault's token lookup; Vault's
        # list arrives and waits out the latency
        assert akvtest.wait_until(
            lambda: S.stack.vault_stats()["requests"] >= before + 2 or
            proc.poll() is not None, 20), "reconcile never listed Vault"
        assert proc.poll() is None, "reconcile ended before Vault's list"
        S.stack.create_token("recon-late")
        live = S.stack.live_tokens()
        assert len(live) == live_before + 1
        hand_write("recon-late", {"key": live["recon-late"]["key"],
                                  "intent": "api"})
        out, err = proc.communicate(timeout=60)
    finally:
        S.stack.vault_faults({})
    for name, data in (("stdout", out), ("stderr", err)):
        with open(S.rundir.file("ak2vault-reconcile.%s.log" % name),
                  "ab") as f:
            f.write(data)
    assert proc.returncode == 0, "reconcile exited %d" % proc.returncode
    rows = {t["identifier"]: t for t in json.loads(out)["tokens"]}
    late = rows.get("recon-late")
    assert late, "recon-late not visited: it was in Vault's list"
    assert late["result"] == "unchanged" and late["drift"] == "in_sync", \
        "recon-late (created during the reconcile): %s" % late
    cur = S.stack.vault_current()
    assert cur.get("recon-late", (0, None))[1] == {
        "key": live["recon-late"]["key"], "intent": "api"}, \
        "recon-late's secret did not survive the reconcile"
    note("a token created between the two lists: visited as a possible "
         "orphan, authentik answered for it, its secret kept")


# reconcile.max_requests_per_second of the on_start run; the others go
# as fast as the stand-ins answer.
RPS = 50


def run_worker(name, group, exit_at_end=False, **reconcile):
    """`ak2vault run` with \p reconcile settings and a metrics endpoint
    (its port in .port)."""
    port = akvtest.free_port()
    extra = akvtest.merge_settings(akvtest.MOCK_GROUP_WORKAROUND, {
        "vault": {"on_delete": "soft-delete"},
        "match": {"intents": ["api"]},
        "sync": {"retry_initial_ms": 50, "retry_max_ms": 500},
        "reconcile": reconcile,
        "metrics": {"listen": "127.0.0.1:%d" % port}})
    w = S.stack.start_worker(name, group, exit_at_end=exit_at_end,
                             extra=extra)
    w.port = port
    return w


def gauges(w):
    """{metric name or name{label}: value} of w's ak2vault_reconcile_*."""
    try:
        status, _, body = akvtest.http_get_text(
            "http://127.0.0.1:%d/metrics" % w.port, timeout=5)
    except OSError:
        return {}
    if status != 200:
        return {}
    out = {}
    for _, fam in akvtest.parse_exposition(body).items():
        for name, labels, value in fam["samples"]:
            if name.startswith("ak2vault_reconcile_"):
                key = name + "".join("{%s}" % v for v in labels.values())
                out[key] = value
    return out


@depends("test_changes_whose_events_were_dropped_are_repaired")
def test_run_with_on_start_backfills_tokens_without_events():
    S.stack.authentik_faults({"drop_events": True})
    early = ["recon-early-%d" % i for i in range(3)]
    for t in early:
        S.stack.create_token(t)
    S.stack.authentik_faults({})
    w = run_worker("worker-onstart", "ak2vault-recon-onstart",
                   exit_at_end=True, on_start=True, interval_ms=0,
                   max_requests_per_second=RPS)
    rc = w.wait(90)
    if rc is None:
        w.stop(5)
        raise AssertionError("run --exit-at-end with reconcile.on_start "
                             "still running after 90 s")
    assert rc == 0, "worker exited %d: %s" % (rc, w.stderr_tail(3))
    log = w.stderr_text()
    done = re.search(r"reconcile finished in ([0-9.]+) s: visited=([0-9]+)",
                     log)
    assert done, "no finished reconcile in the log"
    seconds, visited = float(done.group(1)), int(done.group(2))
    # each token costs two authentik requests; a few are excluded
    paced = (visited - 5) * 2.0 / RPS
    assert seconds >= paced, "%d tokens reconciled in %.1f s: faster " \
        "than reconcile.max_requests_per_second=%d allows (%.1f s)" % (
            visited, seconds, RPS, paced)
    live = S.stack.live_tokens()
    cur = S.stack.vault_current()
    for t in early:
        assert cur.get(t, (0, None))[1] == {"key": live[t]["key"],
                                            "intent": "api"}, \
            "%s (no event on the topic) not in Vault after run" % t
    note("3 tokens whose events were dropped: in Vault after `run` with "
         "reconcile.on_start (and --exit-at-end waited for it); %d "
         "identifiers in %.1f s at %d requests/s" % (visited, seconds, RPS))


@depends("test_run_with_on_start_backfills_tokens_without_events")
def test_periodic_reconcile_repairs_dropped_changes():
    w = run_worker("worker-periodic", "ak2vault-recon-periodic",
                   interval_ms=1500, max_requests_per_second=100000)
    try:
        assert akvtest.wait_until(
            lambda: gauges(w).get("ak2vault_reconcile_owner") == 1, 30), \
            "the only replica never owned the reconcile"
        S.stack.authentik_faults({"drop_events": True})
        key = "per" + akvtest.random_secret(40)
        S.stack.set_key("recon-early-0", key)
        S.stack.delete_token("recon-early-1")
        S.stack.authentik_faults({})

        def repaired():
            kv = S.stack.vault_kv()
            a = kv.get("authentik/recon-early-0", {})
            b = kv.get("authentik/recon-early-1", {})
            a_cur = a.get("versions", {}).get(str(a.get("current_version")))
            b_cur = b.get("versions", {}).get(str(b.get("current_version")))
            return (a_cur and (a_cur.get("data") or {}).get("key") == key and
                    b_cur and b_cur.get("deletion_time"))
        assert akvtest.wait_until(repaired, 30), \
            "a rotation and a deletion with dropped events not repaired " \
            "within 30 s by a reconcile every 1.5 s"
        g = {}

        def counted():
            g.update(gauges(w))
            return (g.get("ak2vault_reconcile_repaired_total{stale_key}",
                          0) >= 1 and
                    g.get("ak2vault_reconcile_orphans_removed_total", 0) >= 1
                    and g.get("ak2vault_reconcile_last_success_timestamp_"
                              "seconds", 0) > 0)
        assert akvtest.wait_until(counted, 10), \
            "reconcile metrics do not show the repair: %s" % g
        assert g.get("ak2vault_reconcile_drift_total{stale_key}", 0) >= 1 \
            and g.get("ak2vault_reconcile_drift_total{orphan}", 0) >= 1, g
    finally:
        w.stop(15)
    note("rotation and deletion with dropped events: repaired by the "
         "periodic reconcile; drift, repaired and orphans counted")


def runs_ok(w):
    return gauges(w).get("ak2vault_reconcile_runs_total{ok}", 0)


def next_run(w, timeout=60):
    """Waits for w's next successful reconcile to end; @returns fake-vault's
    counters right then (between runs)."""
    before = runs_ok(w)
    assert akvtest.wait_until(lambda: runs_ok(w) > before, timeout), \
        "no reconcile finished within %d s" % timeout
    return S.stack.vault_stats()


@depends("test_reconcile_walks_every_page", "test_periodic_reconcile_"
         "repairs_dropped_changes")
def test_warm_reconcile_reads_metadata_only_and_sees_hand_changes():
    """Once a reconcile has read or written every secret, the next one
    checks each with one metadata read (the version it remembers is still
    current and live) and reads no data; a secret edited, soft-deleted or
    destroyed by hand moved its metadata and is restored."""
    w = run_worker("worker-warm", "ak2vault-recon-warm", interval_ms=2500,
                   on_start=True, max_requests_per_second=100000)
    try:
        next_run(w)  # the first run reads (and writes what is missing)
        a = next_run(w)
        b = next_run(w)
        visited = gauges(w).get("ak2vault_reconcile_tokens", 0)
        reads = b["kv_reads"] - a["kv_reads"]
        writes = b["kv_write_requests"] - a["kv_write_requests"]
        meta = b["metadata_reads"] - a["metadata_reads"]
        assert reads == 0 and writes == 0, \
            "an unchanged estate cost %d data read(s) and %d write(s)" % (
                reads, writes)
        assert 0 < meta <= visited, "%d metadata reads for %d identifiers" % (
            meta, visited)
        g0 = gauges(w)
        forged = "forged" + akvtest.random_secret(20)
        SECRETS.add("token key", forged)
        hand_write("recon-page-000", {"key": forged, "intent": "api"})
        hdr = {"X-Vault-Token": S.stack.vault_token}
        status, _ = akvtest.http_json(
            "DELETE", S.stack.vault_addr + "/v1/kv/data/authentik/"
            "recon-page-001", headers=hdr)
        assert status == 204, "soft delete answered %s" % status
        cur = S.stack.vault_kv()["authentik/recon-page-002"]["current_version"]
        status, _ = akvtest.http_json(
            "POST", S.stack.vault_addr + "/v1/kv/destroy/authentik/"
            "recon-page-002", {"versions": [cur]}, headers=hdr)
        assert status == 204, "destroy answered %s" % status
        next_run(w)
        live = S.stack.live_tokens()
        kv = S.stack.vault_kv()
        for t in ("recon-page-000", "recon-page-001", "recon-page-002"):
            sec = kv["authentik/" + t]
            cur = sec["versions"][str(sec["current_version"])]
            assert not cur.get("deletion_time") and not cur.get(
                "destroyed") and cur.get("data") == {
                    "key": live[t]["key"], "intent": "api"}, \
                "%s not restored after a change by hand" % t
        g1 = gauges(w)
        grew = {k: g1[k] - g0.get(k, 0) for k in g1
                if k.startswith("ak2vault_reconcile_repaired_total") and
                g1[k] != g0.get(k, 0)}
        assert grew == {"ak2vault_reconcile_repaired_total{stale_key}": 1,
                        "ak2vault_reconcile_repaired_total{missing}": 2}, \
            "repairs counted: %s" % grew
    finally:
        w.stop(15)
    note("warm reconcile of %d identifiers: %d metadata reads, 0 data "
         "reads, 0 writes; a hand edit, a soft delete and a destroy were "
         "found and repaired" % (visited, meta))


@depends("test_periodic_reconcile_repairs_dropped_changes")
def test_failed_reconcile_is_retried_later_not_at_once():
    """authentik's token list answers 503: the run fails, is counted and
    logged, and the next one waits (a minute here) instead of spinning."""
    S.stack.authentik_faults({"error_rates": {"503": 1.0}, "scope": "list"})
    w = run_worker("worker-listfail", "ak2vault-recon-listfail",
                   interval_ms=0, on_start=True)
    try:
        assert akvtest.wait_until(
            lambda: gauges(w).get("ak2vault_reconcile_runs_total{failed}",
                                  0) >= 1, 30), "no failed reconcile counted"
        time.sleep(3)
        g = gauges(w)
        assert g.get("ak2vault_reconcile_runs_total{failed}") == 1 and \
            g.get("ak2vault_reconcile_running") == 0, \
            "a failing reconcile was retried at once: %s" % g
        assert g.get("ak2vault_reconcile_last_success_timestamp_seconds") \
            == 0, g
        assert "cannot list: authentik's token list" in w.stderr_text(), \
            "the failure is not logged"
    finally:
        S.stack.authentik_faults({})
        w.stop(15)
    note("authentik's list refused: one failed run counted and logged, "
         "none again within 3 s")


def owners(workers):
    return {w.name: gauges(w).get("ak2vault_reconcile_owner")
            for w in workers if w.running()}


@depends("test_periodic_reconcile_repairs_dropped_changes")
def test_one_of_three_replicas_reconciles_and_hands_over():
    group = "ak2vault-recon-replicas"
    ws = [run_worker("replica-%d" % i, group, interval_ms=1000,
                     on_start=True, max_requests_per_second=100000)
          for i in range(3)]
    try:
        def settled():
            o = owners(ws)
            return (all(v is not None for v in o.values()) and
                    sorted(o.values()) == [0, 0, 1] and all(
                        gauges(w).get("ak2vault_reconcile_runs_total{ok}",
                                      0) >= 1 for w in ws
                        if o[w.name] == 1))
        assert akvtest.wait_until(settled, 60), \
            "three replicas never settled on one reconcile owner: %s" % \
            owners(ws)
        owner = next(w for w in ws if owners(ws)[w.name] == 1)
        others = [w for w in ws if w is not owner]
        runs = {w.name: gauges(w).get("ak2vault_reconcile_runs_total{ok}",
                                      0) for w in ws}
        for _ in range(10):
            time.sleep(0.5)
            o = owners(ws)
            assert sorted(o.values()) == [0, 0, 1] and \
                o[owner.name] == 1, "owners changed: %s" % o
            for w in others:
                assert gauges(w).get("ak2vault_reconcile_running") == 0, \
                    "%s reconciles without owning partition 0" % w.name
        after = {w.name: gauges(w).get("ak2vault_reconcile_runs_total{ok}",
                                       0) for w in ws}
        assert after[owner.name] > runs[owner.name], \
            "the owner did not reconcile every second: %s -> %s" % (
                runs, after)
        assert all(after[w.name] == runs[w.name] for w in others), \
            "a replica without partition 0 reconciled: %s -> %s" % (
                runs, after)
        owner.stop(20)
        before = {w.name: gauges(w).get("ak2vault_reconcile_runs_total{ok}",
                                        0) for w in others}

        def handed_over():
            o = owners(others)
            return sorted(o.values()) == [0, 1] and any(
                gauges(w).get("ak2vault_reconcile_runs_total{ok}", 0) >
                before[w.name] for w in others if o[w.name] == 1)
        assert akvtest.wait_until(handed_over, 60), \
            "no replica took the reconcile over after %s left: %s" % (
                owner.name, owners(others))
        note("3 replicas: only %s reconciled (gauges and runs); after it "
             "left, %s took over" % (owner.name, next(
                 w.name for w in others if owners(others)[w.name] == 1)))
    finally:
        for w in ws:
            w.stop(15)


@depends("test_periodic_reconcile_repairs_dropped_changes")
def test_reconcile_and_events_never_roll_a_key_back():
    book = KeyBook(S.stack)
    idents = ["recon-load-%d" % i for i in range(8)]
    for t in idents:
        book.create(t)
    w = run_worker("worker-load", "ak2vault-recon-load", interval_ms=200,
                   on_start=True, max_requests_per_second=100000)
    try:
        assert akvtest.wait_until(
            lambda: gauges(w).get("ak2vault_reconcile_runs_total{ok}", 0)
            >= 1, 60), "no reconcile finished"
        before = gauges(w).get("ak2vault_reconcile_runs_total{ok}", 0)
        for _ in range(12):
            for t in idents:
                book.set_key(t)
            time.sleep(0.05)
        during = gauges(w).get("ak2vault_reconcile_runs_total{ok}", 0)
        assert during > before, "no reconcile ran while the keys rotated"
        live = S.stack.live_tokens()

        def converged():
            cur = S.stack.vault_current()
            return all(cur.get(t, (0, None))[1] == {
                "key": live[t]["key"], "intent": "api"} for t in idents)
        assert akvtest.wait_until(converged, 60), \
            "Vault did not converge on the last keys"
        runs = during - before
    finally:
        w.stop(15)
    counts = version_audit(S.stack, book.keys)
    note("8 tokens rotated 12 times while reconciles ran every 0.2 s "
         "(%d finished meanwhile): no key rolled back, %d versions in all" % (
             runs, sum(counts.values())))


@depends("test_reconcile_walks_every_page")
def test_dry_run_reports_every_kind_of_drift():
    """One token of each kind; the dry run names each and writes nothing,
    the real run repairs each, and a dry run after it finds none."""
    kinds = {"drift-missing": "missing", "drift-stale": "stale_key",
             "drift-intent": "intent_differs", "drift-fields": "fields_differ",
             "drift-orphan": "orphan", "drift-excluded": "excluded"}
    S.stack.authentik_faults({"drop_events": True})
    try:
        for t in kinds:
            if t != "drift-orphan":
                S.stack.create_token(
                    t, intent="app_password" if t == "drift-excluded"
                    else "api")
    finally:
        S.stack.authentik_faults({})
    live = S.stack.live_tokens()
    forged = "forged" + akvtest.random_secret(20)
    SECRETS.add("token key", forged)
    hand_write("drift-stale", {"key": forged, "intent": "api"})
    hand_write("drift-intent", {"key": live["drift-intent"]["key"],
                                "intent": "app_password"})
    hand_write("drift-fields", {"key": live["drift-fields"]["key"],
                                "intent": "api", "note": "added by hand"})
    hand_write("drift-orphan", {"key": forged, "intent": "api"})
    before = len(vault_writes())
    rc, rows, doc = reconcile_json("--dry-run")
    assert rc == 2, "dry run with drift exited %d" % rc
    got = {t: rows.get(t, {}).get("drift") for t in kinds}
    assert got == kinds, "dry run reported %s, wanted %s" % (got, kinds)
    assert len(vault_writes()) == before, "the dry run wrote to Vault"
    rc, out = command("reconcile", "--dry-run")
    assert rc == 2 and all(k in out for k in kinds.values()), \
        "the table lacks a kind: %s" % out
    rc, rows, doc = reconcile_json()
    assert rc == 0, "reconcile exited %d" % rc
    rc, rows, doc = reconcile_json("--dry-run")
    left = {t: rows.get(t, {}).get("drift") for t in kinds
            if rows.get(t, {}).get("drift") not in ("in_sync", "excluded")}
    assert rc == 0 and not left, "drift left after reconcile: %s" % left
    note("missing, stale_key, intent_differs, fields_differ, orphan and "
         "excluded: each reported by the dry run (no Vault write), "
         "repaired by reconcile")


def test_no_secret_in_any_output():
    if S.stack:
        S.stack.stop()
    akvtest.assert_no_secrets(S.rundir.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "reconcile", setup=setup,
                      teardown=teardown)
