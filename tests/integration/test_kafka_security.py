#!/usr/bin/python3
"""Kafka security as users deploy it: SASL_SSL, the StandardAuthorizer and
exactly the ACLs README's "Kafka ACLs" paragraph lists (real broker only).

One kafka-local node with --security sasl_ssl (a test CA per run, users
admin, ak2vault, authentik, monitor, ops, allow.everyone.if.no.acl.found =
false); fake-authentik produces as User:authentik (Write on the topic).
The worker's ACLs are read from README's kafka-acls.sh lines for
User:ak2vault, so the suite fails when README and the worker disagree.
Clients log in with PLAIN over TLS: librdkafka 2.0.2 cannot do SCRAM with
Kafka 4.x (test 6 pins that down). The tests share the cluster, in order:

  1. the cluster is up; README lists the ACLs this suite grants;
  2. with exactly README's list, a worker syncs tokens, dead-letters a
     poison event, `check-config --connect` exits 0, `ak2vault lag` as
     User:monitor (Describe on the topic and the group) shows lag 0,
     SIGTERM is clean; `replay --execute` as User:ops (Read on the group
     and the topic) moves the idle group's offsets;
  3-5. for each of README's three ACLs, a run without it: check-config
     names it and exits 69; the worker logs the configuration error
     naming it (rate-limited), /readyz is 503 with it, nothing is
     committed past the unsynced work; once the ACL is granted (kafka-local
     control) the worker catches up by itself: Vault equals authentik,
     the poison event is in the DLQ, lag 0, /readyz 200, check-config 0;
  6. SCRAM-SHA-512 with this librdkafka: refused, and said so;
  7. no SASL password, token key or token appears in any captured log.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402

TOPIC = akvtest.TOPIC
DLQ = TOPIC + ".dlq"
README_GROUP = "ak2vault"  # the group name README's examples use
USERS = ("admin", "ak2vault", "authentik", "monitor", "ops")
# Short retry and log intervals: a grant shows within seconds, and the
# rate limit of the configuration error is seen within a run.
LOG_INTERVAL_MS = 5000
WORKER_CFG = {
    "kafka": {"session_timeout_ms": 6000},
    "sync": {"retry_initial_ms": 100, "retry_max_ms": 1000,
             "config_retry_ms": 1000, "log_interval_ms": LOG_INTERVAL_MS},
}
DENIED_WAIT = 60     # s for a refusal to show
HOLD = 5             # s a refused worker is watched for commits
CATCH_UP = 90        # s to catch up after a grant

S = SimpleNamespace(rundir=None, stack=None, pw={}, ca=None, files={},
                    acls=None, tokens=[], poison={})


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


# -- credentials and client configurations -----------------------------------


def props(user, mechanism="PLAIN"):
    return {"security.protocol": "SASL_SSL", "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": S.pw[user],
            "ssl.ca.location": str(S.ca)}


def props_file(user, mechanism="PLAIN"):
    """A 0600 librdkafka properties file (kcat -F, fake-authentik): the
    password stays off every command line."""
    name = "%s-%s.properties" % (user, mechanism.lower())
    if name not in S.files:
        S.files[name] = S.rundir.write(name, "".join(
            "%s=%s\n" % kv for kv in props(user, mechanism).items()))
    return S.files[name]


def kafka_cfg(user, mechanism="PLAIN"):
    return akvtest.RawCfg("(" + ", ".join(
        '("%s", "%s")' % kv for kv in props(user, mechanism).items()) + ")")


def worker_extra(user="ak2vault", port=None, mechanism="PLAIN"):
    extra = akvtest.merge_settings(WORKER_CFG, {
        "kafka": {"properties": kafka_cfg(user, mechanism)}})
    if port:
        extra["metrics"] = {"listen": "127.0.0.1:%d" % port,
                            "lag_interval_ms": 500}
    return extra


# -- README's ACL list -------------------------------------------------------


def readme_acls():
    """The (operation, resource type, name) of every kafka-acls.sh line
    for User:ak2vault in README's "Kafka ACLs" paragraph."""
    text = (akvtest.REPO / "README.md").read_text()
    start = text.index("**Kafka ACLs.**")
    end = text.index("\n**", start + 10)
    out = []
    for line in text[start:end].splitlines():
        if "kafka-acls.sh" not in line or "User:ak2vault " not in line:
            continue
        op = re.search(r"--operation (\w+)", line).group(1)
        for rtype, name in re.findall(r"--(topic|group) (\S+)", line):
            out.append((op, rtype, name))
    return out


def worker_acls(group):
    """README's list for the worker, its group name replaced by \\p group."""
    return [(op, rtype, group if rtype == "group" and name == README_GROUP
             else name) for op, rtype, name in S.acls]


def acl(verb, user, op, rtype, name):
    S.stack.kafka_command("acl %s User:%s %s %s %s" % (verb, user, op, rtype,
                                                       name))


