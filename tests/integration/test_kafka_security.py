#!/usr/bin/python3
"""Kafka security as users deploy it: SASL_SSL, the StandardAuthorizer and
exactly the ACLs README's "Kafka ACLs" paragraph lists (real broker only).

One kafka-local node with --security sasl_ssl (a test CA per run, users
admin, ak2vault, authentik, monitor, ops, allow.everyone.if.no.acl.found =
false); fake-authentik produces as User:authentik (Write on the topic).
The worker's ACLs are read from README's kafka-acls.sh lines for
User:ak2vault, so the suite fails when README and the worker disagree.
Clients log in with PLAIN over TLS: librdkafka 2.0.2 cannot do SCRAM with
Kafka 4.x (test 6 pins that down); the SCRAM-SHA-512 run is on Kafka 3.9
(tests 7-9: build/kafka/libs-3.9 from `make kafka`), which accepts
librdkafka's repeated nonce. Tests 1-6 share the 4.x cluster, in order:

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
  7. the 4.x cluster stops; one Kafka 3.9 node with SASL_SSL comes up,
     where every client logs in with SCRAM-SHA-512 (fake-authentik too,
     as User:authentik): each user logs in (kcat -L), else the test says
     that SCRAM login failed;
  8. with exactly README's list, a worker on SCRAM syncs tokens,
     dead-letters a poison event, `check-config --connect` exits 0 and
     `ak2vault lag` as User:monitor shows lag 0 (test 2's scenario);
  9. a wrong SCRAM password: kcat is refused naming SCRAM-SHA-512, the
     worker's /readyz is 503 asking for credentials the brokers accept;
 10. no SASL password, token key or token appears in any captured log.
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
SCRAM = "SCRAM-SHA-512"
# Kafka 3.9 (`make kafka`): SCRAM with librdkafka < 2.6.1 (see kafka-local).
LIBS_3_9 = akvtest.REPO / "build" / "kafka" / "libs-3.9"

# mech: the SASL mechanism of every client (PLAIN on 4.x, SCRAM on 3.9);
# tag: the prefix of the client properties files of the current cluster.
S = SimpleNamespace(rundir=None, stack=None, pw={}, ca=None, files={},
                    acls=None, tokens=[], poison={}, users=None,
                    mech="PLAIN", tag="")


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


# -- credentials and client configurations -----------------------------------


def props(user, mechanism=None, password=None):
    return {"security.protocol": "SASL_SSL",
            "sasl.mechanisms": mechanism or S.mech,
            "sasl.username": user, "sasl.password": password or S.pw[user],
            "ssl.ca.location": str(S.ca)}


def props_file(user, mechanism=None):
    """A 0600 librdkafka properties file (kcat -F, fake-authentik): the
    password stays off every command line."""
    name = "%s%s-%s.properties" % (S.tag, user, (mechanism or S.mech).lower())
    if name not in S.files:
        S.files[name] = S.rundir.write(name, "".join(
            "%s=%s\n" % kv for kv in props(user, mechanism).items()))
    return S.files[name]


def kafka_cfg(user, mechanism=None, password=None):
    return akvtest.RawCfg("(" + ", ".join(
        '("%s", "%s")' % kv for kv in props(user, mechanism,
                                            password).items()) + ")")


def worker_extra(user="ak2vault", port=None, mechanism=None, password=None):
    extra = akvtest.merge_settings(WORKER_CFG, {
        "kafka": {"properties": kafka_cfg(user, mechanism, password)}})
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


def check_config(group, user="ak2vault", mechanism=None):
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
    S.users = users
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
        # Credentials are right or wrong for good: no point waiting.
        status, body = readyz(port)
        assert "credentials the brokers accept" not in body, \
            "%s cannot log in to Kafka with %s: /readyz %s: %s" % (
                w.name, S.mech, status, body)
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
def test_sasl_password_from_a_file_and_the_environment():
    """The SASL password as "@file:PATH" and as "@env:NAME" reaches
    librdkafka: lag logs in as User:monitor with either; neither the
    password nor the file's content shows in the output."""
    group = "sec-refs"
    acl("add", "monitor", "Describe", "group", group)
    pw_file = S.rundir.write("monitor.pw", S.pw["monitor"] + "\n")
    for ref, env in (("@file:%s" % pw_file, {}),
                     ("@env:AKV_MONITOR_PW", {"AKV_MONITOR_PW":
                                              S.pw["monitor"]})):
        cfg = S.stack.worker_config(group, worker_extra(
            "monitor", password=ref), name="refs-%s.cfg" % ref[:5].strip(
                "@:"))
        wenv = {"VAULT_TOKEN": S.stack.vault_token,
                "AUTHENTIK_TOKEN": S.stack.authentik_token}
        wenv.update(env)
        r = subprocess.run([akvtest.binary("ak2vault"), "lag", "--json",
                            "-c", str(cfg)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60,
                           env=akvtest.child_env(wenv),
                           cwd=str(S.rundir.path))
        with open(S.rundir.file("refs.stderr.log"), "ab") as f:
            f.write(r.stderr)
        assert r.returncode == 0, "lag with sasl.password %s exited %d: " \
            "%s" % (ref[:5], r.returncode,
                    SECRETS.scrub(r.stderr.decode(errors="replace"))[-300:])
        assert S.pw["monitor"] not in (r.stdout + r.stderr).decode(
            errors="replace")
        assert json.loads(r.stdout)["partitions"], r.stdout[:200]
    note("lag logged in as User:monitor with sasl.password from @file: "
         "and from @env:")


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


# -- SCRAM-SHA-512 on Kafka 3.9 -----------------------------------------------


def kafka_3_9_version():
    """The release in build/kafka/libs-3.9 ("3.9.2"), or None."""
    for j in LIBS_3_9.glob("kafka_2.13-*.jar"):
        m = re.fullmatch(r"kafka_2\.13-(3\.9\.\d+)\.jar", j.name)
        if m and (LIBS_3_9 / (".kafka-" + m.group(1))).exists():
            return m.group(1)
    return None


def kcat_login(user, password=None):
    """kcat -L as \\p user over SASL_SSL with this cluster's mechanism
    (\\p password: a wrong one); @returns (status, last error line)."""
    name = "%s%s-login" % (S.tag, user)
    cfg = S.rundir.write(name + ".properties", "".join(
        "%s=%s\n" % kv for kv in props(user, password=password).items()))
    with open(S.rundir.file("kcat-%s.stderr.log" % name), "ab") as err:
        start = err.tell()
        r = subprocess.run(["kcat", "-F", str(cfg), "-b", S.stack.brokers,
                            "-L", "-m", "5"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err,
                           env=akvtest.child_env(), timeout=30)
    with open(S.rundir.file("kcat-%s.stderr.log" % name), "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace").splitlines()
    # librdkafka's own FAIL line names the reason; kcat's ERROR follows.
    lines = [l for l in text if "|FAIL|" in l] or \
        [l for l in text if "ERROR" in l]
    return r.returncode, SECRETS.scrub(lines[-1] if lines else "")


@depends("test_secure_cluster_and_readme_acls")
def test_scram_cluster_on_kafka_3_9():
    version = kafka_3_9_version()
    if version is None:
        raise AssertionError("Kafka 3.9 is not installed in %s: make kafka" %
                             LIBS_3_9)
    # One JVM cluster at a time on a small machine: the 4.x one is done.
    if S.stack:
        S.stack.stop()
        S.stack = None
    S.mech, S.tag, S.files = SCRAM, "k39-", {}
    S.ca = S.rundir.file("kafka39-ca.pem")
    t0 = time.monotonic()
    # kafka-local's last --libs counts: the harness passes the 4.x jars.
    S.stack = akvtest.Stack(
        S.rundir.sub("kafka-3.9"), partitions=2, kafka="real",
        kafka_args=["--security", "sasl_ssl", "--users", str(S.users),
                    "--ca-out", str(S.ca), "--libs", str(LIBS_3_9),
                    "--acl", "User:authentik:Write:topic:" + TOPIC,
                    "--acl", "User:monitor:Describe:topic:" + TOPIC],
        topics=(DLQ + ":1",),
        authentik_args=("--kafka-properties", str(props_file("authentik"))))
    assert S.ca.exists(), "kafka-local wrote no CA to --ca-out"
    up = time.monotonic() - t0
    said = S.stack.kafka.stderr_path.read_text()
    assert "Kafka %s from %s" % (version, LIBS_3_9) in said, \
        "kafka-local did not run Kafka %s from %s: %s" % (
            version, LIBS_3_9, said.splitlines()[:2])
    for user in ("admin", "ak2vault", "authentik", "monitor"):
        rc, why = kcat_login(user)
        assert rc == 0, "User:%s cannot log in with %s to Kafka %s " \
            "(kcat -L exited %d): %s" % (user, SCRAM, version, rc, why)
    note("Kafka %s SASL_SSL node up in %.1fs; admin, ak2vault, authentik "
         "and monitor log in with %s (librdkafka 2.0.2)" % (version, up,
                                                            SCRAM))


@depends("test_scram_cluster_on_kafka_3_9")
def test_scram_exactly_readme_acls():
    group, lines = run_scenario(None)
    note("%s on Kafka 3.9: 5 tokens in Vault, the poison event in the DLQ, "
         "lag 0 as User:monitor; check-config: %s" % (SCRAM, " | ".join(
             l for l in lines if l.startswith("kafka"))))


@depends("test_scram_cluster_on_kafka_3_9")
def test_scram_wrong_password_is_refused():
    wrong = akvtest.random_secret(24)
    SECRETS.add("SASL password", wrong)
    rc, why = kcat_login("ak2vault", password=wrong)
    assert rc != 0 and "Authentication failed" in why and SCRAM in why, \
        "kcat with a wrong %s password: status %d, %r" % (SCRAM, rc, why)
    port = akvtest.free_port()
    w = S.stack.start_worker("worker-scram-wrong", "sec-scram-wrong",
                             extra=worker_extra(port=port, password=wrong))
    need = "credentials the brokers accept"
    ok = akvtest.wait_until(
        lambda: readyz(port)[0] == 503 and need in readyz(port)[1], 30)
    assert ok, "/readyz with a wrong %s password: %r; log: %s" % (
        SCRAM, readyz(port), w.stderr_tail(3))
    note("wrong %s password: kcat: %s; /readyz: %s" % (
        SCRAM, why.split("SASL authentication error: ")[-1],
        readyz(port)[1]))
    stop_worker(w)


@depends("test_secure_cluster_and_readme_acls")
def test_no_secret_in_any_log():
    akvtest.stop_all()
    logs = S.rundir.logs()
    akvtest.assert_no_secrets(logs)
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(SECRETS.kinds().items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "kafka_security", setup=setup,
                      teardown=teardown)
