#!/usr/bin/python3
"""`ak2vault check-config --connect` against a real stack.

One stack (mock-kafka with the source and dead-letter topics, fake-vault
with an approle, fake-authentik with a few tokens) serves every test; each
test writes its own configuration and runs the command with only the
environment it sets. Every invocation's stdout and stderr is checked for
every known secret, and the run directory is scanned at the end.
"""
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import EX_OK, SECRETS, TOPIC  # noqa: E402

EX_UNAVAILABLE = 69
DLQ = TOPIC + ".dlq"

S = None      # the Stack
RUN = None    # the RunDir
ROLE_ID = str(uuid.uuid4())
SECRET_ID = akvtest.random_secret(36)
SECRETS.add("approle secret_id", SECRET_ID)
_n = 0


def setup(rundir):
    global S, RUN
    RUN = rundir
    # On the real Vault, setup.sh made the AppRole (RealVault): the
    # configuration logs in with it unless a test sets vault.auth itself.
    S = akvtest.Stack(rundir, partitions=4, topics=(DLQ + ":1",),
                      vault_args=() if akvtest.VAULT == "real" else (
                          "--approle", "%s=%s" % (ROLE_ID, SECRET_ID)))
    for name in ("check-a", "check-b", "check-c"):
        S.create_token(name)
    S.live_tokens()  # registers the keys for the scans


def teardown(rundir):
    if S is not None:
        S.stop()


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(extra=None, env=None, brokers=None):
    """Runs `check-config --connect` on a configuration for the stack with
    \\p extra merged in. @returns (status, {check: line}, stdout, stderr,
    seconds); fails the test if a known secret is printed."""
    global _n
    _n += 1
    if "auth" not in (extra or {}).get("vault", {}):
        extra = akvtest.merge_settings(S.vault_server.worker_settings(),
                                       extra or {})
    cfg = akvtest.write_config(
        RUN.file("check-%02d.cfg" % _n), brokers or S.brokers,
        S.authentik_url, S.vault_addr, group="check-config", extra=extra)
    wenv = S.worker_env(env)
    argv = [akvtest.binary("ak2vault"), "check-config", "-c", str(cfg),
            "--connect"]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env({k: v for k, v in wenv.items()
                                              if v is not None}),
                       cwd=str(RUN.path), timeout=90)
    dt = time.monotonic() - t0
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    with open(RUN.file("check-config.log"), "a") as log:
        log.write("$ ak2vault check-config -c %s --connect\n[status %d, "
                  "%.1fs]\n%s%s\n" % (cfg.name, r.returncode, dt, out, err))
    leaked = sorted({k for v, k in SECRETS.items() if v in out or v in err})
    assert not leaked, "check-config --connect printed a secret: %s" % (
        ", ".join(leaked))
    lines = {}
    for line in out.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and name in ("kafka", "kafka group", "kafka dlq", "vault",
                            "vault kv", "authentik"):
            assert name not in lines, "two lines for %s" % name
            lines[name] = rest
    return r.returncode, lines, out, err, dt


def expect(lines, name, prefix, *needles):
    got = lines.get(name)
    assert got is not None, "no %r line; checks printed: %s" % (
        name, lines)
    assert got.startswith(prefix), "%s: %r, wanted it to start with %r" % (
        name, got, prefix)
    for n in needles:
        assert n in got, "%s: %r lacks %r" % (name, got, n)


def all_ok_but(lines, *failing):
    bad = {n: l for n, l in lines.items()
           if n not in failing and not l.startswith(("ok (", "skipped ("))}
    assert not bad, "other checks failed too: %s" % bad


# ---------------------------------------------------------------------------


