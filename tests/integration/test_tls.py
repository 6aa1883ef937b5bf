#!/usr/bin/python3
"""HTTPS to Vault: ak2vault's vault.tls options against fake-vault over TLS.

A private PKI is made with the openssl CLI in the run directory: a CA, a
server certificate for vault.test (SAN DNS:vault.test only, deliberately
not 127.0.0.1) signed by it, a client certificate signed by it, and an
unrelated second CA. fake-vault serves HTTPS with the server certificate;
the worker always dials https://127.0.0.1:PORT.

Each check runs its own worker in its own consumer group, so it reads every
event from the start, and writes under its own vault.prefix, so what one
check wrote never counts for another:

  * verification is on by default: no CA configured, nothing is written,
    the failure is logged as class=configuration, the event is held (not
    dead-lettered);
  * ca_file + server_name "vault.test": everything syncs;
  * ca_file without server_name: 127.0.0.1 is not in the certificate,
    nothing written, class=configuration;
  * the unrelated CA: nothing written;
  * ca_path, a directory holding the CA under its subject-hash name:
    syncs; the same through the VAULT_* environment overrides;
  * skip_verify without a CA: syncs, with a start-up warning containing
    "verification is OFF";
  * a second fake-vault that requires client certificates: without one
    nothing is written; with client_cert + client_key everything syncs;
  * no captured output holds the Vault root token, the authentik API token,
    a token key or a TLS private key.

Failures name cases, identifiers and secret KINDS, never key values.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends  # noqa: E402

S = SimpleNamespace(rundir=None, pki=None, stack=None, mstack=None,
                    workers=[], ncase=0)
TOPIC = akvtest.TOPIC
DLQ = TOPIC + ".dlq"
NTOKENS = 4
SERVER_NAME = "vault.test"
WORKER_CFG = {
    # A configuration error is retried every config_retry_ms (held, never
    # dead-lettered); short, so a failing check sees several attempts.
    "sync": {"config_retry_ms": 300, "retry_initial_ms": 50,
             "retry_max_ms": 500, "log_interval_ms": 0,
             # A held sync cannot finish by waiting: SIGTERM need not wait
             # the default 10 s for it.
             "shutdown_timeout_ms": 1000},
    "kafka": {"session_timeout_ms": 6000},
    # A TLS failure is immediate; these only bound a hung handshake.
    "vault": {"connect_timeout_ms": 2000, "timeout_ms": 5000},
}
SYNC_TIMEOUT = 20   # a worker with --exit-at-end that can sync
FAIL_WINDOW = 8     # longest wait for a failing worker's first error line
HELD_FOR = 1.5      # after it, how long it keeps retrying before the stop
STOP_TIMEOUT = 15


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    for st in (S.stack, S.mstack):
        if st:
            st.stop()


# ---------------------------------------------------------------------------
# PKI


def openssl(*args):
    """Runs the openssl CLI in the PKI directory; its output goes to
    openssl.*.log (it never prints key material unless asked to)."""
    d = S.pki.dir
    with open(S.rundir.file("openssl.stdout.log"), "ab") as out, \
            open(S.rundir.file("openssl.stderr.log"), "ab") as err:
        r = subprocess.run(["openssl", *args], cwd=str(d), stdout=out,
                           stderr=err, stdin=subprocess.DEVNULL,
                           env=akvtest.child_env(), timeout=30)
    if r.returncode != 0:
        raise AssertionError("openssl %s exited %d (see %s)" % (
            args[0], r.returncode, S.rundir.file("openssl.stderr.log")))


def new_ca(name, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % cn, "-keyout", name + ".key",
            "-out", name + ".pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def new_leaf(name, cn, ca, extensions):
    ext = S.pki.dir / (name + ".ext")
    ext.write_text("\n".join(extensions) + "\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=%s" % cn,
            "-keyout", name + ".key", "-out", name + ".csr")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-set_serial", str(int(time.time() * 1e6)),
            "-days", "2", "-out", name + ".pem", "-extfile", ext.name)


def register_key(path):
    """A private key's base64 body, whole and line by line, counts as a
    secret for the scan: a log holding a key, or a line of one, leaks it."""
    body = [line for line in Path(path).read_text().splitlines()
            if line and not line.startswith("-----")]
    SECRETS.add("TLS private key", "".join(body))
    SECRETS.add_many("TLS private key", body)


def make_pki():
    d = S.rundir.path / "pki"
    d.mkdir(mode=0o700)
    S.pki = SimpleNamespace(dir=d)
    new_ca("ca", "ak2vault test CA")
    new_ca("other-ca", "unrelated test CA")
    new_leaf("server", SERVER_NAME, "ca", [
        "subjectAltName=DNS:%s" % SERVER_NAME,
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth"])
    new_leaf("client", "ak2vault", "ca", [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=clientAuth"])
    for name in ("ca", "other-ca", "server", "client"):
        register_key(d / (name + ".key"))
        setattr(S.pki, name.replace("-", "_"), d / (name + ".pem"))
        setattr(S.pki, name.replace("-", "_") + "_key", d / (name + ".key"))
    # ca_path: the CA under its OpenSSL subject-hash name, nothing else.
    r = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in",
                        str(S.pki.ca)], capture_output=True, text=True,
                       env=akvtest.child_env(), timeout=30)
    h = r.stdout.strip()
    assert r.returncode == 0 and re.fullmatch(r"[0-9a-f]{8}", h), \
        "openssl x509 -hash failed: %s" % r.stderr.strip()[:200]
    S.pki.ca_dir = d / "capath"
    S.pki.ca_dir.mkdir()
    (S.pki.ca_dir / (h + ".0")).write_bytes(S.pki.ca.read_bytes())
    # The SAN really is vault.test alone (the name checks rely on it).
    r = subprocess.run(["openssl", "x509", "-noout", "-ext",
                        "subjectAltName", "-in", str(S.pki.server)],
                       capture_output=True, text=True,
                       env=akvtest.child_env(), timeout=30)
    san = r.stdout.split("\n", 1)[-1].strip()
    assert san == "DNS:%s" % SERVER_NAME, "server SAN is %r" % san


# ---------------------------------------------------------------------------
# Workers and checks


def new_stack(name, client_ca=False):
    tls = {"cert": S.pki.server, "key": S.pki.server_key, "ca": S.pki.ca,
           "server_name": SERVER_NAME}
    if client_ca:
        tls.update(client_ca=S.pki.ca, client_cert=S.pki.client,
                   client_key=S.pki.client_key)
    st = akvtest.Stack(S.rundir.sub(name), partitions=2,
                       topics=(DLQ + ":1",), vault_tls=tls)
    assert st.vault_addr.startswith("https://127.0.0.1:"), st.vault_addr
    for i in range(NTOKENS):
        st.create_token("tls-%s-%d" % (name, i))
    st.live_tokens()  # records the keys as secrets
    return st


def worker_extra(prefix, tls):
    extra = {g: dict(v) for g, v in WORKER_CFG.items()}
    extra["vault"]["prefix"] = prefix
    if tls is not None:
        extra["vault"]["tls"] = tls
    return extra


def start(st, case, tls, exit_at_end, env=None):
    """A worker for \\p case writing under prefix tls-CASE."""
    S.ncase += 1
    # Under authentik/: the real Vault's policy grants nothing else.
    prefix = "authentik/tls-" + case
    w = st.start_worker("w-" + case, "tls-%s-%d" % (case, S.ncase),
                        exit_at_end=exit_at_end,
                        extra=worker_extra(prefix, tls), env=env)
    S.workers.append(w)
    return w, prefix


def under(st, prefix):
    """{identifier: data} of the current versions under \\p prefix/."""
    out = {}
    for path, sec in st.vault_kv().items():
        if path.startswith(prefix + "/"):
            cur = sec.get("current_version")
            ver = sec.get("versions", {}).get(str(cur), {})
            out[path[len(prefix) + 1:]] = ver.get("data")
    return out


def mismatches(st, prefix):
    """[(identifier, what differs)] between authentik's live tokens and
    the secrets under \\p prefix; never a key value."""
    live = st.live_tokens()
    got = under(st, prefix)
    bad = []
    for ident, tok in sorted(live.items()):
        data = got.get(ident)
        if data is None:
            bad.append((ident, "missing"))
        elif data != {"key": tok["key"], "intent": tok["intent"]}:
            bad.append((ident, "differs (fields %s)" % sorted(data)))
    bad += [(i, "not in authentik") for i in sorted(set(got) - set(live))]
    return bad


def kv_requests(st, prefix):
    """fake-vault's logged /v1 requests for paths under \\p prefix."""
    mark = "/" + prefix + "/"
    return [r for r in st.vault_requests() if mark in r.get("path", "")]


