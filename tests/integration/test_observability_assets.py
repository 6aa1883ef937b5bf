#!/usr/bin/python3
"""The Grafana dashboard and Prometheus rules under docker/ against what
the worker really exports.

Every JSON and YAML file under docker/ and configs/ must parse; the
dashboard must carry what Grafana needs to import it; every alert must
have its name, expression, duration, severity and annotations. Then every
metric name any PromQL expression uses (dashboard targets, variables and
annotations, alert rules) is looked up among the families a real worker
exports: a worker is started with metrics.listen on a free port, its
/metrics is read, and the family names and types come from its "# TYPE"
lines. Unknown names fail, and so does a name used with the wrong suffix
for its type (rate() of a gauge, deriv() of a counter, a histogram
without _bucket/_sum/_count, histogram_quantile() of anything but
buckets).

The name extraction and checks are also run, offline, against a
hand-written exposition of the families the worker is specified to
export, and against small samples that must be refused.
"""
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import REPO, note  # noqa: E402

try:
    import yaml  # python3-yaml (Debian), installed by `make deps`
except ImportError:  # reported by test_assets_parse
    yaml = None

DASHBOARD = REPO / "docker" / "grafana" / "ak2vault-dashboard.json"
ALERTS = REPO / "docker" / "prometheus" / "alerts.yaml"
PROMETHEUS = REPO / "docker" / "prometheus" / "prometheus.yml"

RUN = None
STACK = None

# The families the worker is specified to export, as its /metrics shows
# them (classic text format: a counter's TYPE line names the _total
# sample). A few samples are given so the exposition is realistic; only
# the TYPE lines matter.
SPEC_EXPOSITION = """\
# HELP ak2vault_events_consumed_total Kafka messages taken from the topic.
# TYPE ak2vault_events_consumed_total counter
ak2vault_events_consumed_total 12
# TYPE ak2vault_events_skipped_total counter
# TYPE ak2vault_events_matched_total counter
# TYPE ak2vault_events_invalid_total counter
# TYPE ak2vault_syncs_total counter
ak2vault_syncs_total{result="written"} 3
# TYPE ak2vault_sync_retries_total counter
# TYPE ak2vault_dlq_messages_total counter
# TYPE ak2vault_upstream_requests_total counter
ak2vault_upstream_requests_total{upstream="vault",status="200"} 5
# TYPE ak2vault_rebalances_total counter
# TYPE ak2vault_commits_total counter
# TYPE ak2vault_sync_latency_seconds histogram
ak2vault_sync_latency_seconds_bucket{le="0.1"} 1
ak2vault_sync_latency_seconds_bucket{le="+Inf"} 3
ak2vault_sync_latency_seconds_sum 0.7
ak2vault_sync_latency_seconds_count 3
# TYPE ak2vault_upstream_request_duration_seconds histogram
# TYPE ak2vault_syncs_in_flight gauge
# TYPE ak2vault_syncs_pending gauge
# TYPE ak2vault_assigned_partitions gauge
# TYPE ak2vault_committed_offset gauge
# TYPE ak2vault_end_offset gauge
# TYPE ak2vault_consumer_lag_messages gauge
# TYPE ak2vault_consumer_lag_seconds gauge
# TYPE ak2vault_partition_stalled gauge
# TYPE ak2vault_upstream_up gauge
# TYPE ak2vault_ready gauge
# TYPE ak2vault_vault_token_ttl_seconds gauge
ak2vault_vault_token_ttl_seconds +Inf
# TYPE ak2vault_vault_token_lease_seconds gauge
ak2vault_vault_token_lease_seconds +Inf
# TYPE ak2vault_build_info gauge
ak2vault_build_info{version="0.1.0",librdkafka="2.0.2"} 1
# TYPE ak2vault_start_time_seconds gauge
# TYPE ak2vault_reconcile_owner gauge
# TYPE ak2vault_reconcile_running gauge
# TYPE ak2vault_reconcile_last_success_timestamp_seconds gauge
# TYPE ak2vault_reconcile_duration_seconds gauge
# TYPE ak2vault_reconcile_tokens gauge
# TYPE ak2vault_reconcile_runs_total counter
# TYPE ak2vault_reconcile_drift_total counter
# TYPE ak2vault_reconcile_repaired_total counter
# TYPE ak2vault_reconcile_orphans_removed_total counter
# TYPE ak2vault_kafka_broker_rtt_seconds gauge
# TYPE ak2vault_kafka_fetch_queue_messages gauge
# TYPE ak2vault_kafka_fetch_queue_bytes gauge
# TYPE process_cpu_seconds_total counter
# TYPE process_resident_memory_bytes gauge
# TYPE process_virtual_memory_bytes gauge
# TYPE process_open_fds gauge
# TYPE process_max_fds gauge
# TYPE process_start_time_seconds gauge
"""

