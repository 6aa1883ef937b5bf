#!/usr/bin/python3
"""The alerting rules under Prometheus's own tools: promtool's rule unit
tests, and a real Prometheus server scraping a running worker.

  1. `promtool check rules` accepts docker/prometheus/alerts.yaml and
     `promtool test rules` passes docker/prometheus/alerts_test.yaml;
  2. every alert of alerts.yaml has, in alerts_test.yaml, a case where it
     fires (at or after its `for:`, with its severity and every annotation)
     and a case where it stays quiet; no case names an unknown alert (a
     quiet case for a misspelt name would pass without testing anything);
  3. the cases can fail: for each alert, a copy of alerts.yaml in which
     only that alert's expression can never fire, run with the test groups
     that name it, makes exactly its firing cases fail (one promtool run
     per alert); a copy in which every alert fires all the time makes every
     quiet case fail;
  4. a Prometheus server scrapes a worker with prometheus.yml's `ak2vault`
     job (only its targets rewritten, to the worker; 1 s intervals; no
     alertmanager) and loads a copy of alerts.yaml. The worker first syncs
     the tokens created and commits; then fake-authentik refuses every API
     request (403) and tokens are rotated (no API call, one event each):
     each partition's first new event is held as a configuration error and
     nothing after it is committed, so the lag in messages is the number
     of rotations. The target is up; the lag Prometheus stores per
     partition (grouped as the lag alerts group it) is what the worker's
     /metrics and `ak2vault lag` report, and the committed offsets did not
     move; the lag in seconds Prometheus stores lies within what the
     worker reported just before and after;
  5. every alert of alerts.yaml is loaded with its `for:` and severity and
     evaluated with health "ok"; on the real series AK2VaultPartitionStalled
     is pending for both partitions and AK2VaultNotReady for the worker,
     and no other alert is pending or firing;
  6. no secret in any output.

Debian 12's prometheus package (2.42) provides both binaries.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import REPO, depends, note  # noqa: E402

try:
    import yaml  # python3-yaml (Debian), installed by `make deps`
except ImportError:  # reported by the tests that need it
    yaml = None

ALERTS = REPO / "docker" / "prometheus" / "alerts.yaml"
ALERTS_TEST = REPO / "docker" / "prometheus" / "alerts_test.yaml"
PROMETHEUS_YML = REPO / "docker" / "prometheus" / "prometheus.yml"
JOB = "ak2vault"
GROUP = "ak2vault-prometheus"
TOKENS = 9
PARTITIONS = 2
# An expression that can never return anything, and one that always does.
NEVER = "vector(0) > 1"
ALWAYS = "vector(1)"

S = SimpleNamespace(rundir=None, stack=None, worker=None, port=None,
                    prom=None, prom_url=None, rules=None, tests=None)


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.prom is not None:
        S.prom.stop()
    if S.stack is not None:
        S.stack.stop()


def tool(name):
    path = shutil.which(name)
    assert path, "%s not installed (make deps installs Debian's " \
        "prometheus package)" % name
    return path


def need_yaml():
    assert yaml is not None, "PyYAML is missing (apt-get install " \
        "python3-yaml, or `make deps`)"


# ---------------------------------------------------------------------------
# The two files


_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400,
           "w": 604800, "y": 31536000}


def seconds(text):
    """A Prometheus duration ("90m", "12h31m", "0s") in seconds."""
    text = str(text).strip()
    parts = _DURATION_PART.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, \
        "not a duration: %r" % text
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def alert_rules():
    """{alert name: rule} of alerts.yaml."""
    if S.rules is None:
        need_yaml()
        doc = yaml.safe_load(ALERTS.read_text())
        S.rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]
                   if "alert" in r}
    return S.rules


def alerts_test_doc():
    if S.tests is None:
        need_yaml()
        S.tests = yaml.safe_load(ALERTS_TEST.read_text())
    return S.tests


def cases(doc):
    """Every alert_rule_test entry: (group name, alertname, eval seconds,
    expected alerts)."""
    out = []
    for g in doc.get("tests") or []:
        for c in g.get("alert_rule_test") or []:
            out.append((g.get("name"), c.get("alertname"),
                        seconds(c.get("eval_time", "0s")),
                        c.get("exp_alerts") or []))
    return out


_FAILED_CASE = re.compile(r"alertname: (\S+), time: (\S+),")


def promtool_test(test_file, cwd):
    """Runs `promtool test rules`. @returns (exit status, output, the set of
    failing (alertname, eval seconds))."""
    r = subprocess.run([tool("promtool"), "test", "rules", str(test_file)],
                       capture_output=True, timeout=120, cwd=str(cwd),
                       stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode(errors="replace")
    failed = {(m.group(1), seconds(m.group(2)))
              for m in _FAILED_CASE.finditer(out)}
    return r.returncode, out, failed


def mutated_run(rules_doc, tests_doc, cwd_name):
    """Writes rules_doc as alerts.yaml and tests_doc as alerts_test.yaml in a
    subdirectory of the run directory, and runs promtool on them."""
    d = S.rundir.sub(cwd_name)
    d.write("alerts.yaml", yaml.safe_dump(rules_doc, sort_keys=False))
    path = d.write("alerts_test.yaml", yaml.safe_dump(tests_doc,
                                                      sort_keys=False))
    return promtool_test(path, d.path)


# ---------------------------------------------------------------------------


def test_promtool_checks_and_tests_the_rules():
    r = subprocess.run([tool("promtool"), "check", "rules", str(ALERTS)],
                       capture_output=True, timeout=60, cwd=str(S.rundir.path),
                       stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, "promtool check rules: %s" % out.strip()[-500:]
    m = re.search(r"SUCCESS: (\d+) rules found", out)
    assert m and int(m.group(1)) == len(alert_rules()), \
        "promtool found %s rules, alerts.yaml has %d alerts" % (
            m and m.group(1), len(alert_rules()))
    rc, out, failed = promtool_test(ALERTS_TEST, S.rundir.path)
    assert rc == 0 and "SUCCESS" in out, "promtool test rules %s failed " \
        "(%s): %s" % (ALERTS_TEST.relative_to(REPO), sorted(failed) or
                      "no case named", out.strip()[-1500:])
    note("promtool: %d alerts, %d cases pass" % (
        len(alert_rules()), len(cases(alerts_test_doc()))))


def test_every_alert_has_a_firing_and_a_quiet_case():
    rules, doc = alert_rules(), alerts_test_doc()
    problems = []
    if doc.get("rule_files") != ["alerts.yaml"]:
        problems.append("rule_files is %r, not [alerts.yaml] (the file "
                        "next to it)" % doc.get("rule_files"))
    firing, quiet = {}, {}
    for group, name, at, exp in cases(doc):
        if name not in rules:
            problems.append("%s: a case for %r, which alerts.yaml does not "
                            "have" % (group, name))
            continue
        rule = rules[name]
        if not exp:
            quiet.setdefault(name, []).append(at)
            continue
        firing.setdefault(name, []).append(at)
        if at < seconds(rule.get("for", "0s")):
            problems.append("%s: %s expected to fire at %ds, before its "
                            "for: %s" % (group, name, at, rule.get("for")))
        for a in exp:
            sev = (a.get("exp_labels") or {}).get("severity")
            if sev != rule["labels"]["severity"]:
                problems.append("%s: %s at %ds expects severity %r" % (
                    group, name, at, sev))
            want = set(rule.get("annotations") or {})
            got = set(a.get("exp_annotations") or {})
            if got != want:
                problems.append("%s: %s at %ds checks annotations %s, not "
                                "%s" % (group, name, at, sorted(got),
                                        sorted(want)))
    for name in rules:
        if not firing.get(name):
            problems.append("%s has no case where it fires" % name)
        if not quiet.get(name):
            problems.append("%s has no case where it stays quiet" % name)
    assert not problems, "; ".join(problems)
    note("%d alerts: %d firing and %d quiet cases" % (
        len(rules), sum(map(len, firing.values())),
        sum(map(len, quiet.values()))))


@depends("test_promtool_checks_and_tests_the_rules",
         "test_every_alert_has_a_firing_and_a_quiet_case")
def test_firing_cases_fail_when_the_alert_cannot_fire():
    """One promtool run per alert, on the test groups that name it: its
    firing cases, and only those, fail."""
    rules_src = yaml.safe_load(ALERTS.read_text())
    doc = alerts_test_doc()
    problems = []
    for name in alert_rules():
        rules_doc = yaml.safe_load(yaml.safe_dump(rules_src))
        for g in rules_doc["groups"]:
            for r in g["rules"]:
                if r.get("alert") == name:
                    r["expr"] = NEVER
        groups = [g for g in doc["tests"]
                  if any(c.get("alertname") == name
                         for c in g.get("alert_rule_test") or [])]
        want = {(name, at) for _, n, at, exp in cases({"tests": groups})
                if n == name and exp}
        rc, out, failed = mutated_run(rules_doc, dict(doc, tests=groups),
                                      "never-" + name)
        if rc == 0:
            problems.append("%s: promtool passed with an expression that "
                            "never fires" % name)
        elif not want <= failed:
            problems.append("%s: firing cases %s did not fail (failed: %s; "
                            "%s)" % (name, sorted(want - failed),
                                     sorted(failed), out.strip()[-300:]))
        elif failed != want:
            problems.append("%s: cases that should still pass failed too: "
                            "%s" % (name, sorted(failed - want)))
    assert not problems, "; ".join(problems)
    note("each of the %d alerts' firing cases fail once it cannot fire" %
         len(alert_rules()))


@depends("test_promtool_checks_and_tests_the_rules",
         "test_every_alert_has_a_firing_and_a_quiet_case")
def test_quiet_cases_fail_when_the_alerts_always_fire():
    rules_doc = yaml.safe_load(ALERTS.read_text())
    for g in rules_doc["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                r["expr"] = ALWAYS
                r["for"] = "0m"
    doc = alerts_test_doc()
    want = {(n, at) for _, n, at, exp in cases(doc) if not exp}
    rc, out, failed = mutated_run(rules_doc, doc, "always")
    assert rc != 0, "promtool passed with alerts that always fire"
    missed = sorted(want - failed)
    assert not missed, "quiet cases that did not fail: %s (%s)" % (
        missed, out.strip()[-300:])
    note("all %d quiet cases fail once the alerts always fire" % len(want))


# ---------------------------------------------------------------------------
# A real Prometheus server


def prom_get(path, **params):
    """GET on the Prometheus HTTP API; @returns its "data"."""
    url = S.prom_url + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    status, body = akvtest.http_json("GET", url, timeout=10)
    assert status == 200 and isinstance(body, dict) and \
        body.get("status") == "success", "GET %s: %s %s" % (
            path, status, str(body)[:300])
    return body["data"]


def prom_query(expr):
    """An instant query; @returns [(labels, float value)]."""
    data = prom_get("/api/v1/query", query=expr)
    assert data["resultType"] == "vector", data["resultType"]
    return [(r["metric"], float(r["value"][1])) for r in data["result"]]


def scrape_worker():
    status, _, body = akvtest.http_get_text(
        "http://127.0.0.1:%d/metrics" % S.port)
    assert status == 200, "the worker's /metrics answered %s" % status
    return akvtest.parse_exposition(body)


def per_partition(fams, name):
    return {lab["partition"]: v for s, lab, v in fams[name]["samples"]
            if s == name and lab.get("topic") == akvtest.TOPIC}


def prometheus_config(target):
    """prometheus.yml with its ak2vault job's targets set to \\p target,
    1 s intervals and no alertmanager; everything else as written."""
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = [j for j in cfg.get("scrape_configs") or []
            if j.get("job_name") == JOB]
    assert len(jobs) == 1, "prometheus.yml has %d jobs named %s" % (
        len(jobs), JOB)
    statics = jobs[0].get("static_configs") or []
    assert len(statics) == 1 and statics[0].get("targets"), \
        "the %s job has no single static_configs entry with targets" % JOB
    statics[0]["targets"] = [target]
    assert cfg.get("rule_files") == ["alerts.yaml"], \
        "prometheus.yml loads %r, not alerts.yaml" % cfg.get("rule_files")
    cfg.pop("alerting", None)
    cfg.setdefault("global", {}).update(scrape_interval="1s",
                                        evaluation_interval="1s")
    return cfg


def start_prometheus(target):
    """Prometheus with prometheus_config(target) and a copy of alerts.yaml
    in a subdirectory of the run directory; waits until it is ready."""
    prometheus = tool("prometheus")
    d = S.rundir.sub("prometheus")
    d.write("prometheus.yml", yaml.safe_dump(prometheus_config(target),
                                             sort_keys=False))
    d.write("alerts.yaml", ALERTS.read_text())
    data = d.sub("data")
    port = akvtest.free_port()
    S.prom_url = "http://127.0.0.1:%d" % port
    S.prom = akvtest.Proc("prometheus", [
        prometheus, "--config.file=%s" % d.file("prometheus.yml"),
        "--storage.tsdb.path=%s" % data.path,
        "--web.listen-address=127.0.0.1:%d" % port,
        "--web.console.templates=%s" % d.path,
        "--web.console.libraries=%s" % d.path], S.rundir)

    def ready():
        if not S.prom.running():
            return True
        return akvtest.http_get_text(S.prom_url + "/-/ready", 2)[0] == 200
    assert akvtest.wait_until(ready, 30) and S.prom.running(), \
        "prometheus did not get ready: %s" % S.prom.stderr_tail(5)


def worker_settled():
    """Caught up, nothing pending, and no event arrived meanwhile (each
    sync's read of a key makes fake-authentik publish an event of its
    own). @returns the group's partitions from `ak2vault lag`."""
    deadline = time.monotonic() + 40
    while True:
        before = S.stack.lag(GROUP)["partitions"]

        def caught_up():
            fams = scrape_worker()
            lag = per_partition(fams, "ak2vault_consumer_lag_messages")
            ends = per_partition(fams, "ak2vault_end_offset")
            return len(lag) == PARTITIONS and not any(lag.values()) and \
                akvtest.sample(fams, "ak2vault_syncs_pending") == 0 and \
                all(ends.get(str(p["partition"]), -1) >= p["end"]
                    for p in before)
        ok = akvtest.wait_until(caught_up, max(1, deadline - time.monotonic()))
        assert ok, "the worker did not catch up: %s" % S.worker.stderr_tail(3)
        after = S.stack.lag(GROUP)["partitions"]
        if [p["end"] for p in after] == [p["end"] for p in before]:
            return after
        assert time.monotonic() < deadline, "events kept arriving"