def run_ok(st, case, tls, env=None):
    """A worker with --exit-at-end must sync every token under its prefix
    and exit 0 with written == NTOKENS. @returns its log."""
    w, prefix = start(st, case, tls, exit_at_end=True, env=env)
    rc = w.wait(SYNC_TIMEOUT)
    if rc is None:
        w.stop(5)
        raise AssertionError("%s: still running after %ds (%s)" % (
            case, SYNC_TIMEOUT, w.stderr_tail(3)))
    log = w.stderr_text()
    assert rc == 0, "%s: exited %d: %s" % (case, rc, w.stderr_tail(3))
    bad = mismatches(st, prefix)
    assert not bad, "%s: not synced: %s" % (
        case, ", ".join("%s %s" % b for b in bad))
    stats = akvtest.final_stats(log)
    assert stats is not None, "%s: no final stats line" % case
    assert stats["written"] == NTOKENS and stats["dead_lettered"] == 0, \
        "%s: final stats %s" % (case, stats)
    return log


def run_fail(st, case, tls, want_class="configuration", env=None):
    """A long-running worker that must not get through: it logs the failure
    with \\p want_class, keeps the event held and writes nothing (no KV
    request even reaches fake-vault under its prefix), nothing is
    dead-lettered, and SIGTERM stops it cleanly. @returns its log."""
    w, prefix = start(st, case, tls, exit_at_end=False, env=env)
    pat = re.compile(r"class=%s\b" % re.escape(want_class))
    seen = akvtest.wait_until(lambda: pat.search(w.stderr_text()) or
                              not w.running(), FAIL_WINDOW)
    if seen and w.running():
        time.sleep(HELD_FOR)  # several retries, to see none gets through
    running = w.running()
    rc = w.stop(STOP_TIMEOUT)
    log = w.stderr_text()
    assert running, "%s: exited %s on its own: %s" % (
        case, rc, w.stderr_tail(3))
    assert pat.search(log), "%s: no class=%s line within %ds; last lines: " \
        "%s" % (case, want_class, FAIL_WINDOW, w.stderr_tail(3))
    assert rc == 0, "%s: exited %s after SIGTERM" % (case, rc)
    got = under(st, prefix)
    assert not got, "%s: %d secrets written" % (case, len(got))
    reqs = kv_requests(st, prefix)
    assert not reqs, "%s: %d KV requests reached fake-vault (first: %s %s)" \
        % (case, len(reqs), reqs[0].get("method"), reqs[0].get("status"))
    stats = akvtest.final_stats(log)
    assert stats is not None, "%s: no final stats line" % case
    assert stats["written"] == 0 and stats["dead_lettered"] == 0, \
        "%s: final stats %s" % (case, stats)
    # Held, not given up: every held event was tried again, more than once.
    assert stats["retries"] >= 2 * max(1, stats["matched"]), \
        "%s: %d attempts for %d events in %.1fs" % (
            case, stats["retries"], stats["matched"], HELD_FOR)
    # class=configuration must hold the event, never send it to the DLQ.
    dlq = akvtest.kcat_consume(st.brokers, DLQ, st.rundir,
                               name="kcat-dlq-" + case)
    assert not dlq, "%s: %d records in %s" % (case, len(dlq), DLQ)
    return log