# -- the worker and its tools ------------------------------------------------


def ak2vault(args, cfg, timeout=60, name="ak2vault-cli"):
    """Runs an ak2vault command; @returns (status, stdout); both outputs
    are appended to <name>.*.log for the secret scan."""
    env = {"VAULT_TOKEN": S.stack.vault_token,
           "AUTHENTIK_TOKEN": S.stack.authentik_token}
    r = subprocess.run([akvtest.binary("ak2vault"), *args, "-c", str(cfg)],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(env), timeout=timeout,
                       cwd=str(S.rundir.path))
    with open(S.rundir.file("%s.stdout.log" % name), "ab") as f:
        f.write(r.stdout)
    with open(S.rundir.file("%s.stderr.log" % name), "ab") as f:
        f.write(r.stderr)
    return r.returncode, r.stdout.decode(errors="replace")


def check_config(group, user="ak2vault", mechanism="PLAIN"):
    cfg = S.stack.worker_config(group, worker_extra(user, mechanism=mechanism),
                                name="check-%s.cfg" % group)
    rc, out = ak2vault(["check-config", "--connect"], cfg, name="check-config")
    lines = [l for l in out.splitlines() if re.match(r"(kafka|vault|authentik)"
                                                     r"[a-z ]*: ", l)]
    return rc, lines


def lag(group, user="monitor"):
    cfg = S.stack.worker_config(group, worker_extra(user),
                                name="lag-%s.cfg" % group)
    rc, out = ak2vault(["lag", "--json"], cfg, timeout=30, name="lag")
    assert rc == 0, "ak2vault lag as User:%s exited %d" % (user, rc)
    return json.loads(out)


def readyz(port):
    try:
        status, _, body = akvtest.http_get_text(
            "http://127.0.0.1:%d/readyz" % port)
    except OSError as e:
        return None, str(e)
    return status, body.strip()


def start_worker(name, group, port):
    return S.stack.start_worker(name, group, extra=worker_extra(port=port))


def stop_worker(w):
    w.signal(signal.SIGTERM)
    rc = w.wait(30)
    if rc is None:
        w.stop(1)
    assert rc == 0, "%s exited %s after SIGTERM: %s" % (w.name, rc,
                                                        w.stderr_tail(3))
    assert akvtest.final_stats(w.stderr_text()) is not None, \
        "%s: no final stats line" % w.name


# -- events ------------------------------------------------------------------


def kcat(args, data=None, timeout=30, name="kcat-admin"):
    """kcat as User:admin (the super user), configured by file."""
    argv = ["kcat", "-F", str(props_file("admin")), "-b", S.stack.brokers,
            *args]
    with open(S.rundir.file("%s.stderr.log" % name), "ab") as err:
        r = subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                           stderr=err, env=akvtest.child_env(),
                           timeout=timeout)
    with open(S.rundir.file("%s.stdout.log" % name), "ab") as out:
        out.write(r.stdout)
    return r.returncode, r.stdout.decode(errors="replace")


def produce_poison(partition):
    """A token event without a usable reference (no UUID pk): poison. It
    goes in front of the tokens' events of \\p partition."""
    ev = {"pk": str(uuid.uuid4()), "action": "model_created",
          "app": "authentik.events.middleware",
          "context": {"model": {"pk": "not-a-uuid", "app": "authentik_core",
                                "name": "bad/slash", "model_name": "token"}}}
    rc, _ = kcat(["-P", "-t", TOPIC, "-p", str(partition)],
                 data=json.dumps(ev).encode() + b"\n")
    assert rc == 0, "kcat -P (admin) exited %d" % rc
    return ev["pk"]


def dlq_events():
    """The event pks in the dead-letter topic."""
    rc, out = kcat(["-C", "-t", DLQ, "-o", "beginning", "-e", "-q",
                    "-f", "%s\\n"], name="kcat-dlq")
    assert rc == 0, "kcat -C %s (admin) exited %d" % (DLQ, rc)
    pks = set()
    for line in out.splitlines():
        try:
            pks.add(json.loads(line).get("pk"))
        except ValueError:
            pass
    return pks


def make_tokens(prefix, n=3):
    made = []
    for i in range(n):
        ident = "%s-%d" % (prefix, i)
        S.stack.create_token(ident, description="security test")
        made.append(ident)
    S.tokens += made
    S.stack.live_tokens()  # registers the keys as secrets
    return made


def vault_behind(idents):
    live = S.stack.live_tokens()
    cur = S.stack.vault_current()
    return [i for i in idents if i in live and
            (cur.get(i) or (0, None))[1] !=
            {"key": live[i]["key"], "intent": live[i]["intent"]}]


# ---------------------------------------------------------------------------


