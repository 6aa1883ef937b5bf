#!/usr/bin/python3
"""Self-check of tests/kafka/kafka-local: a real Kafka broker for tests.

Not part of `make test` yet (tests/run-tests.sh runs tests/integration/
only). Run it after `make kafka` and `make`:

  /usr/bin/python3 tests/kafka/selftest.py

Without build/kafka/libs (no `make kafka`) or java, every test passes with
the note "skipped: run make kafka".

  1. one node with a 4-partition topic comes up; its bootstrap is the first
     stdout line and the data directory is named on stderr;
  2. 1,000 records produced with kcat are read back whole by `kcat -G`
     (a consumer group, librdkafka like the worker);
  3. `ak2vault lag` sees that group's commits: lag 0 over 1,000 records;
  4. SIGTERM stops it: exit 0, no JVM left, the data directory removed;
  5. three nodes (a KRaft quorum of three) with replication factor 3 come
     up;
  6. with node 1 killed (-9) through the control protocol, producing and a
     group consuming still work (leaders and the group coordinator move;
     kcat is given the live nodes only, see the test);
  7. node 1 restarted comes back, the ISR fills again, records still flow
     and ak2vault lag works;
  8. SIGTERM stops the three: exit 0;
  9. --security sasl_ssl: one node comes up with users from --users and
     its test CA at --ca-out; kcat (PLAIN over TLS, trusting that CA)
     cannot produce without an ACL, can once "acl add" granted Write, and
     a kcat -G group reads the records back only once Read on the topic
     AND the group are granted; "acls" lists the grants;
 10. SCRAM-SHA-512: the Java client logs in as admin (SCRAM credentials
     are there) while kcat's librdkafka 2.0.2 is refused (its nonce bug);
     a wrong password is refused; SIGTERM stops it: exit 0;
 11. --libs build/kafka/libs-3.9 (Kafka 3.9, for SCRAM with librdkafka
     < 2.6.1): a sasl_ssl node comes up and names its release on stderr;
     kcat logs in with SCRAM-SHA-512, produces and reads back once the
     ACLs are granted, a wrong password is refused; SIGTERM: exit 0, no
     JVM left (skipped without that directory).

Start-up times are printed as "# " notes.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import os  # noqa: E402
import queue  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import akvtest  # noqa: E402
from akvtest import REPO, depends, note  # noqa: E402

LAUNCHER = REPO / "tests" / "kafka" / "kafka-local"
LIBS = REPO / "build" / "kafka" / "libs"
LIBS_3_9 = REPO / "build" / "kafka" / "libs-3.9"
TOPIC = "akv.selftest"
PARTITIONS = 4

SKIP = None
if not any(LIBS.glob(".kafka-*")):
    SKIP = "skipped: run make kafka (no %s)" % LIBS
elif shutil.which("java") is None:
    SKIP = "skipped: run make kafka (no java)"

S = {}


def skipped():
    if SKIP:
        note(SKIP)
    return bool(SKIP)


class Cluster:
    """kafka-local as a child: stdout lines through a queue, stdin for the
    control commands, stderr to the run directory."""

    def __init__(self, rundir, name, brokers, topics, args=()):
        self.name = name
        self.stderr_path = rundir.file("%s.stderr.log" % name)
        self._err = open(self.stderr_path, "wb")
        t0 = time.monotonic()
        self.p = subprocess.Popen(
            [str(LAUNCHER), "--brokers", str(brokers),
             *[a for t in topics for a in ("--topic", t)], *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            env=akvtest.child_env({"KAFKA_LOCAL_DIR": str(rundir.path)}),
            cwd=str(rundir.path), start_new_session=True,
            preexec_fn=akvtest._set_pdeathsig, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.bootstrap = self.line(180, "the bootstrap line")
        self.startup = time.monotonic() - t0

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no %s from kafka-local after %ds (see %s)"
                                 % (what, timeout, self.stderr_path)) \
                from None
        if line is None:
            raise AssertionError("kafka-local exited (%s) before %s: %s" % (
                self.p.wait(), what, self.stderr_tail()))
        return line

    def stderr_tail(self):
        return " | ".join(self.stderr_path.read_text(
            errors="replace").strip().splitlines()[-3:])

    def control(self, cmd, timeout=120, want="ok"):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        answer = self.line(timeout, "answer to %r" % cmd)
        if want is None:
            return answer
        assert answer == want, "%r answered %r" % (cmd, answer)
        return answer

    def datadir(self):
        for line in self.stderr_path.read_text().splitlines():
            if "data and logs in " in line:
                return Path(line.split("data and logs in ", 1)[1].strip())
        raise AssertionError("no data directory on stderr")

    def stop(self, timeout=30):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError("kafka-local still running %ds after "
                                 "SIGTERM" % timeout) from None
        self._err.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def jvms_under(path):
    """PIDs of processes whose command line names \\p path."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(path).encode() in cmd and b"java" in cmd:
            out.append(int(d.name))
    return out