def test_everything_answers():
    rc, lines, out, err, _ = check()
    assert rc == EX_OK, "status %d: %s" % (rc, lines)
    expect(lines, "kafka", "ok (",
           "1 broker, topic %s has 4 partitions" % TOPIC)
    expect(lines, "kafka group", "ok (", "group check-config",
           "committed offsets on 0 of 4 partitions")
    expect(lines, "kafka dlq", "ok (", "topic %s has 1 partition" % DLQ)
    if S.real_vault:
        # setup.sh's AppRole, holding docker/vault/ak2vault-policy.hcl.
        expect(lines, "vault", "ok (", "approle login", "token ttl %ss" %
               akvtest.REAL_VAULT_TOKEN_TTL.rstrip("s"), "renewable")
        expect(lines, "vault kv", "ok (",
               "kv/data/authentik/x: create, read, update;",
               "kv/metadata/authentik/x: create, read, update, list",
               "mount kv is KV version 2")
    else:
        # The stack's token is fake-vault's root token: it never expires.
        expect(lines, "vault", "ok (", "token never expires")
        expect(lines, "vault kv", "ok (", "kv/data/authentik/x: root",
               "kv/metadata/authentik/x: root", "mount kv is KV version 2")
    expect(lines, "authentik", "ok (", "3 tokens visible")
    # The effective configuration is still printed first.
    assert out.index("kafka.brokers = ") < out.index("kafka: ok"), \
        "the checks came before the configuration"


@akvtest.fake_vault_only("logs in with fake-vault's --approle, which "
                         "grants deletes too (test_everything_answers "
                         "logs in with setup.sh's AppRole)")
def test_approle_login_and_capabilities():
    sid = RUN.write("secret-id", SECRET_ID + "\n")
    rc, lines, _, _, _ = check(
        extra={"vault": {"on_delete": "purge",
                         "auth": {"method": "approle", "role_id": ROLE_ID,
                                  "secret_id_file": str(sid)}}},
        env={"VAULT_TOKEN": None})
    assert rc == EX_OK, "status %d: %s" % (rc, lines)
    expect(lines, "vault", "ok (", "approle login", "token ttl 3600s",
           "renewable")
    expect(lines, "vault kv", "ok (",
           "kv/data/authentik/x: create, read, update, delete, list, patch")


def test_wrong_vault_token():
    bad = akvtest.random_secret(32)
    SECRETS.add("wrong Vault token", bad)
    rc, lines, _, _, _ = check(extra={"vault": {"auth": {"method": "token"}}},
                               env={"VAULT_TOKEN": bad})
    assert rc == EX_UNAVAILABLE, "status %d, wanted 69: %s" % (rc, lines)
    expect(lines, "vault", "FAILED: ", "HTTP 403", "invalid token")
    expect(lines, "vault kv", "skipped (")
    all_ok_but(lines, "vault")


def test_wrong_approle_secret():
    bad = akvtest.random_secret(36)
    SECRETS.add("wrong approle secret_id", bad)
    sid = RUN.write("secret-id-wrong", bad + "\n")
    role = dict(S.vault_server.worker_settings()["vault"]["auth"]) \
        if S.real_vault else {"method": "approle", "role_id": ROLE_ID}
    role["secret_id_file"] = str(sid)
    rc, lines, _, _, _ = check(
        extra={"vault": {"auth": role}},
        env={"VAULT_TOKEN": None})
    assert rc == EX_UNAVAILABLE, "status %d, wanted 69: %s" % (rc, lines)
    expect(lines, "vault", "FAILED: ", "HTTP 400")
    all_ok_but(lines, "vault")


def test_wrong_authentik_token():
    bad = akvtest.random_secret(32)
    SECRETS.add("wrong authentik API token", bad)
    rc, lines, _, _, _ = check(env={"AUTHENTIK_TOKEN": bad})
    assert rc == EX_UNAVAILABLE, "status %d, wanted 69: %s" % (rc, lines)
    expect(lines, "authentik", "FAILED: ", "HTTP 403",
           "Token invalid/expired")
    all_ok_but(lines, "authentik")


def test_authentik_unreachable():
    rc, lines, _, _, _ = check(extra={"authentik": {
        "url": "http://127.0.0.1:%d" % free_port()}})
    assert rc == EX_UNAVAILABLE, "status %d, wanted 69: %s" % (rc, lines)
    expect(lines, "authentik", "FAILED: ", "/api/v3/core/tokens/")
    all_ok_but(lines, "authentik")