# What the dashboard must show (issue 5 part 7), as families it must use.
DASHBOARD_MUST_USE = (
    "ak2vault_events_consumed_total", "ak2vault_events_matched_total",
    "ak2vault_syncs_total", "ak2vault_sync_latency_seconds",
    "ak2vault_upstream_requests_total",
    "ak2vault_upstream_request_duration_seconds",
    "ak2vault_sync_retries_total", "ak2vault_dlq_messages_total",
    "ak2vault_syncs_in_flight", "ak2vault_syncs_pending",
    "ak2vault_consumer_lag_messages", "ak2vault_consumer_lag_seconds",
    "ak2vault_committed_offset", "ak2vault_assigned_partitions",
    "ak2vault_rebalances_total", "ak2vault_partition_stalled",
    "ak2vault_vault_token_ttl_seconds", "ak2vault_ready",
    "ak2vault_reconcile_last_success_timestamp_seconds",
    "ak2vault_reconcile_drift_total", "ak2vault_reconcile_repaired_total",
)

REQUIRED_ALERTS = (
    "AK2VaultLagGrowing", "AK2VaultPartitionStalled", "AK2VaultDeadLetters",
    "AK2VaultUpstreamErrors", "AK2VaultVaultTokenExpiring",
    "AK2VaultNotReady", "AK2VaultDown", "AK2VaultRebalanceStorm",
    "AK2VaultReconcileFailing", "AK2VaultReconcileStale",
)


# ---------------------------------------------------------------------------
# PromQL names


NAME_RE = re.compile(r"(?<![A-Za-z0-9_:])ak2vault_[a-zA-Z0-9_:]*")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# Functions whose argument must be a counter (or a histogram's
# _bucket/_sum/_count, which are counters), and those that only make
# sense on gauges.
COUNTER_FUNCS = ("rate", "irate", "increase", "resets")
GAUGE_FUNCS = ("deriv", "delta", "idelta", "predict_linear", "holt_winters",
               "double_exponential_smoothing")
FUNC_RE = re.compile(r"(?<![A-Za-z0-9_:])(%s)\s*\(" % "|".join(
    COUNTER_FUNCS + GAUGE_FUNCS + ("histogram_quantile",)))


def strip_strings(expr):
    """PromQL without its string literals (label values, regexes): a
    label value that happens to start with ak2vault_ is not a metric."""
    return STRING_RE.sub('""', expr)


def metric_names(expr):
    return set(NAME_RE.findall(strip_strings(expr)))


def calls(expr):
    """[(function, argument text)] for the functions the type checks care
    about, nested calls included."""
    text = strip_strings(expr)
    out = []
    for m in FUNC_RE.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out.append((m.group(1), text[m.end():i]))
    return out


def parse_types(exposition):
    """{family: type} from the "# TYPE name type" lines."""
    types = {}
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            types[parts[2]] = parts[3]
    return types


def sample_kinds(types):
    """{sample name: (family, kind)}; kind is counter, gauge, bucket, sum,
    count or untyped. A histogram's bare family name maps to kind
    "histogram" (not a series anyone can query)."""
    out = {}
    for fam, typ in types.items():
        if typ == "counter":
            # Classic text format names the _total sample in TYPE;
            # OpenMetrics names the family without it.
            out[fam if fam.endswith("_total") else fam + "_total"] = (
                fam, "counter")
        elif typ == "histogram":
            out[fam] = (fam, "histogram")
            for suffix in ("bucket", "sum", "count"):
                out["%s_%s" % (fam, suffix)] = (fam, suffix)
        elif typ == "summary":
            out[fam] = (fam, "quantile")
            out[fam + "_sum"] = (fam, "sum")
            out[fam + "_count"] = (fam, "count")
        else:
            out[fam] = (fam, "gauge" if typ == "gauge" else "untyped")
    return out