def rss_mib(pids):
    out = []
    for pid in pids:
        try:
            for line in Path("/proc/%d/status" % pid).read_text() \
                    .splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) // 1024)
        except OSError:
            pass
    return out


def produce(bootstrap, start, count, name):
    recs = [(p, "k%d" % i, "v%d" % i)
            for i in range(start, start + count)
            for p in [i % PARTITIONS]]
    recs.sort(key=lambda r: r[0])
    akvtest.kcat_produce_many(bootstrap, TOPIC, recs, S["rundir"], name=name)


def group_consume(bootstrap, group, name, timeout=60):
    """Everything not yet committed by \\p group, read by kcat -G until the
    end of every partition. @returns the keys."""
    rundir = S["rundir"]
    # Not "-o beginning": with -G kcat applies it to every assignment,
    # over the committed offsets.
    argv = ["kcat", "-b", bootstrap, "-G", group,
            "-X", "auto.offset.reset=earliest", "-e",
            "-q", "-f", "%k\\n", TOPIC]
    with open(rundir.file("%s.stderr.log" % name), "ab") as err:
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=err,
                               env=akvtest.child_env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("kcat -G still running after %ds" %
                                 timeout) from None
    assert r.returncode == 0, "kcat -G exited %d" % r.returncode
    return [k for k in r.stdout.decode().splitlines() if k]