def test_secure_cluster_and_readme_acls():
    S.acls = readme_acls()
    want = {("Read", "topic", TOPIC), ("Read", "group", README_GROUP),
            ("Write", "topic", DLQ)}
    assert set(S.acls) == want and len(S.acls) == 3, \
        "README's ACLs for User:ak2vault are %s, this suite was written " \
        "for %s" % (sorted(S.acls), sorted(want))
    if akvtest.KAFKA != "real" and not akvtest.KAFKA_LIBS.is_dir():
        raise AssertionError("the real broker is not installed: make kafka")
    S.pw = {u: akvtest.random_secret(24) for u in USERS}
    for u, pw in S.pw.items():
        SECRETS.add("SASL password", pw)
    users = S.rundir.write("users", "".join("%s=%s\n" % kv
                                            for kv in S.pw.items()))
    S.ca = S.rundir.file("kafka-ca.pem")
    t0 = time.monotonic()
    S.stack = akvtest.Stack(
        S.rundir, partitions=2, kafka="real",
        kafka_args=["--security", "sasl_ssl", "--users", str(users),
                    "--ca-out", str(S.ca),
                    "--acl", "User:authentik:Write:topic:" + TOPIC],
        topics=(DLQ + ":1",),
        authentik_args=("--kafka-properties", str(props_file("authentik"))))
    assert S.ca.exists(), "kafka-local wrote no CA to --ca-out"
    # lag's principal: Describe only; replay's: Read on the group and topic.
    acl("add", "monitor", "Describe", "topic", TOPIC)
    acl("add", "ops", "Read", "topic", TOPIC)
    note("SASL_SSL cluster up in %.1fs; README's ACLs: %s" % (
        time.monotonic() - t0, ", ".join("%s %s %s" % a for a in S.acls)))


def run_scenario(missing):
    """One worker with README's ACLs for its own group, minus \\p missing
    (an (operation, type, name) of worker_acls, or None)."""
    if missing is None:
        tag = "full"
    else:
        tag = "dlq" if missing[2] == DLQ else missing[1]
    group = "sec-" + tag
    acls = worker_acls(group)
    if missing is not None:
        missing = worker_acls(group)[S.acls.index(missing)]
    for a in acls:
        if a != missing:
            acl("add", "ak2vault", *a)
    acl("add", "monitor", "Describe", "group", group)
    port = akvtest.free_port()
    # Tokens before the poison event and after it, in both partitions.
    made = make_tokens(tag + "-before", 2)
    pk = produce_poison(0)
    made += make_tokens(tag + "-after", 3)
    S.poison[pk] = tag

    try:
        return scenario_run(missing, tag, group, port, pk, made)
    finally:
        # The next scenario starts from nothing again.
        for a in acls:
            acl("remove", "ak2vault", *a)