def tls_error(log):
    """The worker's error text after the class=... line's colon, for
    diagnostics (it names the TLS problem, never a secret)."""
    for line in log.splitlines():
        if "class=" in line:
            return line.rsplit("): ", 1)[-1][:200]
    return "?"


# ---------------------------------------------------------------------------


def test_pki_and_https_stack():
    make_pki()
    S.stack = new_stack("server-tls")
    # The harness itself talks HTTPS to Vault, trusting the test CA.
    assert S.stack.vault_api("GET", "sys/health")[0] == 200
    # Plain HTTP to the HTTPS port gets no answer (fake-vault) or Go's
    # "Client sent an HTTP request to an HTTPS server" (400, the real one).
    try:
        status, body = akvtest.http_json(
            "GET", "http://" + S.stack.vault.address + "/v1/sys/health",
            timeout=5)
    except akvtest.HTTPFailure:
        status, body = None, None
    if S.stack.real_vault:
        assert status == 400 and "HTTPS server" in str(body), \
            "plain HTTP to Vault's HTTPS port got %s" % status
    else:
        assert status is None, \
            "plain HTTP to fake-vault's HTTPS port got %s" % status


@depends("test_pki_and_https_stack")
def test_verification_on_by_default():
    run_fail(S.stack, "no-ca", None)