def check_exprs(exprs, types):
    """Checks every (where, expr) against the exported \\p types.
    @returns (unknown names, [problem text]), both sorted."""
    kinds = sample_kinds(types)
    unknown, problems = set(), set()
    for where, expr in exprs:
        for name in metric_names(expr):
            if name not in kinds:
                unknown.add(name)
            elif kinds[name][1] == "histogram":
                problems.add("%s: histogram %s used without _bucket, _sum "
                             "or _count" % (where, name))
        for func, arg in calls(expr):
            for name in metric_names(arg):
                if name not in kinds:
                    continue
                kind = kinds[name][1]
                if func in COUNTER_FUNCS and kind not in (
                        "counter", "bucket", "sum", "count", "untyped"):
                    problems.add("%s: %s() of %s, a %s" % (
                        where, func, name, kind))
                elif func in GAUGE_FUNCS and kind not in ("gauge",
                                                          "untyped"):
                    problems.add("%s: %s() of %s, a %s (use rate or "
                                 "increase)" % (where, func, name, kind))
                elif func == "histogram_quantile" and kind != "bucket":
                    problems.add("%s: histogram_quantile() of %s, not a "
                                 "histogram's _bucket" % (where, name))
    return sorted(unknown), sorted(problems)


def families_used(exprs, types):
    kinds = sample_kinds(types)
    return {kinds[n][0] for _, e in exprs for n in metric_names(e)
            if n in kinds}


# ---------------------------------------------------------------------------
# The assets


def asset_files():
    """The JSON and YAML files; a Helm chart's templates are YAML only once
    rendered (test_helm renders and parses them)."""
    out = []
    for top in ("docker", "configs"):
        for p in sorted((REPO / top).rglob("*")):
            if p.is_file() and p.suffix in (".json", ".yaml", ".yml") and \
                    p.parent.name != "templates":
                out.append(p)
    return out


def load(path):
    """Every document of a JSON or YAML file (akvtest.load_documents)."""
    return akvtest.load_documents(path)