def test_prometheus_scrapes_the_worker_and_sees_its_lag():
    need_yaml()
    S.stack = akvtest.Stack(S.rundir, partitions=PARTITIONS)
    idents = ["prom-tok-%02d" % i for i in range(TOKENS)]
    for ident in idents:
        S.stack.create_token(ident)
    S.port = akvtest.free_port()
    S.worker = S.stack.start_worker("worker-p", GROUP, extra=akvtest.
                                    merge_settings(
        akvtest.MOCK_GROUP_WORKAROUND,
        {"metrics": {"listen": "127.0.0.1:%d" % S.port,
                     "lag_interval_ms": 300, "stall_timeout_ms": 1000},
         "sync": {"config_retry_ms": 500}}))
    target = "127.0.0.1:%d" % S.port
    start_prometheus(target)

    def target_up():
        for t in prom_get("/api/v1/targets")["activeTargets"]:
            if t["labels"].get("job") == JOB and \
                    t["labels"].get("instance") == target and \
                    t["scrapeUrl"] == "http://%s/metrics" % target and \
                    t["health"] == "up":
                return t
        return None
    t = akvtest.wait_until(target_up, 30, interval=0.5)
    assert t, "no %s target %s up: %s" % (
        JOB, target, [(x["scrapePool"], x["scrapeUrl"], x["health"],
                       x.get("lastError"))
                      for x in prom_get("/api/v1/targets")["activeTargets"]])
    up = prom_query('up{job=~"ak2vault.*"}')
    assert [(m.get("instance"), v) for m, v in up] == [(target, 1.0)], up

    # The tokens are in Vault and their offsets committed. Then every
    # authentik API request is refused (403): each partition's first new
    # event is held as a configuration error and nothing after it is
    # committed, while rotations (not API calls) keep publishing events.
    # Rotate until both partitions hold some.
    settled = {p["partition"]: p for p in worker_settled()}
    assert sum(p["committed"] for p in settled.values()) >= TOKENS, settled
    S.stack.authentik_faults({"deny_status": 403})
    rotated = 0
    while True:
        S.stack.rotate(idents[rotated % TOKENS])
        rotated += 1
        if rotated >= 4 and all(
                p["end"] > settled[p["partition"]]["end"]
                for p in S.stack.lag(GROUP)["partitions"]):
            break
        assert rotated < 40, "40 rotations did not reach both partitions"

    # The backlog, grouped the way the lag alerts group it.
    lag_expr = "max by (job, topic, partition) " \
        "(ak2vault_consumer_lag_messages)"
    last = []

    def backlog_seen():
        last[:] = [prom_query(lag_expr)]
        vals = last[0]
        return len(vals) == PARTITIONS and \
            sum(v for _, v in vals) == rotated and all(v > 0 for _, v in vals)
    assert akvtest.wait_until(backlog_seen, 30, interval=0.5), \
        "Prometheus never saw the %d held events as lag: %s (worker: %s)" % (
            rotated, last and last[0], S.worker.stderr_tail(3))
    stored = {m["partition"]: v for m, v in last[0]}
    assert all(m.get("job") == JOB and m.get("topic") == akvtest.TOPIC
               for m, _ in last[0]), last[0]
    own = per_partition(scrape_worker(), "ak2vault_consumer_lag_messages")
    group = S.stack.lag(GROUP)["partitions"]
    cli = {str(p["partition"]): float(p["lag"]) for p in group}
    assert stored == own == cli, "lag per partition: Prometheus %s, the " \
        "worker's /metrics %s, ak2vault lag %s" % (stored, own, cli)
    # Nothing new was committed: the lag is the held events, not the log.
    assert [(p["committed"], p["end"] - p["committed"]) for p in group] == \
        [(settled[p["partition"]]["committed"], stored[str(p["partition"])])
         for p in group], "offsets %s, settled at %s" % (group, settled)

    # Lag in seconds grows with the held events' age: what Prometheus
    # stored lies between what the worker said a while before and after.
    before = per_partition(scrape_worker(), "ak2vault_consumer_lag_seconds")
    time.sleep(1.5)
    secs = {m["partition"]: v for m, v in prom_query(
        "max by (job, topic, partition) (ak2vault_consumer_lag_seconds)")}
    after = per_partition(scrape_worker(), "ak2vault_consumer_lag_seconds")
    bad = ["partition %s: %.2f not in [%.2f, %.2f]" % (
        p, secs.get(p, -1), before[p] - 3, after[p])
        for p in before if not before[p] - 3 <= secs.get(p, -1) <= after[p]
        or not secs.get(p, 0) > 0]
    assert sorted(secs) == sorted(before) and not bad, \
        "lag seconds %s: %s" % (secs, "; ".join(bad))
    note("Prometheus scraped %s as job %s: lag %s messages after %d "
         "rotations (= /metrics = ak2vault lag; committed %s), oldest event "
         "%s s" % (target, JOB,
                   {p: int(v) for p, v in sorted(stored.items())}, rotated,
                   {p["partition"]: p["committed"] for p in group},
                   {p: round(v, 1) for p, v in sorted(secs.items())}))