def scenario_run(missing, tag, group, port, pk, made):
    if missing is not None:
        op, rtype, name = missing
        needs = "needs %s on %s %s" % (op, rtype, name)
        rc, lines = check_config(group)
        check = {"topic": "kafka", "group": "kafka group"}[rtype] \
            if name != DLQ else "kafka dlq"
        failed = [l for l in lines if l.startswith(check + ": FAILED")]
        assert rc == 69 and failed and needs in failed[0], \
            "check-config without %s %s %s: status %d, lines %s" % (
                op, rtype, name, rc, lines)
        note("check-config: %s" % failed[0])
    w = start_worker("worker-" + tag, group, port)
    t0 = time.monotonic()
    if missing is not None:
        logged = akvtest.wait_until(
            lambda: "kafka configuration error" in w.stderr_text() and
            needs in w.stderr_text(), DENIED_WAIT)
        assert logged, "no configuration error naming '%s' in %ds: %s" % (
            needs, DENIED_WAIT, w.stderr_tail(3))
        ready = akvtest.wait_until(
            lambda: readyz(port)[0] == 503 and needs in readyz(port)[1], 15)
        assert ready, "/readyz is %r without %s" % (readyz(port), needs)
        # Nothing committed past the work that could not be done: with
        # the topic or the group refused, nothing at all; without the
        # DLQ, the poison event's partition stays at or below its offset.
        time.sleep(HOLD)
        assert w.running(), "%s exited: %s" % (w.name, w.stderr_tail(3))
        parts = {p["partition"]: p for p in lag(group)["partitions"]}
        if name == DLQ:
            rc, out = kcat(["-C", "-t", TOPIC, "-p", "0", "-o", "beginning",
                            "-e", "-q", "-f", "%o %s\\n"], name="kcat-src")
            offset = [int(l.split(" ", 1)[0]) for l in out.splitlines()
                      if pk in l]
            assert offset and parts[0]["committed"] <= offset[0], \
                "partition 0 committed %s past the held poison event at %s" \
                % (parts[0]["committed"], offset)
            assert pk not in dlq_events(), "the poison event reached the DLQ"
        else:
            moved = {p: x["committed"] for p, x in parts.items()
                     if x["committed"] >= 0}
            assert not moved, "offsets committed without %s %s: %s" % (
                rtype, name, moved)
            assert not [s for s in akvtest.sync_lines(w.stderr_text())], \
                "the worker synced without %s %s" % (rtype, name)
        # Rate-limited: one line per log interval at most, no warnings
        # or errors per retry.
        text = w.stderr_text()
        n = text.count("kafka configuration error")
        most = 2 + int((time.monotonic() - t0) * 1000 / LOG_INTERVAL_MS)
        assert n <= most, "%d configuration error lines in %.0fs" % (
            n, time.monotonic() - t0)
        noisy = [l for l in text.splitlines()
                 if re.search(r" (warn|error) ", l) and
                 "kafka configuration error" not in l and
                 "Coordinator load in progress" not in l and
                 "poison event" not in l]
        assert len(noisy) <= 3, "other warnings/errors while refused: %s" % (
            " | ".join(noisy[:4]))
        note("without %s %s %s: %d configuration error line(s) in %.0fs; "
             "/readyz: %s" % (op, rtype, name, n, time.monotonic() - t0,
                              readyz(port)[1]))
        t1 = time.monotonic()
        acl("add", "ak2vault", *missing)

    last = {}

    def caught_up():
        last["behind"] = vault_behind(made)
        last["dlq"] = pk in dlq_events()
        if last["behind"] or not last["dlq"]:
            return False
        last["lag"] = lag(group)
        last["ready"] = readyz(port)
        return last["lag"]["lag"] == 0 and last["ready"][0] == 200
    ok = akvtest.wait_until(caught_up, CATCH_UP, interval=1.0)
    assert ok, "%s did not catch up in %ds: %s" % (w.name, CATCH_UP, last)
    if missing is not None:
        note("caught up %.1fs after the grant" % (time.monotonic() - t1))
    rc, lines = check_config(group)
    assert rc == 0, "check-config with every ACL: status %d: %s" % (rc, lines)
    stop_worker(w)
    st = akvtest.final_stats(w.stderr_text())
    assert st["dead_lettered"] >= 1, "dead_lettered=%d" % st["dead_lettered"]
    return group, lines


@depends("test_secure_cluster_and_readme_acls")
def test_exactly_readme_acls():
    group, lines = run_scenario(None)
    note("check-config: %s" % " | ".join(l for l in lines
                                         if l.startswith("kafka")))
    # replay --execute from outside, as User:ops with Read on the (now
    # empty) group and the topic.
    acl("add", "ops", "Read", "group", group)
    cfg = S.stack.worker_config(group, worker_extra("ops"),
                                name="replay-%s.cfg" % group)
    rc, out = ak2vault(["replay", "--to-earliest", "--execute"], cfg,
                       name="replay")
    assert rc == 0, "replay --to-earliest --execute as User:ops exited %d" % rc
    parts = lag(group)["partitions"]
    assert all(p["committed"] == p["low"] for p in parts), \
        "replay did not move the offsets to the start: %s" % parts


@depends("test_exactly_readme_acls")
def test_without_read_on_the_topic():
    run_scenario(("Read", "topic", TOPIC))


@depends("test_exactly_readme_acls")
def test_without_read_on_the_group():
    run_scenario(("Read", "group", README_GROUP))


@depends("test_exactly_readme_acls")
def test_without_write_on_the_dlq():
    run_scenario(("Write", "topic", DLQ))


@depends("test_secure_cluster_and_readme_acls")
def test_scram_with_this_librdkafka_is_refused_and_said_so():
    """librdkafka before 2.6.1 cannot log in with SCRAM to Kafka 4.x (the
    broker works: kafka-local's selftest logs in with the Java client)."""
    port = akvtest.free_port()
    w = S.stack.start_worker("worker-scram", "sec-scram", extra=worker_extra(
        port=port, mechanism="SCRAM-SHA-512"))
    ok = akvtest.wait_until(
        lambda: readyz(port)[0] == 503 and "SCRAM" in readyz(port)[1], 30)
    assert ok, "/readyz with SCRAM: %r; log: %s" % (readyz(port),
                                                   w.stderr_tail(3))
    note("/readyz with SCRAM: %s" % readyz(port)[1])
    stop_worker(w)


@depends("test_secure_cluster_and_readme_acls")
def test_no_secret_in_any_log():
    akvtest.stop_all()
    logs = S.rundir.logs()
    hits = akvtest.scan_for_secrets(logs)
    assert not hits, "secrets in logs: " + "; ".join(
        "%s (%d) in %s" % (k, n, Path(f).name) for f, k, n in hits)
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(SECRETS.kinds().items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "kafka_security", setup=setup,
                      teardown=teardown)
