#!/usr/bin/python3
"""ak2vault demo (`make demo`): authentik tokens mirrored into Vault.

  tests/demo.py [--kafka mock|real]

Starts the loopback stand-ins (a Kafka broker, fake-vault, fake-authentik),
creates, rotates, re-keys and deletes tokens through fake-authentik's API
(each change becomes an authentik event in Kafka), then runs two
`ak2vault run --exit-at-end` replicas in one consumer group until both
have consumed everything, and shows what landed in Vault; then a third,
long-running replica shows its /livez, /readyz and lag metrics. Key values are
never printed. Everything started here is stopped on exit, error or
Ctrl-C; the logs stay in the printed directory.

The broker is mock-kafka (librdkafka's mock cluster) unless --kafka real
(or $AKV_KAFKA=real, `make demo KAFKA=real`) asks for Apache Kafka from
`make kafka` (tests/kafka/kafka-local, one KRaft node; it creates no topic
on its own, so the demo creates the topic and its dead-letter topic).
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import akvtest  # noqa: E402
from akvtest import say  # noqa: E402

GROUP = "ak2vault-demo"
RUN_TIMEOUT = 90
WORKER_CFG = {
    # A sync retry (none is expected) waits at most 2 s, not 30 s.
    "sync": {"retry_max_ms": 2000},
}
# On the mock only: its group coordinator sometimes holds a member's
# re-join for a whole session timeout; keep that stall short. A real
# broker's coordinator has no such stall; the default (45 s) stays.
WORKER_CFG_MOCK = {"kafka": {"session_timeout_ms": 6000}}


def worker_cfg(stack):
    if stack.kafka_kind == "mock":
        return akvtest.merge_settings(WORKER_CFG, WORKER_CFG_MOCK)
    return WORKER_CFG


BROKER_NAMES = {"mock": "mock-kafka", "real": "Apache Kafka (kafka-local)"}

TOKENS = (
    ["deploy-bot-api", "grafana-app-password", "prometheus-scraper",
     "backup-agent", "terraform-cloud", "argocd-sync", "gitlab-runner-api",
     "ldap-outpost", "proxy-outpost", "radius-outpost",
     "nextcloud-app-password", "mail-relay-app-password",
     "wiki-app-password", "matrix-bridge-api", "sentry-webhook",
     "status-page-api", "billing-export", "crm-import", "hr-sync-api",
     "ansible-awx", "rundeck-jobs", "jenkins-app-password", "loki-push",
     "harbor-robot"]
    + ["ci-runner-%02d" % i for i in range(1, 13)])
ROTATE = ["ci-runner-01", "ci-runner-02", "ci-runner-03", "argocd-sync",
          "ldap-outpost", "proxy-outpost", "loki-push", "harbor-robot"]
SET_KEY = ["deploy-bot-api", "grafana-app-password", "backup-agent",
           "wiki-app-password"]
DELETE = ["crm-import", "ci-runner-12", "ci-runner-03"]


def intent_of(ident):
    return "app_password" if ident.endswith("app-password") else "api"


def columns(cells, ncols, width):
    rows = (len(cells) + ncols - 1) // ncols
    for r in range(rows):
        say("  " + "".join(c.ljust(width) for c in cells[r::rows]).rstrip())


def main(rundir, kafka):
    t0 = time.monotonic()
    say("ak2vault demo: authentik tokens -> Kafka events -> ak2vault -> "
        "Vault KV v2")
    if kafka == "real":
        say("starting Apache Kafka (one KRaft node on the JVM) ...")
    # The dead-letter topic (dlq.enabled is on by default) is given too:
    # the real broker creates no topic on its own.
    stack = akvtest.Stack(rundir, partitions=4, kafka=kafka,
                          topics=["%s.dlq:1" % akvtest.TOPIC])
    try:
        rc = demo(stack, rundir, t0)
    finally:
        stack.stop()
    logs = rundir.logs()
    hits = akvtest.scan_for_secrets(logs)
    for f, kind, n in hits:
        say("FAILED: %s found in %s" % (kind, Path(f).name))
    if not hits:
        say("secret scan: no key or API token in any of the %d log files" %
            len(logs))
    say("(demo took %.1fs)" % (time.monotonic() - t0))
    return 1 if hits else rc


def demo(stack, rundir, t0):
    say("stand-ins: %s %s (topic %s, 4 partitions)" % (
        BROKER_NAMES[stack.kafka_kind], stack.brokers, stack.topic))
    say("           fake-vault %s, fake-authentik %s" % (
        stack.vault_addr, stack.authentik_url))

    # -- authentik side ------------------------------------------------------
    for i, ident in enumerate(TOKENS):
        stack.create_token(ident, intent=intent_of(ident),
                           description="demo: %s" % ident,
                           expiring=(i % 5 != 0))
    stack.live_tokens()
    for ident in ROTATE:
        stack.rotate(ident)
    for ident in SET_KEY:
        stack.set_key(ident, "demo" + akvtest.random_secret(44))
    for ident in DELETE:
        stack.delete_token(ident)
    n_app = sum(intent_of(t) == "app_password" for t in TOKENS)
    events = (stack.authentik_stats() or {}).get("events_published", "?")
    say("authentik: created %d tokens (%d api, %d app_password), rotated %d, "
        "set %d keys, deleted %d" % (len(TOKENS), len(TOKENS) - n_app, n_app,
                                     len(ROTATE), len(SET_KEY), len(DELETE)))
    say("           -> %s events published to Kafka" % events)

    # -- the workers ---------------------------------------------------------
    say("running 2 x `ak2vault run --exit-at-end` in group %s ..." % GROUP)
    workers = [stack.start_worker("replica-%d" % i, GROUP, exit_at_end=True,
                                  extra=worker_cfg(stack))
               for i in (1, 2)]
    deadline = time.monotonic() + RUN_TIMEOUT
    rcs = {}
    for w in workers:
        rcs[w.name] = w.wait(max(0.1, deadline - time.monotonic()))
    late = [n for n, rc in rcs.items() if rc is None]
    if late:
        say("FAILED: %s still running after %ds" % (", ".join(late),
                                                    RUN_TIMEOUT))
        return 1
    bad = ["%s exited %d" % (n, rc) for n, rc in rcs.items() if rc != 0]
    if bad:
        say("FAILED: " + "; ".join(bad))
        return 1

    # -- what the workers did ------------------------------------------------
    fields = ("consumed", "matched", "skipped", "written", "unchanged",
              "gone", "poison")
    say("")
    say("%-10s %-10s" % ("replica", "partitions") +
        "".join("%10s" % f for f in fields))
    total = dict.fromkeys(fields, 0)
    for w in workers:
        log = w.stderr_text()
        st = akvtest.final_stats(log)
        if st is None:
            say("FAILED: %s logged no final stats line" % w.name)
            return 1
        parts = sorted({s["partition"] for s in akvtest.sync_lines(log)})
        assigned = re.findall(r"assigned (\d+) partition", log)
        shown = ",".join(map(str, parts)) or "-"
        if not parts and assigned:
            shown = "- (idle)"
        say("%-10s %-10s" % (w.name, shown) +
            "".join("%10d" % st[f] for f in fields))
        for f in fields:
            total[f] += st[f]
    say("%-10s %-10s" % ("total", "") +
        "".join("%10d" % total[f] for f in fields))

    # -- Vault ---------------------------------------------------------------
    current = stack.vault_current()
    say("")
    say("Vault: %d secrets under kv/data/authentik/ (current version):" %
        len(current))
    cells = ["%-24s v%s" % (ident, cur[0])
             for ident, cur in sorted(current.items())]
    columns(cells, 3, 30)

    live = stack.live_tokens()
    good = sorted(i for i, t in live.items()
                  if current.get(i, (0, None))[1] ==
                  {"key": t["key"], "intent": t["intent"]})
    wrong = sorted(set(live) - set(good))
    kept = sorted(set(DELETE) & set(current))
    say("")
    if kept:
        say("deleted in authentik but still in Vault: %s" % ", ".join(kept))
    else:
        say("deleted in authentik, never written: %s" % ", ".join(DELETE))
    verdict = "%d/%d live tokens present in Vault with authentik's current " \
        "key" % (len(good), len(live))
    if wrong:
        say("FAILED: " + verdict)
        say("  differ: " + ", ".join(wrong))
        return 1
    say("OK: " + verdict)
    return monitor(stack)


def monitor(stack):
    """A long-running replica with the HTTP endpoint: what Prometheus and
    Kubernetes see once the group is caught up."""
    port = akvtest.free_port()
    cfg = dict(worker_cfg(stack), metrics={"listen": "127.0.0.1:%d" % port})
    say("")
    say("running `ak2vault run` with metrics.listen = 127.0.0.1:%d ..." % port)
    w = stack.start_worker("replica-3", GROUP, extra=cfg)
    base = "http://127.0.0.1:%d" % port

    def ready():
        return akvtest.http_get_text(base + "/readyz")[0] == 200
    if not akvtest.wait_until(lambda: ready() or not w.running(), 30) or \
            not w.running():
        say("FAILED: /readyz never answered 200: %s" %
            akvtest.http_get_text(base + "/readyz")[2].strip())
        return 1

    def scrape():
        return akvtest.parse_exposition(
            akvtest.http_get_text(base + "/metrics")[2])

    def lag_known():
        f = scrape()
        return len(f["ak2vault_consumer_lag_messages"]["samples"]) == \
            akvtest.sample(f, "ak2vault_assigned_partitions")
    # The end and committed offsets are read within a second or two.
    akvtest.wait_until(lag_known, 10)
    fams = scrape()
    say("GET /livez -> %s, GET /readyz -> %s, GET /metrics -> %d families" % (
        akvtest.http_get_text(base + "/livez")[2].strip(),
        akvtest.http_get_text(base + "/readyz")[2].strip(), len(fams)))
    for name in ("ak2vault_assigned_partitions", "ak2vault_committed_offset",
                 "ak2vault_end_offset", "ak2vault_consumer_lag_messages",
                 "ak2vault_consumer_lag_seconds", "ak2vault_ready"):
        for sname, labels, value in fams[name]["samples"]:
            lab = ",".join('%s="%s"' % kv for kv in labels.items())
            say("  %s%s %g" % (sname, "{%s}" % lab if lab else "", value))
    w.signal()
    rc = w.wait(30)
    if rc != 0:
        say("FAILED: replica-3 exited %s after SIGTERM" % rc)
        return 1
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="ak2vault demo on loopback")
    ap.add_argument("--kafka", choices=("mock", "real"),
                    default=os.environ.get("AKV_KAFKA") or "mock",
                    help="the broker: mock (mock-kafka, the default) or real "
                         "(Apache Kafka from `make kafka`); default "
                         "$AKV_KAFKA, else mock")
    args = ap.parse_args()
    akvtest.install_signal_handlers()
    rundir = akvtest.RunDir("demo")
    rc = 1
    try:
        rc = main(rundir, args.kafka)
    except (KeyboardInterrupt, akvtest.Interrupted):
        say("interrupted")
        rc = 130
    except Exception as e:  # noqa: BLE001
        say("FAILED: " + akvtest.reason_of(e))
        rc = 1
    finally:
        akvtest.stop_all()
        say("logs: %s" % rundir.path)
    sys.exit(rc)