@depends("test_pki_and_https_stack")
def test_ca_file_and_server_name_sync():
    run_ok(S.stack, "ca-file", {"ca_file": str(S.pki.ca),
                                "server_name": SERVER_NAME,
                                "skip_verify": False})


@depends("test_pki_and_https_stack")
def test_ca_file_without_server_name_fails():
    log = run_fail(S.stack, "no-server-name", {"ca_file": str(S.pki.ca)})
    akvtest.note("without server_name: %s" % tls_error(log))


@depends("test_pki_and_https_stack")
def test_wrong_ca_fails():
    run_fail(S.stack, "wrong-ca", {"ca_file": str(S.pki.other_ca),
                                   "server_name": SERVER_NAME})


@depends("test_pki_and_https_stack")
def test_ca_path_sync():
    run_ok(S.stack, "ca-path", {"ca_path": str(S.pki.ca_dir),
                                "server_name": SERVER_NAME})


@depends("test_pki_and_https_stack")
def test_env_overrides_sync():
    """VAULT_CAPATH and VAULT_TLS_SERVER_NAME instead of the file."""
    run_ok(S.stack, "env", None, env={
        "VAULT_CAPATH": str(S.pki.ca_dir),
        "VAULT_TLS_SERVER_NAME": SERVER_NAME})


@depends("test_pki_and_https_stack")
def test_skip_verify_syncs_and_warns():
    log = run_ok(S.stack, "skip-verify", {"skip_verify": True})
    assert "verification is OFF" in log, \
        "skip_verify=true: no warning containing 'verification is OFF' " \
        "in the worker's log"


@depends("test_pki_and_https_stack")
def test_client_certificate_required():
    S.mstack = new_stack("mtls", client_ca=True)
    # The harness has a client certificate.
    assert S.mstack.vault_api("GET", "sys/health")[0] == 200
    base = {"ca_file": str(S.pki.ca), "server_name": SERVER_NAME}
    # No client certificate: the server's TLS alert ("certificate
    # required") arrives as a receive error; only a person can fix it, so
    # it is a configuration error: held, never dead-lettered.
    run_fail(S.mstack, "no-client-cert", base, want_class="configuration")
    if S.mstack.real_vault:
        refused = S.mstack.vault_server.log_text().count(
            "client didn't provide a certificate")
    else:
        refused = S.mstack.vault.stderr_text().count(
            "TLS client sent no certificate")
    assert refused >= 1, "Vault logged no refused connection"
    run_ok(S.mstack, "client-cert", dict(base,
                                         client_cert=str(S.pki.client),
                                         client_key=str(S.pki.client_key)))


@depends("test_pki_and_https_stack")
def test_standins_stop_cleanly():
    """SIGTERM: every stand-in exits 0 (under the sanitizer build, also
    without leaks from the HTTPS set-up)."""
    bad = []
    for st in (S.stack, S.mstack):
        if st is None:
            continue
        for name, rc in st.stop().items():
            if rc != 0:
                bad.append("%s/%s exited %s" % (st.rundir.path.name, name,
                                                rc))
    assert not bad, "; ".join(bad)


def test_no_secret_in_any_output():
    """Runs last: every captured output of every process."""
    assert SECRETS.kinds().get("token key", 0) >= NTOKENS, \
        "no token keys recorded: %s" % SECRETS.kinds()
    logs = S.rundir.logs()
    assert logs, "no logs captured"
    akvtest.assert_no_secrets(logs, base=S.rundir.path)


if __name__ == "__main__":
    akvtest.run_tests(globals(), "tls", setup=setup, teardown=teardown)