def test_kafka_unreachable_fails_fast():
    rc, lines, _, _, dt = check(brokers="127.0.0.1:%d" % free_port())
    assert rc == EX_UNAVAILABLE, "status %d, wanted 69: %s" % (rc, lines)
    expect(lines, "kafka", "FAILED: ", "no broker of 127.0.0.1:")
    expect(lines, "kafka group", "skipped (")
    expect(lines, "kafka dlq", "skipped (")
    all_ok_but(lines, "kafka")
    # Refused connections end the check at once, not at its 5 s limit.
    assert dt < 4.0, "took %.1fs with every broker refusing" % dt


def test_missing_topic():
    topic = "no.such.topic"
    extra = {"kafka": {"topic": topic}}
    for attempt in (1, 2):  # the check must not create it
        rc, lines, _, _, _ = check(extra=extra)
        assert rc == EX_UNAVAILABLE, "attempt %d: status %d: %s" % (
            attempt, rc, lines)
        expect(lines, "kafka", "FAILED: ",
               "topic %s does not exist" % topic)
        expect(lines, "kafka dlq", "FAILED: ",
               "topic %s.dlq does not exist" % topic)
    expect(lines, "kafka group", "ok (", "coordinator answered")


def test_missing_dlq_topic_and_dlq_disabled():
    extra = {"dlq": {"topic": "no.such.dlq"}}
    rc, lines, _, _, _ = check(extra=extra)
    assert rc == EX_UNAVAILABLE, "status %d: %s" % (rc, lines)
    expect(lines, "kafka dlq", "FAILED: ", "no.such.dlq does not exist",
           "dlq.enabled = false")
    all_ok_but(lines, "kafka dlq")
    rc, lines, _, _, _ = check(extra={"dlq": {"topic": "no.such.dlq",
                                              "enabled": False}})
    assert rc == EX_OK, "status %d with the DLQ off: %s" % (rc, lines)
    expect(lines, "kafka dlq", "skipped (", "dlq.enabled = false")


@akvtest.fake_vault_only("fake-vault denies a prefix for any token "
                         "(tests/integration/test_vault_auth.py takes "
                         "paths out of the real policy)")
def test_policy_denies_the_metadata_path():
    S.vault_faults({"deny_prefix": ["kv/metadata/"]})
    try:
        rc, lines, _, _, _ = check()
    finally:
        S.vault_faults(None)
    assert rc == EX_UNAVAILABLE, "status %d: %s" % (rc, lines)
    expect(lines, "vault", "ok (")
    expect(lines, "vault kv", "FAILED: ", "lacks create, read, update, list on "
           "kv/metadata/authentik/x", "it has: deny")
    all_ok_but(lines, "vault kv")


@akvtest.fake_vault_only("fake-vault hides its mount from any token")
def test_missing_kv_mount():
    S.vault_faults({"mount_missing": True})
    try:
        rc, lines, _, _, _ = check()
    finally:
        S.vault_faults(None)
    assert rc == EX_UNAVAILABLE, "status %d: %s" % (rc, lines)
    expect(lines, "vault kv", "FAILED: ", "mount kv", "HTTP 404",
           "no handler for route")
    all_ok_but(lines, "vault kv")


def test_sealed_vault():
    if S.real_vault:
        S.vault_server.seal()
    else:
        S.vault_faults({"sealed_for_ms": 60000})
    try:
        rc, lines, _, _, _ = check()
    finally:
        if S.real_vault:
            S.vault_server.unseal()
        else:
            S.vault_faults(None)
    assert rc == EX_UNAVAILABLE, "status %d: %s" % (rc, lines)
    expect(lines, "vault", "FAILED: ", "HTTP 503", "Vault is sealed")


def test_without_connect_nothing_is_checked():
    cfg = akvtest.write_config(RUN.file("check-offline.cfg"),
                               "127.0.0.1:%d" % free_port(),
                               S.authentik_url, S.vault_addr,
                               extra=S.vault_server.worker_settings())
    r = subprocess.run([akvtest.binary("ak2vault"), "check-config", "-c",
                        str(cfg)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30,
                       env=akvtest.child_env(S.worker_env()))
    out = r.stdout.decode(errors="replace")
    assert r.returncode == EX_OK, "status %d" % r.returncode
    assert "kafka:" not in out and "vault:" not in out, \
        "checks ran without --connect"


def test_no_secret_in_outputs():
    akvtest.assert_no_secrets(RUN.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "check_config", setup=setup,
                      teardown=teardown)