@depends("test_prometheus_scrapes_the_worker_and_sees_its_lag")
def test_prometheus_evaluates_every_alert_on_the_worker():
    rules = alert_rules()
    last = []

    def all_evaluated():
        got = {}
        for g in prom_get("/api/v1/rules")["groups"]:
            for r in g["rules"]:
                if r.get("type") == "alerting":
                    got[r["name"]] = r
        last[:] = [got]
        return set(got) == set(rules) and \
            all(r.get("health") == "ok" for r in got.values())
    ok = akvtest.wait_until(all_evaluated, 20, interval=0.5)
    got = last[0] if last else {}
    assert ok, "alerting rules loaded: missing %s, unknown %s, not ok: %s" % (
        sorted(set(rules) - set(got)), sorted(set(got) - set(rules)),
        ["%s: %s %s" % (n, r.get("health"), r.get("lastError"))
         for n, r in sorted(got.items()) if r.get("health") != "ok"])
    problems = []
    for name, r in got.items():
        want = rules[name]
        if r.get("duration") != seconds(want.get("for", "0s")):
            problems.append("%s: for %ss, alerts.yaml says %s" % (
                name, r.get("duration"), want.get("for")))
        if (r.get("labels") or {}).get("severity") != \
                want["labels"]["severity"]:
            problems.append("%s: severity %r" % (
                name, (r.get("labels") or {}).get("severity")))
    assert not problems, "; ".join(problems)

    # The worker's partitions are stalled and it is unready: those rules
    # are pending on the real series (their for: keeps them from firing).
    target = "127.0.0.1:%d" % S.port
    want = {("AK2VaultPartitionStalled", "partition", str(p))
            for p in range(PARTITIONS)} | \
        {("AK2VaultNotReady", "instance", target)}
    seen = []

    def pending():
        alerts = prom_get("/api/v1/alerts")["alerts"]
        seen[:] = [alerts]
        have = {(a["labels"]["alertname"], k, a["labels"].get(k))
                for a in alerts if a["state"] == "pending"
                for _, k, _ in want}
        return want <= have
    ok = akvtest.wait_until(pending, 20, interval=0.5)
    alerts = seen[0] if seen else []
    summary = sorted((a["labels"]["alertname"], a["state"],
                      a["labels"].get("partition") or
                      a["labels"].get("instance")) for a in alerts)
    assert ok, "pending alerts %s, wanted %s" % (summary, sorted(want))
    for a in alerts:
        if a["labels"]["alertname"] == "AK2VaultPartitionStalled":
            assert a["labels"].get("job") == JOB and \
                a["labels"].get("topic") == akvtest.TOPIC, a["labels"]
    # The other eleven stay quiet on this worker: its upstreams answer
    # (a 403 is no upstream failure), nothing is dead-lettered or failing
    # to commit, its root token never expires, no reconcile ran.
    others = [s for s in summary if s[0] not in {n for n, _, _ in want}
              or s[1] != "pending"]
    assert not others, "other alerts active on the worker: %s" % (others,)
    note("%d alerting rules evaluated with health ok; pending: %s" % (
        len(got), summary))


def test_no_secret_in_outputs():
    akvtest.assert_no_secrets(S.rundir.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "prometheus", setup=setup,
                      teardown=teardown)
