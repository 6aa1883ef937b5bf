#!/usr/bin/python3
"""akvtest — the shared harness of ak2vault's Python-driven tests and demo.

Standard library only. It provides:

* Proc: a child process with its stderr (and stdout) captured to files in
  the run directory, optionally reading the address line a stand-in prints
  first; stopped with SIGTERM, then SIGKILL after a grace period, or
  reaped by wait_rusage() for its peak RSS and CPU time. Every
  Proc ever started is stopped at exit, on Ctrl-C and on SIGTERM/SIGHUP, and
  dies with this process (PR_SET_PDEATHSIG) if it is killed outright.
* RunDir: the per-run temporary directory for logs and configs; kept (and
  its path printed) when something failed.
* http_json(): a small urllib JSON client that never uses a proxy;
  tls_client_context() for stand-ins serving HTTPS with a test CA.
* wait_until(): bounded polling.
* write_config(): an ak2vault libconfig file.
* Stack: a Kafka broker + fake-vault + fake-authentik with fresh random
  secrets, and helpers for their APIs (fault plans included) and for
  starting ak2vault workers. The broker is librdkafka's mock cluster
  (mock-kafka) or a real Apache Kafka cluster (kafka-local), chosen by
  $AKV_KAFKA ("mock", the default, or "real"; see KAFKA).
* kcat_produce() / kcat_consume(): records in and out of a topic with kcat,
  keys and headers included.
* Secrets / scan_for_secrets(): which captured file holds which KIND of
  secret — never the value.
* podman() / podman_problem() / image_inspect(): the container image
  `make image` built (IMAGE), with docker/image/containers.conf.
* run_tests(): runs the test_* functions of a module in order, prints
  "ok - name" / "not ok - name: reason", and ends with exactly
  "N passed, M failed" (exit status 0 only when M == 0).

Secrets never reach the output: every reason and diagnostic goes through
Secrets.scrub(), which replaces any known secret value by its kind.
"""

import atexit
import ctypes
import json
import os
import queue
import re
import secrets as _rand
import shutil
import signal
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOPIC = "authentik.events"

# The broker the suites run on: "mock" (mock-kafka, librdkafka's mock
# cluster in one process) or "real" (kafka-local, Apache Kafka on the JDK;
# `make kafka` installs it). tests/run-tests.sh runs the suites where Kafka
# behaviour matters once on each.
KAFKA = os.environ.get("AKV_KAFKA") or "mock"
if KAFKA not in ("mock", "real"):
    sys.exit("AKV_KAFKA must be mock or real, not %r" % KAFKA)
# The Vault the suites run on: "fake" (fake-vault, which injects faults)
# or "real" (HashiCorp Vault's dev server; `make vault` builds it).
# tests/run-tests.sh runs the suites where Vault's own behaviour matters
# once on each; see RealVault.
VAULT = os.environ.get("AKV_VAULT") or "fake"
if VAULT not in ("fake", "real"):
    sys.exit("AKV_VAULT must be fake or real, not %r" % VAULT)
# librdkafka 2.0.2's mock coordinator sometimes answers a member's
# SyncGroup with INVALID_REQUEST and then holds its re-join for a whole
# session timeout. On the mock, workers get the smallest session timeout
# allowed to keep that stall short; a real broker does not stall so, and
# there the worker's defaults apply. Merge it into a worker's settings.
MOCK_GROUP_WORKAROUND = ({"kafka": {"session_timeout_ms": 6000}}
                         if KAFKA == "mock" else {})

KAFKA_LIBS = REPO / "build/kafka/libs"
# Seconds a real cluster may take to come up (3 JVMs on 2 cores: ~13 s).
REAL_KAFKA_STARTUP = 180.0

# Exit codes of ak2vault (<sysexits.h>).
EX_OK = 0
EX_USAGE = 64
EX_SOFTWARE = 70
EX_CONFIG = 78


def bin_dir():
    """The directory holding ak2vault and the stand-ins ($AKV_BIN)."""
    return Path(os.environ.get("AKV_BIN") or REPO / "bin").resolve()


def binary(name):
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise AssertionError("%s not found or not executable (build with "
                             "`make`, or set AKV_BIN)" % path)
    return str(path)


def say(*parts):
    """Prints one line to stdout right away (the test runner merges and
    tees our output, so nothing may sit in a buffer)."""
    print(*parts, flush=True)


def note(msg):
    """A diagnostic line; scrubbed of every known secret."""
    say("# " + SECRETS.scrub(str(msg)))


# ---------------------------------------------------------------------------
# Secrets


