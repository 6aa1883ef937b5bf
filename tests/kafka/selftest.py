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
  8. SIGTERM stops the three: exit 0.

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

    def __init__(self, rundir, name, brokers, topics):
        self.name = name
        self.stderr_path = rundir.file("%s.stderr.log" % name)
        self._err = open(self.stderr_path, "wb")
        t0 = time.monotonic()
        self.p = subprocess.Popen(
            [str(LAUNCHER), "--brokers", str(brokers),
             *[a for t in topics for a in ("--topic", t)]],
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

    def control(self, cmd, timeout=120):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        answer = self.line(timeout, "answer to %r" % cmd)
        assert answer == "ok", "%r answered %r" % (cmd, answer)

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


def setup(rundir):
    S["rundir"] = rundir


def teardown(rundir):
    for k in ("one", "three"):
        if k in S:
            S[k].kill()


if __name__ == "__main__":
    akvtest.run_tests(globals(), "kafka-selftest", setup=setup,
                      teardown=teardown)