def lag(bootstrap, group):
    rundir = S["rundir"]
    cfg = akvtest.write_config(rundir.file("lag-%s.cfg" % group), bootstrap,
                               "http://127.0.0.1:9", "http://127.0.0.1:9",
                               group=group, topic=TOPIC)
    r = subprocess.run([akvtest.binary("ak2vault"), "lag", "-c", str(cfg),
                        "--group", group, "--json"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(), timeout=60)
    assert r.returncode == 0, "ak2vault lag exited %d: %s" % (
        r.returncode, r.stderr.decode(errors="replace")[-300:])
    import json
    return json.loads(r.stdout)


# -- one node -----------------------------------------------------------------

def test_one_node_starts():
    if skipped():
        return
    c = S["one"] = Cluster(S["rundir"], "kafka-local-1", 1,
                           ["%s:%d" % (TOPIC, PARTITIONS)])
    parts = c.bootstrap.split(",")
    assert len(parts) == 1 and parts[0].startswith("127.0.0.1:"), \
        c.bootstrap
    assert c.datadir().is_dir()
    pids = jvms_under(c.datadir())
    assert len(pids) == 1, "JVMs: %s" % pids
    note("1 node up in %.1fs, broker RSS %s MiB" % (c.startup,
                                                     rss_mib(pids)))


@depends("test_one_node_starts")
def test_group_reads_1000_records():
    if skipped():
        return
    b = S["one"].bootstrap
    produce(b, 0, 1000, "kcat-1")
    keys = group_consume(b, "selftest-1", "kcat-group-1")
    assert len(keys) == 1000 and set(keys) == {
        "k%d" % i for i in range(1000)}, "%d keys read" % len(keys)


@depends("test_group_reads_1000_records")
def test_ak2vault_lag():
    if skipped():
        return
    j = lag(S["one"].bootstrap, "selftest-1")
    assert j["lag"] == 0, j
    parts = j["partitions"]
    assert len(parts) == PARTITIONS, j
    assert sum(p["committed"] for p in parts) == 1000, j
    assert sum(p["end"] for p in parts) == 1000, j


@depends("test_one_node_starts")
def test_one_node_stops_cleanly():
    if skipped():
        return
    c = S["one"]
    d = c.datadir()
    t0 = time.monotonic()
    rc = c.stop()
    note("1 node stopped in %.1fs" % (time.monotonic() - t0))
    assert rc == 0, "exit status %d" % rc
    assert not jvms_under(d), "JVMs left: %s" % jvms_under(d)
    assert not d.exists(), "%s not removed" % d


# -- three nodes ----------------------------------------------------------------

def test_three_nodes_start():
    if skipped():
        return
    c = S["three"] = Cluster(S["rundir"], "kafka-local-3", 3,
                             ["%s:%d" % (TOPIC, PARTITIONS)])
    assert len(c.bootstrap.split(",")) == 3, c.bootstrap
    pids = jvms_under(c.datadir())
    assert len(pids) == 3, "JVMs: %s" % pids
    note("3 nodes up in %.1fs, broker RSS %s MiB" % (c.startup,
                                                      rss_mib(pids)))
    produce(c.bootstrap, 0, 500, "kcat-3")


@depends("test_three_nodes_start")
def test_kill_one_node():
    if skipped():
        return
    c = S["three"]
    t0 = time.monotonic()
    c.control("kill 1")
    assert len(jvms_under(c.datadir())) == 2
    # kcat gives up ("All broker connections are down: terminating") when
    # its first bootstrap connection happens to hit the dead node (1 run
    # in 4): it gets the live nodes only.
    live = ",".join(c.bootstrap.split(",")[1:])
    produce(live, 500, 500, "kcat-3")
    keys = group_consume(live, "selftest-3", "kcat-group-3")
    assert set(keys) == {"k%d" % i for i in range(1000)}, \
        "%d keys read" % len(keys)
    note("with node 1 killed: 500 produced and 1000 read by a group in "
         "%.1fs" % (time.monotonic() - t0))


@depends("test_kill_one_node")
def test_restart_node():
    if skipped():
        return
    c = S["three"]
    t0 = time.monotonic()
    c.control("start 1")
    t1 = time.monotonic()
    c.control("ready")
    note("node 1 back in %.1fs, full ISR %.1fs later" % (
        t1 - t0, time.monotonic() - t1))
    produce(c.bootstrap, 1000, 200, "kcat-3")
    keys = group_consume(c.bootstrap, "selftest-3", "kcat-group-3")
    assert set(keys) == {"k%d" % i for i in range(1000, 1200)}, \
        "%d keys read" % len(keys)
    j = lag(c.bootstrap, "selftest-3")
    assert j["lag"] == 0 and sum(
        p["committed"] for p in j["partitions"]) == 1200, j


@depends("test_three_nodes_start")
def test_three_nodes_stop_cleanly():
    if skipped():
        return
    c = S["three"]
    d = c.datadir()
    t0 = time.monotonic()
    rc = c.stop()
    note("3 nodes stopped in %.1fs" % (time.monotonic() - t0))
    assert rc == 0, "exit status %d" % rc
    assert not jvms_under(d), "JVMs left: %s" % jvms_under(d)
    assert not d.exists(), "%s not removed" % d


# -- SASL_SSL ----------------------------------------------------------------

SEC_USERS = ("admin", "alice", "bob")


def kcat_sec(user, args, data=None, mechanism="PLAIN", timeout=30,
             name="kcat-sec"):
    """kcat as \p user over SASL_SSL (a 0600 -F file: no password on the
    command line). @returns (status, stdout)."""
    rundir = S["rundir"]
    conf = rundir.write("%s-%s.conf" % (user, mechanism), (
        "security.protocol=SASL_SSL\nsasl.mechanisms=%s\n"
        "sasl.username=%s\nsasl.password=%s\nssl.ca.location=%s\n") % (
            mechanism, user, S["pw"].get(user, "wrong-password"), S["ca"]))
    argv = ["kcat", "-F", str(conf), "-b", S["sec"].bootstrap, *args]
    with open(rundir.file("%s.stderr.log" % name), "ab") as err:
        try:
            r = subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                               stderr=err, env=akvtest.child_env(),
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, ""
    return r.returncode, r.stdout.decode(errors="replace")


def test_sasl_ssl_node_starts():
    if skipped():
        return
    rundir = S["rundir"]
    S["pw"] = {u: akvtest.random_secret(20) for u in SEC_USERS}
    for pw in S["pw"].values():
        akvtest.SECRETS.add("SASL password", pw)
    users = rundir.write("users", "".join("%s=%s\n" % kv
                                          for kv in S["pw"].items()))
    S["ca"] = rundir.file("sec-ca.pem")
    c = Cluster(rundir, "kafka-local-sec", 1, [TOPIC + ":2"], args=(
        "--security", "sasl_ssl", "--users", str(users), "--ca-out",
        str(S["ca"])))
    S["sec"] = c
    note("sasl_ssl: 1 node up in %.1fs" % c.startup)
    assert S["ca"].read_text().startswith("-----BEGIN CERTIFICATE-----"), \
        "no CA certificate at --ca-out"
    assert c.control("acls", want=None) == "", "ACLs before any grant"


@depends("test_sasl_ssl_node_starts")
def test_sasl_ssl_acls_decide():
    if skipped():
        return
    c = S["sec"]
    data = b"".join(b"s%d\n" % i for i in range(20))
    rc, _ = kcat_sec("alice", ["-P", "-t", TOPIC], data)
    assert rc != 0, "alice produced without an ACL"
    c.control("acl add User:alice Write topic " + TOPIC)
    rc, _ = kcat_sec("alice", ["-P", "-t", TOPIC], data)
    assert rc == 0, "alice could not produce with Write granted"
    group = ["-G", "sec-g", "-X", "auto.offset.reset=earliest", "-e", "-q",
             "-f", "%s\n", TOPIC]
    c.control("acl add User:bob Read topic " + TOPIC)
    rc, out = kcat_sec("bob", group, timeout=20)
    assert not out.strip(), "bob read records without Read on the group"
    c.control("acl add User:bob Read group sec-g")
    rc, out = kcat_sec("bob", group, timeout=60)
    assert rc == 0 and sorted(out.split()) == sorted(
        "s%d" % i for i in range(20)), "bob read %r (status %s)" % (
            out[:80], rc)
    acls = c.control("acls", want=None).split()
    assert sorted(acls) == sorted([
        "User:alice:Write:topic:" + TOPIC, "User:bob:Read:topic:" + TOPIC,
        "User:bob:Read:group:sec-g"]), acls
    c.control("acl remove User:bob Read group sec-g")
    assert "User:bob:Read:group:sec-g" not in c.control("acls", want=None)


@depends("test_sasl_ssl_node_starts")
def test_sasl_ssl_scram_and_stop():
    if skipped():
        return
    rundir = S["rundir"]
    c = S["sec"]
    cfg = rundir.write("admin-scram.properties", (
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram."
        "ScramLoginModule required username=\"admin\" password=\"%s\";\n"
        "ssl.truststore.type=PEM\nssl.truststore.location=%s\n") % (
            S["pw"]["admin"], S["ca"]))
    jars = ":".join(str(j) for j in sorted(LIBS.glob("*.jar")))
    with open(rundir.file("java-scram.log"), "ab") as out:
        r = subprocess.run(
            ["java", "-Xmx128m", "-cp", jars,
             "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server",
             c.bootstrap, "--command-config", str(cfg), "--describe",
             "--entity-type", "users"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=out, timeout=120)
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0 and "'alice' are SCRAM-SHA-512" in text, \
        "the Java client as admin over SCRAM: status %d: %s" % (
            r.returncode, text[-200:])
    rc, _ = kcat_sec("admin", ["-L"], mechanism="SCRAM-SHA-512", timeout=20)
    assert rc != 0, "kcat (librdkafka 2.0.2) logged in with SCRAM: the " \
                    "nonce workaround in README is stale"
    rc, _ = kcat_sec("nobody", ["-L"], timeout=20)
    assert rc != 0, "a wrong password was accepted"
    rc = c.stop()
    assert rc == 0, "exit status %d" % rc


@depends("test_sasl_ssl_node_starts")
def test_kafka_3_9_scram():
    if skipped():
        return
    if not any(LIBS_3_9.glob(".kafka-3.9.*")):
        note("skipped: run make kafka (no %s)" % LIBS_3_9)
        return
    rundir = S["rundir"]
    S["sec"].kill()  # stopped by the test before; the handle is reused
    users = rundir.file("users")
    S["ca"] = rundir.file("sec39-ca.pem")
    c = Cluster(rundir, "kafka-local-3.9", 1, [TOPIC + ":2"], args=(
        "--security", "sasl_ssl", "--users", str(users), "--ca-out",
        str(S["ca"]), "--libs", str(LIBS_3_9)))
    S["sec"] = c
    said = c.stderr_path.read_text()
    assert "Kafka 3.9." in said, "not Kafka 3.9: %s" % c.stderr_tail()
    note("Kafka 3.9 sasl_ssl: 1 node up in %.1fs" % c.startup)
    scram = "SCRAM-SHA-512"
    data = b"".join(b"t%d\n" % i for i in range(10))
    rc, _ = kcat_sec("alice", ["-P", "-t", TOPIC], data, mechanism=scram)
    assert rc != 0, "alice produced without an ACL"
    c.control("acl add User:alice Write topic " + TOPIC)
    rc, _ = kcat_sec("alice", ["-P", "-t", TOPIC], data, mechanism=scram)
    assert rc == 0, "alice could not produce over %s with Write " \
                    "granted (status %s)" % (scram, rc)
    c.control("acl add User:bob Read topic " + TOPIC)
    c.control("acl add User:bob Read group sec39-g")
    rc, out = kcat_sec("bob", ["-G", "sec39-g", "-X",
                               "auto.offset.reset=earliest", "-e", "-q",
                               "-f", "%s\n", TOPIC], mechanism=scram,
                       timeout=60)
    assert rc == 0 and sorted(out.split()) == sorted(
        "t%d" % i for i in range(10)), "bob read %r over %s (status %s)" % (
            out[:80], scram, rc)
    rc, _ = kcat_sec("nobody", ["-L"], mechanism=scram, timeout=20)
    assert rc != 0, "a wrong password was accepted"
    d = c.datadir()
    rc = c.stop()
    assert rc == 0, "exit status %d" % rc
    assert not jvms_under(d), "JVMs left: %s" % jvms_under(d)


def setup(rundir):
    S["rundir"] = rundir


def teardown(rundir):
    for k in ("one", "three", "sec"):
        if k in S:
            S[k].kill()


if __name__ == "__main__":
    akvtest.run_tests(globals(), "kafka-selftest", setup=setup,
                      teardown=teardown)