def all_panels(dash):
    """Every panel, the ones inside collapsed rows included."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels") or [])
    return out


def dashboard_exprs(dash):
    out = []
    for p in all_panels(dash):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out.append(("panel %r %s" % (p.get("title"),
                                             t.get("refId")), t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            out.append(("variable %s" % v.get("name"), q))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"]))
    return out


def alert_rules(rules_doc):
    return [r for g in rules_doc.get("groups", [])
            for r in g.get("rules", []) if "alert" in r]


def alert_exprs(rules_doc):
    return [("alert %s" % r.get("alert"), str(r.get("expr", "")))
            for r in alert_rules(rules_doc)]


def asset_exprs():
    return (dashboard_exprs(json.loads(DASHBOARD.read_text())) +
            alert_exprs(yaml.safe_load(ALERTS.read_text())))


def report(unknown, problems, source):
    msgs = []
    if unknown:
        msgs.append("names %s does not export: %s" % (source,
                                                       ", ".join(unknown)))
    if problems:
        msgs.append("; ".join(problems))
    assert not msgs, " | ".join(msgs)


# ---------------------------------------------------------------------------


def setup(rundir):
    global RUN
    RUN = rundir


def teardown(rundir):
    if STACK is not None:
        STACK.stop()


def test_assets_parse():
    assert yaml is not None, "PyYAML is missing (apt-get install " \
        "python3-yaml, or `make deps`)"
    files = asset_files()
    for want in (DASHBOARD, ALERTS, PROMETHEUS):
        assert want in files, "%s is missing" % want.relative_to(REPO)
    bad = []
    for p in files:
        try:
            docs = load(p)
        except Exception as e:  # noqa: BLE001 - any parse error fails
            bad.append("%s: %s" % (p.relative_to(REPO),
                                   " ".join(str(e).split())[:200]))
            continue
        if not docs:
            bad.append("%s: empty" % p.relative_to(REPO))
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                bad.append("%s: document %d is not a mapping"
                           % (p.relative_to(REPO), i + 1))
    assert not bad, "; ".join(bad)


def test_dashboard_is_importable():
    dash = json.loads(DASHBOARD.read_text())
    assert isinstance(dash.get("schemaVersion"), int) and \
        36 <= dash["schemaVersion"] <= 41, \
        "schemaVersion %r" % dash.get("schemaVersion")
    for key in ("title", "uid", "panels", "templating", "time"):
        assert dash.get(key), "dashboard has no %s" % key
    variables = {v.get("name"): v for v in dash["templating"]["list"]}
    ds = variables.get("DS_PROMETHEUS", {})
    assert ds.get("type") == "datasource" and ds.get("query") == \
        "prometheus", "no DS_PROMETHEUS datasource variable"
    for name in ("job", "instance"):
        v = variables.get(name)
        assert v and v.get("type") == "query", "no %s variable" % name
    ids, problems, cells = set(), [], {}
    for p in all_panels(dash):
        title = p.get("title")
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            problems.append("%r: id %r missing or not unique" % (title, pid))
        ids.add(pid)
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "hwxy") or \
                g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or \
                g["x"] + g["w"] > 24:
            problems.append("%r: bad gridPos %r" % (title, g))
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append("%r overlaps %r" % (title,
                                                        cells[(x, y)]))
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if p.get("type") == "row":
            continue
        if not p.get("type") or not title:
            problems.append("panel %r: no type or title" % pid)
        if (p.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
            problems.append("%r: datasource is not ${DS_PROMETHEUS}" %
                            title)
        targets = p.get("targets") or []
        refs = [t.get("refId") for t in targets]
        if not targets or not all(t.get("expr") for t in targets) or \
                len(set(refs)) != len(refs) or None in refs:
            problems.append("%r: targets need an expr and a unique refId"
                            % title)
    assert not problems, "; ".join(problems)
    missing = sorted(set(DASHBOARD_MUST_USE) - families_used(
        dashboard_exprs(dash), parse_types(SPEC_EXPOSITION)))
    assert not missing, "the dashboard shows nothing of %s" % ", ".join(
        missing)


DURATION_RE = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?"
                         r"((\d+)s)?((\d+)ms)?$")


def test_alert_rules_are_complete():
    doc = yaml.safe_load(ALERTS.read_text())
    groups = doc.get("groups")
    assert isinstance(groups, list) and groups, "no groups"
    problems, names = [], []
    for g in groups:
        if not g.get("name") or not isinstance(g.get("rules"), list):
            problems.append("group %r: no name or rules" % g.get("name"))
    rules = alert_rules(doc)
    for r in rules:
        a = r.get("alert")
        names.append(a)
        if not isinstance(r.get("expr"), str) or not r["expr"].strip():
            problems.append("%s: no expr" % a)
        f = r.get("for")
        if not isinstance(f, str) or not f or not DURATION_RE.match(f):
            problems.append("%s: for %r is not a duration" % (a, f))
        if (r.get("labels") or {}).get("severity") not in (
                "critical", "warning", "info"):
            problems.append("%s: labels.severity %r" % (
                a, (r.get("labels") or {}).get("severity")))
        ann = r.get("annotations") or {}
        for k in ("summary", "description"):
            if not isinstance(ann.get(k), str) or not ann[k].strip():
                problems.append("%s: no annotations.%s" % (a, k))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append("alerts named twice: %s" % ", ".join(dup))
    missing = sorted(set(REQUIRED_ALERTS) - set(names))
    if missing:
        problems.append("missing alerts: %s" % ", ".join(missing))
    assert not problems, "; ".join(problems)


def test_promql_checks_on_samples():
    """The name extraction and type checks themselves, on a small
    hand-written exposition: what they must accept and refuse."""
    types = parse_types(
        "# TYPE ak2vault_a_total counter\n"
        "ak2vault_a_total 1\n"
        "# TYPE ak2vault_g gauge\n"
        "# TYPE ak2vault_h_seconds histogram\n"
        "# TYPE ak2vault_om counter\n")  # OpenMetrics-style counter name
    good = [
        'sum(rate(ak2vault_a_total{job=~"ak2vault_fake"}[5m]))',
        "deriv(ak2vault_g[15m]) > 0 and ak2vault_g > 3",
        "histogram_quantile(0.99, sum by (le) (rate("
        "ak2vault_h_seconds_bucket[5m])))",
        "rate(ak2vault_h_seconds_sum[5m]) / rate(ak2vault_h_seconds_count"
        "[5m])",
        "increase(ak2vault_om_total[1h])",
        'label_replace(ak2vault_g, "x", "ak2vault_nope", "", "")',
    ]
    for expr in good:
        unknown, problems = check_exprs([("good", expr)], types)
        assert not unknown and not problems, "refused %r: %s %s" % (
            expr, unknown, problems)
    bad = {
        "rate(ak2vault_g[5m])": "rate() of ak2vault_g, a gauge",
        "increase(ak2vault_g[1h])": "increase() of ak2vault_g, a gauge",
        "deriv(ak2vault_a_total[15m])": "deriv() of ak2vault_a_total",
        "ak2vault_h_seconds > 1": "histogram ak2vault_h_seconds used",
        "histogram_quantile(0.5, rate(ak2vault_h_seconds_sum[5m]))":
            "histogram_quantile() of ak2vault_h_seconds_sum",
        "sum(rate(ak2vault_a[5m]))": "unknown ak2vault_a",
        "ak2vault_om > 0": "unknown ak2vault_om",
        "ak2vault_gauge": "unknown ak2vault_gauge",
    }
    for expr, why in bad.items():
        unknown, problems = check_exprs([("bad", expr)], types)
        if why.startswith("unknown "):
            assert unknown == [why.split()[1]], \
                "%r: unknown %s, wanted %s" % (expr, unknown, why)
        else:
            assert any(why in p for p in problems), \
                "%r not refused for %s: %s" % (expr, why, problems)
    assert metric_names("rate(ak2vault_x:y_total[5m])") == \
        {"ak2vault_x:y_total"}
    assert calls("a(rate(ak2vault_b_total[1m]), deriv(ak2vault_c[1m]))") \
        == [("rate", "ak2vault_b_total[1m]"), ("deriv", "ak2vault_c[1m]")]


def test_assets_use_specified_names():
    """Every name in the dashboard and the rules is one of the families
    the worker is specified to export, with the right suffix."""
    unknown, problems = check_exprs(asset_exprs(),
                                    parse_types(SPEC_EXPOSITION))
    report(unknown, problems, "the specification")


def test_promtool_accepts_rules_and_config():
    promtool = shutil.which("promtool")
    assert promtool, "promtool not installed (make deps installs Debian's " \
        "prometheus)"
    for args in (["check", "rules", str(ALERTS)],
                 ["check", "config", str(PROMETHEUS)]):
        r = subprocess.run([promtool, *args], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, "promtool %s: %s" % (
            " ".join(args[:2]), (r.stdout + r.stderr).decode(
                errors="replace").strip()[-400:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url):
    try:
        status, body = akvtest.http_json("GET", url, timeout=5)
    except akvtest.HTTPFailure:
        return None
    return body if status == 200 and isinstance(body, str) else None


def test_worker_exports_every_name():
    global STACK
    STACK = akvtest.Stack(RUN, partitions=2)
    port = free_port()
    w = STACK.start_worker("metrics-worker", "observability-assets", extra={
        "metrics": {"listen": "127.0.0.1:%d" % port}})
    url = "http://127.0.0.1:%d/metrics" % port
    # Stop waiting as soon as the worker is gone (e.g. metrics.listen
    # unknown to it: exit status 78).
    got = akvtest.wait_until(lambda: (scrape(url),) if not w.running()
                             else scrape(url) and (scrape(url),), 30)
    text = got[0] if got else None
    assert text, "GET /metrics never answered 200 (worker %s: %s)" % (
        "running" if w.running() else "exited %s" % w.wait(0),
        w.stderr_tail())
    RUN.write("metrics.txt", text)
    types = parse_types(text)
    assert types, "/metrics has no # TYPE line"
    unknown, problems = check_exprs(asset_exprs(), types)
    report(unknown, problems, "the worker")
    # Every specified family is there, so the specification checks above
    # stand for the real thing.
    missing = sorted(set(parse_types(SPEC_EXPOSITION)) - set(types))
    assert not missing, "the worker does not export %s" % ", ".join(missing)


def test_no_secret_in_outputs():
    akvtest.assert_no_secrets(RUN.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "observability_assets", setup=setup,
                      teardown=teardown)