class Secrets:
    """Secret values by kind. Only kinds and file names are ever reported."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_value = {}

    def add(self, kind, value):
        if value:
            with self._lock:
                self._by_value.setdefault(value, kind)

    def add_many(self, kind, values):
        for v in values:
            self.add(kind, v)

    def items(self):
        with self._lock:
            return list(self._by_value.items())

    def kinds(self):
        counts = {}
        for _, kind in self.items():
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def scrub(self, text):
        """Replaces every known secret in \\p text by <kind>."""
        if not text:
            return text
        # Longest first, so a secret containing another is replaced whole.
        for value, kind in sorted(self.items(), key=lambda i: -len(i[0])):
            if value in text:
                text = text.replace(value, "<%s>" % kind)
        return text


SECRETS = Secrets()


def random_secret(n=32):
    alphabet = string.ascii_letters + string.digits
    return "".join(_rand.choice(alphabet) for _ in range(n))


def scan_for_secrets(paths, secret_items=None):
    """Looks for every secret in every file.

    @returns a sorted list of (file name, kind, how many distinct values of
    that kind were found). Never the values themselves.
    """
    items = secret_items if secret_items is not None else SECRETS.items()
    # Secrets made of "word" bytes only (random keys and tokens: nearly all
    # of them) are looked up by length among the substrings of each run of
    # such bytes, so the cost does not grow with the number of secrets
    # (tests that make thousands of keys); any other secret is searched
    # for directly.
    words, others = {}, []
    for v, kind in items:
        if not v:
            continue
        b = v.encode()
        if _WORD_RUN.fullmatch(b):
            words.setdefault(len(b), {}).setdefault(b, set()).add(kind)
        else:
            others.append((b, kind))
    lengths = sorted(words)
    run_re = re.compile(rb"[A-Za-z0-9_-]{%d,}" % lengths[0]) if lengths \
        else None
    found = {}
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError:
            continue
        hits = set()  # (value, kind)
        for value, kind in others:
            if value in data:
                hits.add((value, kind))
        if run_re is not None:
            for m in run_re.finditer(data):
                run = m.group()
                for n in lengths:
                    if n > len(run):
                        break
                    table = words[n]
                    for i in range(len(run) - n + 1):
                        kinds = table.get(run[i:i + n])
                        if kinds:
                            hits.update((run[i:i + n], k) for k in kinds)
        for _, kind in hits:
            key = (str(p), kind)
            found[key] = found.get(key, 0) + 1
    return sorted((f, k, n) for (f, k), n in found.items())


_WORD_RUN = re.compile(rb"[A-Za-z0-9_-]+")


def assert_no_secrets(paths, base=None):
    """Fails when any registered secret is in any of \p paths, naming the
    file (relative to \p base, else by its name), the kind and how many
    values: never a value. @returns the paths scanned."""
    paths = list(paths)
    hits = scan_for_secrets(paths)
    assert not hits, "secrets in output: " + "; ".join(
        "%s (%d) in %s" % (k, n, Path(f).relative_to(base) if base
                           else Path(f).name) for f, k, n in hits)
    return paths


# ---------------------------------------------------------------------------
# Run directory and processes


class RunDir:
    """Per-run directory for logs and configs ($AKV_OUT or the system
    temporary directory)."""

    def __init__(self, name):
        base = os.environ.get("AKV_OUT") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="akv-%s-" % name, dir=base))
        self.keep = bool(os.environ.get("AKV_KEEP"))
        self._files = []

    def file(self, name):
        return self.path / name

    def write(self, name, text, mode=0o600):
        p = self.path / name
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return p

    def sub(self, name):
        """A RunDir for the subdirectory \\p name (created), e.g. one per
        stack when a test file runs several: the process log names stay
        unique. Its files are kept or removed with the parent's."""
        child = RunDir.__new__(RunDir)
        child.path = self.path / name
        child.path.mkdir(mode=0o700, exist_ok=True)
        child.keep = self.keep
        child._files = []
        return child

    def logs(self):
        """Every captured output file (*.log) in the run directory and its
        subdirectories."""
        return sorted(p for p in self.path.rglob("*.log") if p.is_file())

    def cleanup(self, failed):
        if failed or self.keep:
            say("# logs kept in %s" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


_PROCS = []
_PROCS_LOCK = threading.Lock()

_libc = None


def _set_pdeathsig():
    """preexec_fn: the child gets SIGTERM if this process dies (Popen is
    only ever called from the main thread, which lives as long as we do)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def child_env(extra=None):
    """Our environment without anything that could steer a child
    (ak2vault settings, secrets, proxies), plus \\p extra."""
    drop = re.compile(r"^(KAFKA_|VAULT_|AUTHENTIK_|AK2VAULT_|AKV_)|proxy$",
                      re.IGNORECASE)
    env = {k: v for k, v in os.environ.items() if not drop.search(k)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update({k: v for k, v in extra.items() if v is not None})
    return env


class Proc:
    """One child process; stderr goes to <rundir>/<name>.stderr.log, stdout
    to <name>.stdout.log (after the address line, when there is one)."""

    def __init__(self, name, argv, rundir, env=None, address_line=False,
                 startup_timeout=20.0, control=False):
        """\\p control: the child reads commands on stdin and answers each
        with one stdout line (kafka-local); see command(). Implies
        \\p address_line."""
        address_line = address_line or control
        self.name = name
        self.argv = list(argv)
        self.rundir = rundir
        self.stderr_path = rundir.file("%s.stderr.log" % name)
        self.stdout_path = rundir.file("%s.stdout.log" % name)
        self.address = None
        self.returncode = None
        self.killed = False
        self._pump = None
        self._answers = queue.Queue() if control else None
        self._control_lock = threading.Lock()
        self._stderr = open(self.stderr_path, "wb")
        stdout = subprocess.PIPE if address_line else open(
            self.stdout_path, "wb")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if control else subprocess.DEVNULL,
                stdout=stdout,
                stderr=self._stderr, env=child_env(env), cwd=str(rundir.path),
                start_new_session=True, preexec_fn=_set_pdeathsig)
        finally:
            if not address_line:
                stdout.close()
        with _PROCS_LOCK:
            _PROCS.append(self)
        if address_line:
            self._read_address(startup_timeout)

    @property
    def pid(self):
        return self.popen.pid

    def _read_address(self, timeout):
        first = queue.Queue()

        def pump():
            with open(self.stdout_path, "wb") as out:
                line = self.popen.stdout.readline()
                first.put(line)
                if self._answers is not None:
                    for line in iter(self.popen.stdout.readline, b""):
                        out.write(line)
                        out.flush()
                        self._answers.put(line.decode(errors="replace")
                                          .strip())
                    self._answers.put(None)
                    return
                for chunk in iter(lambda: self.popen.stdout.read1(65536), b""):
                    out.write(chunk)
                    out.flush()

        self._pump = threading.Thread(target=pump, daemon=True,
                                      name="%s-stdout" % self.name)
        self._pump.start()
        try:
            line = first.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError("%s printed no address within %.0fs (see %s)"
                                 % (self.name, timeout, self.stderr_path))
        addr = line.decode(errors="replace").strip()
        if not addr:
            rc = self.wait(5)
            raise AssertionError("%s exited (status %s) before printing its "
                                 "address: %s" % (self.name, rc,
                                                  self.stderr_tail()))
        self.address = addr

    def command(self, line, timeout=120.0):
        """Sends one control line (Proc(control=True)) and @returns the
        child's one-line answer; an answer starting with "error" raises."""
        with self._control_lock:
            try:
                self.popen.stdin.write(line.encode() + b"\n")
                self.popen.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise AssertionError("%s is gone (%s)" % (
                    self.name, self.stderr_tail())) from None
            try:
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("%s did not answer %r within %.0fs" %
                                     (self.name, line, timeout)) from None
        if answer is None:
            raise AssertionError("%s exited before answering %r: %s" % (
                self.name, line, self.stderr_tail()))
        if answer.startswith("error"):
            raise AssertionError("%s: %r failed: %s" % (self.name, line,
                                                       answer))
        return answer

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        """The exit status, or None if still running after \\p timeout."""
        try:
            self.returncode = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close()
        return self.returncode

    def wait_rusage(self, timeout):
        """Like wait(), but reaps the child with os.wait4(), which also
        gives its resource usage. @returns (exit status, rusage) — ru_maxrss
        in KiB, ru_utime + ru_stime the CPU seconds — or None if still
        running after \\p timeout (0: just look). Only this method may reap
        the process until it returned a result: running(), wait() and
        stop() would reap it first, and the usage would be lost."""
        if self.popen.returncode is not None:
            raise AssertionError("%s was already reaped: no resource usage"
                                 % self.name)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode  # Popen must not wait again
        self._close()
        return self.returncode, usage

    def signal(self, sig=signal.SIGTERM):
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=15.0):
        """SIGTERM, wait, SIGKILL as a last resort. @returns the exit status
        (negative: killed by that signal)."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.popen.kill()
                self.killed = True
                self.wait(5)
        else:
            self.wait(0)
        return self.popen.returncode

    def _close(self):
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        if self._pump is not None:
            self._pump.join(5)  # the rest of stdout is in its log file
        if not self._stderr.closed:
            self._stderr.close()
        with _PROCS_LOCK:
            if self in _PROCS:
                _PROCS.remove(self)

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, n=5):
        lines = self.stderr_text().strip().splitlines()[-n:]
        return SECRETS.scrub(" | ".join(lines)) or "(no stderr output)"


def stop_all():
    """Stops every process still running, newest first."""
    with _PROCS_LOCK:
        procs = list(reversed(_PROCS))
    for p in procs:
        try:
            p.stop(timeout=10)
        except Exception:  # noqa: BLE001 - keep stopping the others
            pass


atexit.register(stop_all)


class Interrupted(BaseException):
    """SIGTERM/SIGHUP received: unwind like Ctrl-C."""


def _on_term(signum, frame):
    raise Interrupted("signal %d" % signum)


def install_signal_handlers():
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)


# ---------------------------------------------------------------------------
# HTTP, waiting, configs

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HTTPFailure(AssertionError):
    pass


def http_json(method, url, body=None, headers=None, timeout=15.0,
              ssl_context=None):
    """One request. @returns (status, parsed JSON body, or text, or None).

    \\p ssl_context: for https URLs whose server the default trust store
    does not know (see tls_client_context()). Connection failures raise
    HTTPFailure naming method and path only (a body may hold a key; it is
    never part of an error)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    opener = _OPENER
    if ssl_context is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl_context))
    try:
        with opener.open(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        path = urllib.parse.urlsplit(url).path
        raise HTTPFailure("%s %s failed: %s" % (
            method, path, getattr(e, "reason", e))) from None
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def tls_client_context(ca_file, client_cert=None, client_key=None):
    """An SSL context trusting only \\p ca_file, optionally presenting a
    client certificate. The host name is not checked: the harness reaches
    the stand-ins as 127.0.0.1, whatever name their certificate holds (the
    worker's own checks are what the TLS tests are about)."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = False
    if client_cert:
        ctx.load_cert_chain(str(client_cert), str(client_key))
    return ctx


def wait_until(predicate, timeout, interval=0.2):
    """Calls \\p predicate until it returns something truthy or \\p timeout
    seconds passed. @returns that value, or None on timeout (the predicate
    is always called once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _cfg_value(v):
    if isinstance(v, RawCfg):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_cfg_value(x) for x in v) + "]"
    if isinstance(v, dict):  # a nested group, e.g. vault.auth
        return "{ " + " ".join("%s = %s;" % (k, _cfg_value(x))
                               for k, x in v.items()) + " }"
    return json.dumps(str(v))


def config_text(settings):
    """libconfig text for {"group": {"name": value}}; values are str, int,
    float, bool, lists of those, or dicts for nested groups ({"auth":
    {"method": "approle"}} in "vault"); a raw libconfig string is given as
    RawCfg."""
    out = []
    for group, entries in settings.items():
        out.append("%s:\n{" % group)
        for name, v in entries.items():
            out.append("  %s = %s;" % (name, _cfg_value(v)))
        out.append("};")
    return "\n".join(out) + "\n"


class RawCfg:
    def __init__(self, text):
        self.text = text


def merge_settings(*cfgs):
    """Deep merge of {"group": {"name": value}} settings (dicts nest)."""
    out = {}
    for cfg in cfgs:
        for group, entries in cfg.items():
            g = out.setdefault(group, {})
            for name, v in entries.items():
                if isinstance(v, dict) and isinstance(g.get(name), dict):
                    g[name] = dict(g[name], **v)
                else:
                    g[name] = v
    return out


def write_config(path, brokers, authentik_url, vault_addr, group="ak2vault",
                 topic=TOPIC, extra=None):
    """Writes a minimal ak2vault configuration; \\p extra is merged in as
    {"group": {"setting": value}}."""
    settings = {
        "kafka": {"brokers": brokers, "topic": topic, "group": group},
        "authentik": {"url": authentik_url},
        "vault": {"addr": vault_addr, "kv_mount": "kv",
                  "prefix": "authentik"},
        "log": {"level": "info"},
    }
    for g, entries in (extra or {}).items():
        group = settings.setdefault(g, {})
        for name, v in entries.items():
            # Nested groups merge too: {"vault": {"auth": {...}}}.
            if isinstance(v, dict) and isinstance(group.get(name), dict):
                group[name] = dict(group[name], **v)
            else:
                group[name] = v
    Path(path).write_text(config_text(settings))
    return Path(path)


# ---------------------------------------------------------------------------
# ak2vault output

STATS_RE = re.compile(
    r"final stats: consumed=(\d+) skipped=(\d+) matched=(\d+) poison=(\d+) "
    r"written=(\d+) unchanged=(\d+) gone=(\d+) deleted=(\d+) "
    r"filtered=(\d+) retries=(\d+) dead_lettered=(\d+)\s*$")
STATS_FIELDS = ("consumed", "skipped", "matched", "poison", "written",
                "unchanged", "gone", "deleted", "filtered", "retries",
                "dead_lettered")
SYNC_RE = re.compile(
    r"token=(\S+) action=(\S+) "
    r"result=(written|unchanged|gone|deleted|filtered) "
    r"version=(-?\d+) partition=(-?\d+) offset=(-?\d+) event=(\S*)"
    r"(?: events=(\d+))?")
POISON_RE = re.compile(
    r"poison event partition=(\d+) offset=(\d+) action=(\S*) event=(\S*):")


def final_stats(text):
    """The worker's final stats as a dict, from its log; None when its last
    non-empty line is not the stats line."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return None
    last = lines[-1]
    if last.startswith("{"):  # log.format = "json"
        try:
            last = json.loads(last).get("msg", "")
        except ValueError:
            return None
    m = STATS_RE.search(last)
    if not m:
        return None
    return dict(zip(STATS_FIELDS, (int(x) for x in m.groups())))


def sync_lines(text):
    """Per-sync results: dicts with token, action, result, version,
    partition, offset, event (of the first event it answered for) and
    events (how many events the sync answered for: later events for a
    token whose sync was running are coalesced into one follow-up)."""
    out = []
    for m in SYNC_RE.finditer(text):
        out.append({"token": m.group(1), "action": m.group(2),
                    "result": m.group(3), "version": int(m.group(4)),
                    "partition": int(m.group(5)),
                    "offset": int(m.group(6)), "event": m.group(7),
                    "events": int(m.group(8)) if m.group(8) else 1})
    return out


def poison_lines(text):
    return [{"partition": int(m.group(1)), "offset": int(m.group(2)),
             "action": m.group(3), "event": m.group(4)}
            for m in POISON_RE.finditer(text)]


# ---------------------------------------------------------------------------
# The stack


class Stack:
    """A Kafka broker (KAFKA), fake-vault and fake-authentik on loopback,
    each with fresh random secrets (registered in SECRETS)."""

    def __init__(self, rundir, partitions=4, topic=TOPIC, brokers=1,
                 authentik_args=(), vault_args=(), topics=(), vault_tls=None,
                 kafka=None, kafka_args=(), vault=None, max_versions=None):
        """\\p topics: more topics, "NAME[:PARTITIONS]" (e.g. the
        dead-letter topic: the real broker creates no topic on its own);
        \\p vault_args / \\p authentik_args: extra command-line arguments
        of fake-vault / fake-authentik; \\p kafka: "mock" or "real"
        (default: KAFKA); \\p kafka_args: more arguments of the broker's
        launcher (e.g. kafka-local's --security). On the real broker, kafka_command() controls its
        nodes ("kill N", "start N", ...; see kafka-local).

        \\p vault_tls: fake-vault speaks HTTPS only and vault_addr is
        https://127.0.0.1:PORT. A dict of PEM file paths: "cert" and "key"
        (fake-vault's), "ca" (what the harness trusts for it), and
        optionally "client_ca" (fake-vault then requires client
        certificates) with "client_cert" / "client_key" (the harness's own),
        and "server_name", the name the certificate holds (the real Vault's
        CLI checks it).

        \\p vault: "fake" (fake-vault) or "real" (RealVault; default:
        VAULT); \\p vault_args only exist for fake-vault. \\p max_versions:
        the KV mount's max_versions (both).
        """
        self.rundir = rundir
        self.topic = topic
        self.partitions = partitions
        self.vault_token = random_secret(32)
        self.authentik_token = random_secret(32)
        SECRETS.add("Vault root token", self.vault_token)
        SECRETS.add("authentik API token", self.authentik_token)
        self.workers = []
        self._nconfigs = 0
        self.kafka_kind = kafka or KAFKA
        self.kafka = start_kafka(rundir, self.kafka_kind, brokers,
                                 ["%s:%d" % (topic, partitions), *topics],
                                 extra_args=kafka_args)
        self.brokers = self.kafka.address
        self.vault_kind = vault or VAULT
        if self.vault_kind == "real":
            if vault_args:
                raise AssertionError(
                    "fake-vault arguments %s: this test needs fake-vault" %
                    " ".join(vault_args))
            self.vault_server = RealVault(rundir, self.vault_token,
                                          tls=vault_tls,
                                          max_versions=max_versions)
        else:
            if max_versions is not None:
                vault_args = ("--max-versions", str(max_versions),
                              *vault_args)
            self.vault_server = FakeVault(rundir, self.vault_token,
                                          tls=vault_tls,
                                          vault_args=vault_args)
        self.vault = self.vault_server.proc
        self.vault_addr = self.vault_server.addr
        self.vault_ssl = self.vault_server.ssl
        self.authentik = Proc("fake-authentik", [
            binary("fake-authentik"), "--listen", "127.0.0.1:0",
            "--brokers", self.brokers, "--topic", topic, *authentik_args],
            rundir, env={"AUTHENTIK_API_TOKEN": self.authentik_token},
            address_line=True)
        self.authentik_url = "http://" + self.authentik.address

    @property
    def real_kafka(self):
        return self.kafka_kind == "real"

    def kafka_command(self, line, timeout=120.0):
        """A kafka-local control command (real broker only)."""
        if not self.real_kafka:
            raise AssertionError("kafka_command(%r) needs the real broker" %
                                 line)
        return self.kafka.command(line, timeout)

    # -- fake-authentik -----------------------------------------------------

    def ak(self, method, path, body=None):
        """authentik API call with the API token."""
        return http_json(method, self.authentik_url + path, body, headers={
            "Authorization": "Bearer " + self.authentik_token})

    def _ak_expect(self, want, method, path, body=None):
        status, out = self.ak(method, path, body)
        if status != want:
            detail = out.get("detail") if isinstance(out, dict) else None
            raise AssertionError("%s %s returned %s (wanted %s)%s" % (
                method, path, status, want,
                ": %s" % SECRETS.scrub(str(detail)) if detail else ""))
        return out

    def create_token(self, identifier, intent="api", description="",
                     expiring=True):
        return self._ak_expect(201, "POST", "/api/v3/core/tokens/", {
            "identifier": identifier, "intent": intent,
            "description": description, "expiring": expiring})

    def patch_token(self, identifier, fields):
        return self._ak_expect(200, "PATCH",
                               "/api/v3/core/tokens/%s/" % identifier, fields)

    def set_key(self, identifier, key):
        SECRETS.add("token key", key)
        self._ak_expect(204, "POST",
                        "/api/v3/core/tokens/%s/set_key/" % identifier,
                        {"key": key})

    def delete_token(self, identifier):
        self._ak_expect(204, "DELETE", "/api/v3/core/tokens/%s/" % identifier)

    def rotate(self, identifier):
        status, _ = http_json(
            "POST", self.authentik_url + "/_fake/tokens/%s/rotate" %
            identifier)
        if status != 200:
            raise AssertionError("rotate %s returned %s" % (identifier,
                                                           status))

    def live_tokens(self):
        """{identifier: token} of every live token, keys included; the keys
        are remembered as secrets for the scan."""
        status, out = http_json("GET", self.authentik_url + "/_fake/tokens")
        if status != 200 or not isinstance(out, dict):
            raise AssertionError("GET /_fake/tokens returned %s" % status)
        tokens = {t["identifier"]: t for t in out["tokens"]}
        SECRETS.add_many("token key", (t.get("key") for t in
                                       tokens.values()))
        return tokens

    def authentik_stats(self):
        return http_json("GET", self.authentik_url + "/_fake/stats")[1]

    # -- Vault (fake-vault or the real one) ---------------------------------

    @property
    def real_vault(self):
        return self.vault_kind == "real"

    def vault_kv(self):
        """{path under the mount: secret} — e.g. "authentik/deploy-bot"."""
        return self.vault_server.kv()

    def vault_stats(self):
        return self.vault_server.stats()

    def vault_requests(self):
        """[{method, path, status}] of the requests Vault answered (the
        harness's own left out)."""
        return self.vault_server.requests()

    def vault_api(self, method, path, body=None):
        """A /v1 request with the root token: (status, JSON body)."""
        return self.vault_server.api(method, path, body)

    def vault_current(self, kv=None):
        """{identifier: (current version, data)} under authentik/."""
        if kv is None and self.real_vault:
            return self.vault_server.current("authentik/")
        out = {}
        for path, sec in (kv if kv is not None else self.vault_kv()).items():
            if not path.startswith("authentik/"):
                continue
            cur = sec.get("current_version")
            ver = sec.get("versions", {}).get(str(cur), {})
            out[path[len("authentik/"):]] = (cur, ver.get("data"))
        return out

    def vault_mismatches(self, exclude=(), only=None, kv=None):
        """[(identifier, what differs)] for every live authentik token (of
        \p only when given, those in \p exclude left out) whose Vault
        copy is missing or not exactly {"key": its current key, "intent":
        its intent}; \p kv: a vault_kv() read before, instead of Vault
        now."""
        live = self.live_tokens()
        current = self.vault_current(kv)
        bad = []
        for ident, tok in sorted(live.items()):
            if ident in exclude or (only is not None and ident not in only):
                continue
            got = current.get(ident)
            if got is None:
                bad.append((ident, "missing"))
                continue
            data = got[1]
            if data == {"key": tok["key"], "intent": tok["intent"]}:
                continue
            if not isinstance(data, dict):
                bad.append((ident, "no data (v%s)" % got[0]))
            elif data.get("key") != tok["key"]:
                bad.append((ident, "stale key (v%s)" % got[0]))
            elif data.get("intent") != tok["intent"]:
                bad.append((ident, "intent %r, authentik says %r (v%s)" % (
                    data.get("intent"), tok["intent"], got[0])))
            else:
                bad.append((ident, "fields %s (v%s)" % (sorted(data),
                                                         got[0])))
        return bad

    # -- fault plans (both fakes) -------------------------------------------

    def vault_faults(self, plan=None):
        """fake-vault's fault plan: {"error_rates": {"503": 0.2}, ...}."""
        return self.vault_server.faults(plan)

    def authentik_faults(self, plan=None):
        """fake-authentik's fault plan: {"deny_status": 403, ...}."""
        return fault_plan(self.authentik_url, plan)

    # -- workers ------------------------------------------------------------

    def worker_config(self, group, extra=None, name=None):
        self._nconfigs += 1
        path = self.rundir.file(name or "ak2vault-%d.cfg" % self._nconfigs)
        return write_config(path, self.brokers, self.authentik_url,
                            self.vault_addr, group=group, topic=self.topic,
                            extra=merge_settings(
                                self.vault_server.worker_settings(),
                                extra or {}))

    def worker_env(self, extra=None):
        """The Vault and authentik credentials of a worker or tool:
        VAULT_TOKEN (fake-vault's root token; on the real Vault none, the
        configuration logs in with AppRole) and AUTHENTIK_TOKEN, updated
        with \\p extra (a None value leaves a variable out)."""
        env = {"VAULT_TOKEN": self.vault_token,
               "AUTHENTIK_TOKEN": self.authentik_token}
        env.update(self.vault_server.worker_env())
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def start_worker(self, name, group, exit_at_end=False, extra=None,
                     env=None):
        """Starts `ak2vault run` with VAULT_TOKEN and AUTHENTIK_TOKEN set;
        \\p env overrides them (a None value leaves a variable out, e.g.
        {"VAULT_TOKEN": None} for the login auth methods)."""
        cfg = self.worker_config(group, extra, name="%s.cfg" % name)
        argv = [binary("ak2vault"), "run", "-c", str(cfg)]
        if exit_at_end:
            argv.append("--exit-at-end")
        w = Proc(name, argv, self.rundir, env=self.worker_env(env))
        self.workers.append(w)
        return w

    def lag(self, group, timeout=30):
        """`ak2vault lag --json` for \\p group (no secrets needed; safe
        while workers run). @returns {"group", "topic", "partitions":
        [{"partition", "committed", "end", "low", "lag"}], "lag": total};
        committed -1 means nothing committed. Output is captured as
        ak2vault-lag.*.log (appended)."""
        cfg = self.worker_config(group, name="ak2vault-lag.cfg")
        argv = [binary("ak2vault"), "lag", "-c", str(cfg), "--group", group,
                "--json"]
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, env=child_env(),
                               cwd=str(self.rundir.path), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("ak2vault lag still running after %ds" %
                                 timeout) from None
        with open(self.rundir.file("ak2vault-lag.stdout.log"), "ab") as f:
            f.write(r.stdout)
        with open(self.rundir.file("ak2vault-lag.stderr.log"), "ab") as f:
            f.write(r.stderr)
        if r.returncode != 0:
            raise AssertionError("ak2vault lag exited %d: %s" % (
                r.returncode, SECRETS.scrub(
                    r.stderr.decode(errors="replace").strip()[-300:])))
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise AssertionError("ak2vault lag --json printed no JSON: %r" %
                                 r.stdout[:200]) from None

    def stop(self):
        """Stops the workers, then the stand-ins. @returns {name: status}."""
        rcs = {}
        for p in list(self.workers) + [self.authentik, self.vault,
                                       self.kafka]:
            if p is not None:
                rcs[p.name] = p.stop()
        return rcs



def describe(items, limit=10):
    """(identifier, what) pairs as one line, at most \p limit of them."""
    text = ", ".join("%s: %s" % m for m in items[:limit])
    if len(items) > limit:
        text += ", ... (%d in all)" % len(items)
    return text


def fault_plan(base, plan, ssl_context=None):
    """Replaces the fault plan of the stand-in at \\p base (None or {}
    clears it); @returns the effective plan it answered with."""
    if plan:
        status, out = http_json("POST", base + "/_fake/faults", plan,
                                ssl_context=ssl_context)
    else:
        status, out = http_json("DELETE", base + "/_fake/faults",
                                ssl_context=ssl_context)
    if status != 200 or not isinstance(out, dict):
        raise AssertionError("fault plan %s refused: %s %s" % (
            json.dumps(plan), status, out))
    return out


class FakeVault:
    """fake-vault (bin/fake-vault) with \\p root_token, one KV v2 mount kv/;
    \\p tls as Stack's vault_tls; \\p vault_args: more of its arguments."""

    kind = "fake"

    def __init__(self, rundir, root_token, tls=None, vault_args=()):
        self.ssl = None
        tls_args = []
        if tls:
            tls_args = ["--tls-cert", str(tls["cert"]),
                        "--tls-key", str(tls["key"])]
            if tls.get("client_ca"):
                tls_args += ["--tls-client-ca", str(tls["client_ca"])]
            self.ssl = tls_client_context(
                tls["ca"], tls.get("client_cert"), tls.get("client_key"))
        self.token = root_token
        # The root token is on fake-vault's command line (it has no other
        # way to get it); it is never printed.
        self.proc = Proc("fake-vault", [
            binary("fake-vault"), "--listen", "127.0.0.1:0",
            "--root-token", root_token, "--kv-mount", "kv",
            *tls_args, *vault_args], rundir, address_line=True)
        self.addr = ("https://" if tls else "http://") + self.proc.address

    def _get(self, what):
        status, out = http_json("GET", self.addr + "/_fake/" + what,
                                ssl_context=self.ssl)
        if status != 200 or not isinstance(out, dict):
            raise AssertionError("GET /_fake/%s on fake-vault returned %s" %
                                 (what, status))
        return out

    def api(self, method, path, body=None, token=None):
        return http_json(method, "%s/v1/%s" % (self.addr, path), body,
                         headers={"X-Vault-Token": token or self.token},
                         ssl_context=self.ssl)

    def kv(self):
        return self._get("kv").get("secrets", {})

    def stats(self):
        return self._get("stats")

    def requests(self):
        return self._get("requests").get("requests", [])

    def faults(self, plan):
        return fault_plan(self.addr, plan, self.ssl)

    def worker_settings(self):
        return {}

    def worker_env(self):
        return {}


# ---------------------------------------------------------------------------
# A real Vault (AKV_VAULT=real)

VAULT_LOCAL = REPO / "tests/vault/vault-local"
VAULT_BIN_DIR = REPO / "build/vault/bin"
VAULT_SETUP = REPO / "docker/vault/setup.sh"
# How long the worker's AppRole tokens live on the real Vault: short, so
# that a suite's workers renew their token and log in again while it runs.
REAL_VAULT_TOKEN_TTL = "20s"
REAL_VAULT_TOKEN_MAX_TTL = "60s"

# The audit log names the operation, not the HTTP method.
_AUDIT_METHOD = {"read": "GET", "list": "LIST", "create": "POST",
                 "update": "POST", "delete": "DELETE", "patch": "PATCH"}


def _audit_status(entry):
    """The HTTP status of an audited request, from what the audit entry
    holds: Vault's audit log records the error text and the response, not
    the status line. The errors mapped here are those Vault's HTTP layer
    turns into these codes (permission denied and invalid tokens: 403;
    "invalid request", which is all the audit log keeps of a KV v2
    check-and-set mismatch, and other request errors: 400; a missing
    secret: 404 with no error and no data)."""
    err = entry.get("error") or ""
    if "permission denied" in err or "invalid token" in err:
        return 403
    if err:
        return 500 if "internal error" in err else 400
    resp = entry.get("response") or {}
    if entry["request"].get("operation") == "read" and \
            not resp.get("data") and not resp.get("auth"):
        return 404
    return 200 if resp.get("data") or resp.get("auth") else 204


class RealVault:
    """HashiCorp Vault (`make vault` builds it; tests/vault/vault-local
    starts a dev server on loopback), prepared as README's quick start
    prepares a production Vault: docker/vault/setup.sh approle with the
    vault CLI, so the KV v2 mount, the policy docker/vault/ak2vault-policy.hcl
    and an AppRole whose tokens hold only that policy. Workers log in with
    the role-id and secret-id files setup.sh wrote; their tokens live
    REAL_VAULT_TOKEN_TTL, at most REAL_VAULT_TOKEN_MAX_TTL. A file audit
    device records every request: requests() and stats() read it, leaving
    out the harness's own (root token) requests."""

    kind = "real"

    def __init__(self, rundir, root_token, tls=None, max_versions=None,
                 token_ttl=REAL_VAULT_TOKEN_TTL,
                 token_max_ttl=REAL_VAULT_TOKEN_MAX_TTL):
        vault = VAULT_BIN_DIR / "vault"
        if not os.access(vault, os.X_OK):
            raise AssertionError("no real Vault at %s: `make vault` builds "
                                 "it" % vault)
        self.rundir = rundir
        self.token = root_token
        self.ssl = None
        args = []
        if tls:
            args = ["--tls-cert", str(tls["cert"]), "--tls-key",
                    str(tls["key"])]
            if tls.get("client_ca"):
                args += ["--tls-client-ca", str(tls["client_ca"])]
            self.ssl = tls_client_context(tls["ca"], tls.get("client_cert"),
                                          tls.get("client_key"))
        data = rundir.sub("vault-data")
        self.data = data.path
        self.proc = Proc("vault-local", ["/usr/bin/python3",
                                         str(VAULT_LOCAL), *args],
                         rundir, env={"VAULT_LOCAL_ROOT_TOKEN": root_token,
                                      "VAULT_LOCAL_DIR": str(data.path),
                                      "VAULT_LOCAL_BIN": str(vault)},
                         address_line=True, startup_timeout=90.0)
        self.addr = ("https://" if tls else "http://") + self.proc.address
        self.audit_path = rundir.file("vault-audit.json")
        status, out = self.api("PUT", "sys/audit/file", {
            "type": "file", "options": {"file_path": str(self.audit_path)}})
        if status != 204:
            raise AssertionError("enabling Vault's file audit device "
                                 "answered %s %s" % (status, out))
        self.approle = rundir.sub("approle")
        self.setup_env = env = {"VAULT_ADDR": self.addr, "VAULT_TOKEN": root_token,
               "TOKEN_TTL": token_ttl, "TOKEN_MAX_TTL": token_max_ttl,
               "PATH": "%s:%s" % (VAULT_BIN_DIR, os.environ.get("PATH")),
               "HOME": str(rundir.path)}
        if tls:
            env["VAULT_CACERT"] = str(tls["ca"])
            if tls.get("server_name"):
                env["VAULT_TLS_SERVER_NAME"] = tls["server_name"]
            if tls.get("client_cert"):
                env["VAULT_CLIENT_CERT"] = str(tls["client_cert"])
                env["VAULT_CLIENT_KEY"] = str(tls["client_key"])
        self.setup_sh("approle", str(self.approle.path))
        # setup.sh enabled the mount: it refuses writes until it finished
        # upgrading itself to version 2.
        if not wait_until(lambda: self.api("GET", "kv/config")[0] == 200,
                          30):
            raise AssertionError("kv/ not ready 30 s after setup.sh")
        if max_versions is not None:
            self.api("POST", "kv/config", {"max_versions": max_versions})

    def setup_sh(self, *args, env=None):
        """Runs docker/vault/setup.sh ARGS as an administrator would: the
        vault CLI on PATH, VAULT_ADDR, the root token, the tokens' TTLs,
        updated with \\p env. Its output goes to setup-sh.log; fails the
        test when it fails. A secret-id it writes is remembered as a
        secret."""
        env = dict(self.setup_env, **(env or {}))
        log = self.rundir.file("setup-sh.log")
        with open(log, "ab") as out:
            r = subprocess.run(["/bin/sh", str(VAULT_SETUP), *args],
                               stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=120,
                               env=child_env(env),
                               cwd=str(self.rundir.path))
        if args[0] == "approle" and len(args) > 1:
            sid = Path(args[1]) / "secret-id"
            if sid.exists():
                SECRETS.add("AppRole secret-id", sid.read_text().strip())
        if r.returncode != 0:
            tail = log.read_text(errors="replace").strip()[-400:]
            raise AssertionError("setup.sh %s exited %d: %s" % (
                args[0], r.returncode, SECRETS.scrub(tail)))

    def api(self, method, path, body=None, token=None):
        """A /v1 request with the root token (or \\p token)."""
        return http_json(method, "%s/v1/%s" % (self.addr, path), body,
                         headers={"X-Vault-Token": token or self.token},
                         ssl_context=self.ssl)

    def log_text(self):
        """Vault's own log (vault-local's copy, secrets redacted)."""
        return "".join(p.read_text(errors="replace") for p in
                       self.data.glob("vault-local.*/vault.log"))

    def seal(self):
        """Seals Vault (sys/seal): every request answers 503 until
        unseal()."""
        status, out = self.api("PUT", "sys/seal")
        if status != 204:
            raise AssertionError("sys/seal answered %s %s" % (status, out))

    def unseal(self):
        """Unseals Vault with the dev server's unseal key (vault-local
        keeps it in its data directory) and waits for kv/ to answer."""
        keys = list(self.data.glob("vault-local.*/unseal-key"))
        if len(keys) != 1:
            raise AssertionError("no unseal key from vault-local in %s" %
                                 self.data)
        key = keys[0].read_text().strip()
        SECRETS.add("Vault unseal key", key)
        status, out = self.api("PUT", "sys/unseal", {"key": key})
        if status != 200 or out.get("sealed") is not False:
            raise AssertionError("sys/unseal answered %s" % status)
        if not wait_until(lambda: self.api("GET", "kv/config")[0] == 200,
                          30):
            raise AssertionError("kv/ not answering 30 s after unseal")

    def worker_settings(self):
        return {"vault": {"auth": {
            "method": "approle",
            "role_id_file": str(self.approle.path / "role-id"),
            "secret_id_file": str(self.approle.path / "secret-id")}}}

    def worker_env(self):
        return {"VAULT_TOKEN": None}

    def _list(self, prefix):
        status, out = self.api("LIST", "kv/metadata/" + prefix)
        if status == 404:
            return []
        if status != 200:
            raise AssertionError("LIST kv/metadata/%s answered %s" %
                                 (prefix, status))
        paths = []
        for k in out["data"]["keys"]:
            if k.endswith("/"):
                paths += self._list(prefix + k)
            else:
                paths.append(prefix + k)
        return paths

    def _read(self, path, version=None):
        q = "?version=%d" % version if version else ""
        status, out = self.api("GET", "kv/data/%s%s" % (path, q))
        if status == 404:
            return None
        if status != 200:
            raise AssertionError("GET kv/data/%s answered %s" % (path,
                                                                status))
        return out["data"]

    def kv(self):
        """Every secret of kv/ in fake-vault's /_fake/kv shape: {path:
        {current_version, oldest_version, cas_required, max_versions,
        custom_metadata, created_time, updated_time, versions: {"N": {data,
        created_time, deletion_time, destroyed}}}}; data is None for a
        deleted or destroyed version (Vault no longer returns it)."""
        out = {}
        for path in self._list(""):
            status, md = self.api("GET", "kv/metadata/" + path)
            if status != 200:
                continue  # purged since the LIST
            md = md["data"]
            versions = {}
            for n, v in md.get("versions", {}).items():
                data = None
                if not v.get("destroyed") and not v.get("deletion_time"):
                    got = self._read(path, int(n))
                    data = got and got.get("data")
                versions[n] = dict(v, data=data)
            out[path] = {k: md.get(k) for k in (
                "current_version", "oldest_version", "cas_required",
                "max_versions", "custom_metadata", "created_time",
                "updated_time")}
            out[path]["versions"] = versions
        return out

    def current(self, prefix):
        """{name under \\p prefix: (current version, data)}, one read per
        secret."""
        out = {}
        for path in self._list(prefix):
            got = self._read(path)
            if got is not None:
                out[path[len(prefix):]] = (got["metadata"]["version"],
                                           got["data"])
        return out

    def audit(self):
        """The audit log's response entries of requests not made with the
        root token (the harness's own): the workers' and tools'."""
        entries = []
        try:
            with open(self.audit_path) as f:
                lines = f.readlines()
        except FileNotFoundError:
            return entries
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line being written
            if e.get("type") != "response":
                continue
            if "root" in ((e.get("auth") or {}).get("policies") or []):
                continue
            entries.append(e)
        return entries

    def requests(self):
        """fake-vault's /_fake/requests shape: [{method, path, status}];
        see _audit_status() for the status."""
        return [{"method": _AUDIT_METHOD.get(e["request"].get("operation"),
                                             e["request"].get("operation")),
                 "path": "/v1/" + e["request"].get("path", ""),
                 "status": _audit_status(e),
                 "error": e.get("error") or ""} for e in self.audit()]

    def stats(self):
        """The counters of fake-vault's /_fake/stats that the audit log and
        the secrets' metadata can tell: kv_writes is the number of versions
        Vault holds (created, whatever their state)."""
        reqs = self.requests()
        kvw = [r for r in reqs if r["method"] == "POST" and
               r["path"].startswith("/v1/kv/data/")]
        return {
            "requests": len(reqs),
            "kv_writes": sum(s["current_version"] or 0
                             for s in self.kv().values()),
            "kv_write_requests": len(kvw),
            "kv_reads": sum(1 for r in reqs if r["method"] == "GET" and
                            r["path"].startswith("/v1/kv/data/")),
            "metadata_reads": sum(1 for r in reqs if r["method"] == "GET"
                                  and r["path"].startswith(
                                      "/v1/kv/metadata/")),
            "logins": sum(1 for r in reqs if r["path"].endswith("/login")
                          and r["status"] < 400),
            "login_failures": sum(1 for r in reqs
                                  if r["path"].endswith("/login") and
                                  r["status"] >= 400),
            "renewals": sum(1 for r in reqs
                            if r["path"] == "/v1/auth/token/renew-self"),
            "denied": sum(1 for r in reqs if r["status"] == 403),
            # A refused KV v2 write with cas set: audited as "invalid
            # request", the worker's writes are all check-and-set.
            "cas_mismatch": sum(1 for r in kvw if r["status"] == 400),
        }

    def faults(self, plan):
        raise AssertionError("fault plans are fake-vault's; this test "
                             "cannot run on the real Vault")


def start_kafka(rundir, kind, brokers, topics, name=None, extra_args=()):
    """Starts a broker of \\p kind ("mock" or "real") with \\p brokers
    nodes and \\p topics ("NAME[:PARTITIONS]"); @returns its Proc, whose
    address is the bootstrap list. The real one is kafka-local: its data
    directory goes under the run directory (kept with it on failure)."""
    args = ["--brokers", str(brokers),
            *[a for t in topics for a in ("--topic", t)], *extra_args]
    if kind == "mock":
        return Proc(name or "mock-kafka", [binary("mock-kafka"), *args],
                    rundir, address_line=True)
    # The launcher from the source tree, with the jars of this checkout
    # (also when AKV_BIN points at another build, e.g. the sanitizer one).
    if not any(KAFKA_LIBS.glob(".kafka-*")):
        raise AssertionError("the real broker is not installed in %s: run "
                             "`make kafka` first" % KAFKA_LIBS)
    data = rundir.sub("kafka-data")
    return Proc(name or "kafka-local",
                ["/usr/bin/python3", str(REPO / "tests/kafka/kafka-local"),
                 "--libs", str(KAFKA_LIBS), *args],
                rundir, env={"KAFKA_LOCAL_DIR": str(data.path)},
                control=True, startup_timeout=REAL_KAFKA_STARTUP)


def kcat_produce(brokers, topic, key, value, rundir, partition=None,
                 name="kcat", headers=(), properties=()):
    """Produces one message with kcat; its output is captured as
    <name>.stdout.log / <name>.stderr.log (appended). \\p key None sends
    none; \\p value is str or bytes (without a newline); \\p headers are
    (name, value) pairs; \\p properties librdkafka (name, value) pairs."""
    argv = ["kcat", "-P", "-b", brokers, "-t", topic]
    for pname, pvalue in properties:
        argv += ["-X", "%s=%s" % (pname, pvalue)]
    if key is not None:
        argv += ["-k", key]
    if partition is not None:
        argv += ["-p", str(partition)]
    for hname, hvalue in headers:
        argv += ["-H", "%s=%s" % (hname, hvalue)]
    data = value if isinstance(value, bytes) else value.encode()
    with open(rundir.file("%s.stdout.log" % name), "ab") as out, \
            open(rundir.file("%s.stderr.log" % name), "ab") as err:
        r = subprocess.run(argv, input=data + b"\n", stdout=out,
                           stderr=err, env=child_env(), timeout=30)
    if r.returncode != 0:
        raise AssertionError("kcat -P exited %d (see %s)" % (
            r.returncode, rundir.file("%s.stderr.log" % name)))


def kcat_produce_many(brokers, topic, records, rundir, name="kcat"):
    """Produces (partition, key, value) records in order with one kcat per
    partition run (-K with a separator byte no JSON text contains). Values
    must not contain a newline."""
    sep = "\x1f"
    runs = []
    for part, key, value in records:
        if not runs or runs[-1][0] != part:
            runs.append((part, []))
        runs[-1][1].append((key, value))
    for part, recs in runs:
        data = b"".join((k or "").encode() + sep.encode() +
                        (v if isinstance(v, bytes) else v.encode()) + b"\n"
                        for k, v in recs)
        argv = ["kcat", "-P", "-b", brokers, "-t", topic, "-K", sep,
                "-p", str(part)]
        with open(rundir.file("%s.stdout.log" % name), "ab") as out, \
                open(rundir.file("%s.stderr.log" % name), "ab") as err:
            r = subprocess.run(argv, input=data, stdout=out, stderr=err,
                               env=child_env(), timeout=60)
        if r.returncode != 0:
            raise AssertionError("kcat -P exited %d (see %s)" % (
                r.returncode, rundir.file("%s.stderr.log" % name)))


def kcat_consume(brokers, topic, rundir, name="kcat-consume", timeout=30):
    """Reads \\p topic from the beginning to its end with kcat -J.

    @returns [{"partition", "offset", "key" (None when absent), "value"
    (None when absent), "headers": [(name, value), ...]}], sorted by
    partition and offset. kcat's raw output is kept in <name>.stdout.log
    (overwritten), so secret scans over the run directory see it."""
    argv = ["kcat", "-C", "-b", brokers, "-t", topic, "-o", "beginning",
            "-e", "-q", "-J"]
    out_path = rundir.file("%s.stdout.log" % name)
    with open(out_path, "wb") as out, \
            open(rundir.file("%s.stderr.log" % name), "ab") as err:
        try:
            r = subprocess.run(argv, stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL, env=child_env(),
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("kcat -C -e on %s still running after "
                                 "%ds" % (topic, timeout)) from None
    if r.returncode != 0:
        raise AssertionError("kcat -C exited %d (see %s)" % (
            r.returncode, rundir.file("%s.stderr.log" % name)))
    records = []
    for line in out_path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        hs = j.get("headers") or []
        records.append({
            "partition": j["partition"], "offset": j["offset"],
            "key": j.get("key"), "value": j.get("payload"),
            "headers": list(zip(hs[0::2], hs[1::2]))})
    records.sort(key=lambda r: (r["partition"], r["offset"]))
    return records


def peak_rss_kib(pid):
    """The peak resident set size (VmHWM, KiB) of the running process
    \\p pid, from /proc; None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


# ---------------------------------------------------------------------------
# The test runner


def depends(*names):
    """Marks a test as pointless when one of \\p names did not pass."""
    def mark(fn):
        fn.akv_depends = names
        return fn
    return mark


def fake_vault_only(reason):
    """Marks a test that needs fake-vault (a fault the real Vault cannot
    be made to show, e.g. 5xx answers or dropped connections): on the real
    Vault (AKV_VAULT=real) run_tests() prints "skip - NAME: \\p reason"
    and neither runs nor counts it, nor the tests that depend on it."""
    def mark(fn):
        fn.akv_fake_vault_only = reason
        return fn
    return mark


def reason_of(exc):
    """A one-line, secret-free description of an exception."""
    if isinstance(exc, AssertionError) and str(exc):
        text = str(exc)
    else:
        tb = traceback.extract_tb(exc.__traceback__)
        where = ("%s:%d" % (Path(tb[-1].filename).name, tb[-1].lineno)
                 if tb else "?")
        text = "%s at %s: %s" % (type(exc).__name__, where, exc)
    text = " ".join(SECRETS.scrub(text).split())
    return text[:2000]


def run_tests(module_globals, name, setup=None, teardown=None,
              skip_all=None):
    """Runs every test_* function of the module in definition order.

    \p skip_all: a reason none of the tests can run on this machine (e.g.
    podman does not work): each prints "skip - NAME: reason" and none
    counts; setup and teardown do not run.

    $AKV_ONLY, a regular expression, restricts the run to the tests whose
    names it matches (a test whose dependency did not run fails).
    \\p setup(rundir) runs first, \\p teardown(rundir) last (always). Both
    get the RunDir; a failing setup fails every test. Prints one ok/not ok
    line per test and, as the very last line, "N passed, M failed". Exits
    0 only when nothing failed."""
    install_signal_handlers()
    only = os.environ.get("AKV_ONLY")  # a regex: run just those tests
    tests = [(n, f) for n, f in module_globals.items()
             if n.startswith("test_") and callable(f) and
             (not only or re.search(only, n))]
    if skip_all:
        for tname, _ in tests:
            say("skip - %s: %s" % (tname, skip_all))
        say("0 passed, 0 failed")
        sys.exit(0)
    rundir = RunDir(name)
    passed, failed, skipped, timings = [], [], [], []
    interrupted = False
    started = time.monotonic()
    try:
        setup_error = None
        if setup:
            try:
                setup(rundir)
            except Exception as e:  # noqa: BLE001
                setup_error = "setup failed: " + reason_of(e)
        for tname, fn in tests:
            missing = [d for d in getattr(fn, "akv_depends", ())
                       if d not in passed]
            skip = getattr(fn, "akv_fake_vault_only", None) \
                if VAULT == "real" else None
            if not skip and any(d in skipped for d in missing):
                skip = "depends on %s" % ", ".join(
                    d for d in missing if d in skipped)
            if skip and not setup_error:
                skipped.append(tname)
                say("skip - %s: %s" % (tname, skip))
                continue
            if setup_error:
                reason = setup_error
            elif missing:
                reason = "not run: depends on %s" % ", ".join(missing)
            else:
                reason = None
                t0 = time.monotonic()
                try:
                    fn()
                except (KeyboardInterrupt, Interrupted):
                    failed.append(tname)
                    say("not ok - %s: interrupted" % tname)
                    interrupted = True
                    break
                except Exception as e:  # noqa: BLE001
                    reason = reason_of(e)
                dt = time.monotonic() - t0
            if reason is None:
                passed.append(tname)
                timings.append((dt, tname))
                say("ok - %s" % tname)
            else:
                failed.append(tname)
                say("not ok - %s: %s" % (tname, reason))
    except (KeyboardInterrupt, Interrupted):
        interrupted = True
    finally:
        try:
            if teardown:
                teardown(rundir)
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
        except Exception as e:  # noqa: BLE001
            note("teardown: " + reason_of(e))
        stop_all()
        if interrupted and not failed:
            failed.append("(interrupted)")
        rundir.cleanup(bool(failed) or interrupted)
        slow = ", ".join("%s %.1fs" % (n, t) for t, n in
                         sorted(timings, reverse=True)[:3] if t >= 0.5)
        note("%s took %.1fs%s" % (name, time.monotonic() - started,
                                  " (slowest: %s)" % slow if slow else ""))
        say("%d passed, %d failed" % (len(passed), len(failed)))
    sys.exit(0 if not failed and not interrupted else 1)


# -- Prometheus text exposition (format 0.0.4) -------------------------------

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def _parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return float("inf")
    if text == "-Inf":
        return float("-inf")
    if text == "NaN":
        return float("nan")
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise AssertionError("%s: bad value %r" % (where, text))
    return float(text)


def _parse_labels(text, i, where):
    """Parses {name="value",...} from text[i] == "{"; @returns (dict, end)."""
    labels = {}
    i += 1
    while True:
        if text[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, i)
        if not m:
            raise AssertionError("%s: bad label name at %r" % (
                where, text[i:i + 20]))
        name = m.group(0)
        i = m.end()
        if text[i:i + 2] != '="':
            raise AssertionError("%s: label %s without =\"" % (where, name))
        i += 2
        value = []
        while True:
            c = text[i]
            if c == "\\":
                e = text[i + 1]
                if e not in 'n"\\':
                    raise AssertionError("%s: bad escape \\%s" % (where, e))
                value.append("\n" if e == "n" else e)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise AssertionError("%s: raw newline in a label" % where)
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise AssertionError("%s: label %s twice" % (where, name))
        labels[name] = "".join(value)
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise AssertionError("%s: expected , or } after label %s" % (
                where, name))


def parse_exposition(text):
    """Parses Prometheus text exposition strictly and checks it.

    @returns {family name: {"type", "help", "samples": [(sample name,
    {labels}, value)]}}. Fails (AssertionError) on: a line not ending in
    \\n, an unknown or repeated # HELP/# TYPE, a sample before its family's
    TYPE or away from its family's block, bad names, label syntax or
    escapes, duplicate series, a counter below 0 or NaN, a counter name
    not ending in _total, a histogram without ascending le buckets, a
    +Inf bucket, _sum and _count, or with +Inf != _count or falling
    cumulative counts."""
    assert text.endswith("\n"), "the exposition does not end with a newline"
    families = {}
    current = None
    seen_series = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                assert len(parts) >= 3, "%s: %s without a name" % (
                    where, parts[1])
                name = parts[2]
                assert _METRIC_NAME.match(name), "%s: bad name %r" % (
                    where, name)
                fam = families.setdefault(name, {"type": None, "help": None,
                                                 "samples": []})
                key = parts[1].lower()
                assert fam[key] is None, "%s: second %s for %s" % (
                    where, parts[1], name)
                assert not fam["samples"], "%s: %s of %s after its " \
                    "samples" % (where, parts[1], name)
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in (
                        "counter", "gauge", "histogram", "summary",
                        "untyped"), "%s: bad TYPE line" % where
                    fam["type"] = parts[3]
                else:
                    help_text = parts[3] if len(parts) == 4 else ""
                    assert not re.search(r"\\[^n\\]", help_text), \
                        "%s: bad escape in HELP" % where
                    fam["help"] = help_text
                current = name
            continue
        assert line, "%s: empty line" % where
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        assert m, "%s: no metric name" % where
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        assert line[i:i + 1] == " ", "%s: no space before the value" % where
        rest = line[i + 1:].split(" ")
        assert len(rest) in (1, 2), "%s: trailing fields" % where
        value = _parse_value(rest[0], where)
        family = sname
        if current and sname != current:
            for suffix in ("_bucket", "_sum", "_count"):
                if sname == current + suffix:
                    family = current
        assert family == current, "%s: sample %s outside its family's " \
            "block (current %s)" % (where, sname, current)
        fam = families[family]
        assert fam["type"], "%s: sample of %s before its TYPE" % (where,
                                                                    family)
        series = (sname, tuple(sorted(labels.items())))
        assert series not in seen_series, "%s: duplicate series %s%s" % (
            where, sname, labels)
        seen_series.add(series)
        fam["samples"].append((sname, labels, value))
    for name, fam in families.items():
        assert fam["type"], "%s has no TYPE" % name
        if fam["type"] == "counter":
            assert name.endswith("_total"), "counter %s lacks _total" % name
            for s, labels, v in fam["samples"]:
                assert v == v and v >= 0, "counter %s%s is %r" % (
                    s, labels, v)
        if fam["type"] == "histogram":
            _check_histogram(name, fam["samples"])
    return families


def _check_histogram(name, samples):
    groups = {}
    for s, labels, v in samples:
        rest = {k: x for k, x in labels.items() if k != "le"}
        g = groups.setdefault(tuple(sorted(rest.items())),
                              {"buckets": [], "sum": None, "count": None})
        if s == name + "_bucket":
            assert "le" in labels, "%s bucket without le" % name
            g["buckets"].append((_parse_value(labels["le"], name), v))
        elif s == name + "_sum":
            g["sum"] = v
        elif s == name + "_count":
            g["count"] = v
        else:
            raise AssertionError("histogram %s has sample %s" % (name, s))
    for key, g in groups.items():
        b = g["buckets"]
        assert b and b[-1][0] == float("inf"), \
            "histogram %s%s has no +Inf bucket" % (name, dict(key))
        assert all(b[i][0] < b[i + 1][0] for i in range(len(b) - 1)), \
            "histogram %s: le not ascending" % name
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), \
            "histogram %s: cumulative counts fall" % name
        assert g["count"] is not None and g["sum"] is not None, \
            "histogram %s lacks _sum or _count" % name
        assert b[-1][1] == g["count"], "histogram %s: +Inf %r != _count " \
            "%r" % (name, b[-1][1], g["count"])


def sample(families, name, **labels):
    """The value of one series (None when absent); a histogram's
    name_count / name_sum / name_bucket are looked up in its family."""
    fam = families.get(name)
    base = name
    if fam is None:
        for suffix in ("_count", "_sum", "_bucket"):
            if name.endswith(suffix) and name[:-len(suffix)] in families:
                base = name[:-len(suffix)]
                fam = families[base]
    if fam is None:
        return None
    want = {k: str(v) for k, v in labels.items()}
    for s, lab, v in fam["samples"]:
        if s == name and lab == want:
            return v
    return None


def free_port():
    """A loopback TCP port nothing listens on right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_text(url, timeout=10.0):
    """GET \\p url; @returns (status, content type, body text); status 0
    when nothing answered."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return (r.status, r.headers.get("Content-Type", ""),
                    r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), \
            e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, "", "no answer: %s" % e


# -- YAML and JSON files ------------------------------------------------------

def load_documents(path):
    """Every document of a JSON or YAML file (a YAML file may hold several,
    as Kubernetes manifests do; empty ones are left out). Application tags
    (authentik blueprints use !KeyOf, !Find, !Env, ...) are read as the
    plain node they tag. Needs python3-yaml for YAML."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        return [json.loads(text)]
    import yaml

    class TagTolerantLoader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    TagTolerantLoader.add_multi_constructor("!", tagged)
    return [d for d in yaml.load_all(text, Loader=TagTolerantLoader)
            if d is not None]


# -- the container image (podman) --------------------------------------------

PODMAN_CONF = REPO / "docker/image/containers.conf"
# What `make image` tags (its IMAGE, :latest); AKV_IMAGE another.
IMAGE = os.environ.get("AKV_IMAGE") or "localhost/ak2vault:latest"


def release_version():
    """The Makefile's VERSION: what `ak2vault version` prints and the
    image is labelled with."""
    mk = (REPO / "Makefile").read_text()
    return re.search(r"^VERSION\s*:=\s*(\S+)", mk, re.M).group(1)


def podman(*args, timeout=120.0, check=True, input=None, env=None):
    """`podman ARGS` with the project's containers.conf (runc, no default
    ulimits: see the file) and \\p env {name: value} added to its
    environment (`-e NAME` then passes a value into a container without
    putting it on a command line). @returns the CompletedProcess (text);
    with \\p check, a non-zero exit raises AssertionError with its
    stderr."""
    env = dict(os.environ, CONTAINERS_CONF=str(PODMAN_CONF), **(env or {}))
    try:
        r = subprocess.run(["podman", *args], capture_output=True, text=True,
                           env=env, timeout=timeout, input=input,
                           stdin=None if input is not None
                           else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("podman %s still running after %ds" % (
            " ".join(args[:3]), timeout)) from None
    if check and r.returncode != 0:
        raise AssertionError("podman %s exited %d: %s" % (
            " ".join(args[:3]), r.returncode,
            SECRETS.scrub(" ".join(r.stderr.split())[-500:])))
    return r


def podman_problem():
    """None when podman can build and run the image here, else why not
    (the reason the image tests print when they skip): podman missing, not
    root (`make image` makes its base with debootstrap), or `podman info`
    failing."""
    if shutil.which("podman") is None:
        return "podman is not installed (make image-deps installs it)"
    if os.geteuid() != 0:
        return "not root: make image and these tests run podman as root"
    try:
        r = podman("info", "--format", "{{.Host.OCIRuntime.Name}}",
                   timeout=60, check=False)
    except AssertionError as e:
        return str(e)
    if r.returncode != 0:
        return "podman info fails: %s" % " ".join(r.stderr.split())[-300:]
    return None


def image_inspect(image=None):
    """`podman image inspect` of \\p image (default IMAGE): its JSON
    object (Config, Size, Labels, ...); AssertionError when podman has no
    such image."""
    r = podman("image", "inspect", image or IMAGE, check=False)
    if r.returncode != 0:
        raise AssertionError("podman has no image %s (make image builds "
                             "it): %s" % (image or IMAGE,
                                          " ".join(r.stderr.split())[-200:]))
    return json.loads(r.stdout)[0]
