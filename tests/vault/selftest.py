#!/usr/bin/python3
"""Self-test of tests/vault/vault-local and the Vault `make vault` builds:
what the worker and docker/vault/setup.sh need of a real Vault, step by
step, printing what each step got (never a token or secret value).

  /usr/bin/python3 tests/vault/selftest.py [--tls]

Starts vault-local with a random root token and --kv-mount kv, then: a KV
v2 write with cas=0, a second cas=0 write refused, the secret read back;
an AppRole whose tokens live 10 s, a login and a renewal; setup.sh approle
DIR with build/vault/bin on PATH, and a login with the role-id and
secret-id it wrote, whose token may write under kv/data/authentik/. Every
log kept is scanned for the tokens. --tls also starts vault-local with
--tls-cert/--tls-key (a certificate made with openssl) and reads
sys/health over HTTPS. Exits 0 when every step passed.
"""

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LAUNCHER = ROOT / "tests" / "vault" / "vault-local"
VAULT_BIN = ROOT / "build" / "vault" / "bin"
SETUP = ROOT / "docker" / "vault" / "setup.sh"

failures = []
tokens = []


def step(name, ok, got):
    print("%s %s: %s" % ("ok  " if ok else "FAIL", name, got), flush=True)
    if not ok:
        failures.append(name)


class Client:
    def __init__(self, addr, token, ctx=None, scheme="http"):
        self.base = "%s://%s/v1/" % (scheme, addr)
        self.token = token
        self.ctx = ctx

    def call(self, method, path, body=None, token=None):
        req = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-Vault-Token": token or self.token,
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10,
                                        context=self.ctx) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw[:200].decode("utf-8", "replace")}


def start(args, token, workdir):
    env = dict(os.environ, VAULT_LOCAL_ROOT_TOKEN=token,
               VAULT_LOCAL_DIR=str(workdir))
    err = open(workdir / "launcher.err", "w")
    p = subprocess.Popen([sys.executable, str(LAUNCHER), "--keep"] + args,
                         env=env, stdout=subprocess.PIPE, stderr=err,
                         text=True)
    addr = p.stdout.readline().strip()
    if not addr:
        p.wait()
        raise SystemExit("vault-local did not start: %s" %
                         (workdir / "launcher.err").read_text())
    return p, addr


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(20)


def kv_and_approle(c):
    st, r = c.call("POST", "kv/data/authentik/selftest",
                   {"options": {"cas": 0}, "data": {"key": "v1"}})
    step("kv write cas=0", st == 200 and r["data"]["version"] == 1,
         "HTTP %d, version %s" % (st, r.get("data", {}).get("version")))
    st, r = c.call("POST", "kv/data/authentik/selftest",
                   {"options": {"cas": 0}, "data": {"key": "v2"}})
    step("kv write cas=0 again (conflict)", st == 400 and
         "check-and-set" in " ".join(r.get("errors", [])),
         "HTTP %d, %s" % (st, r.get("errors")))
    st, r = c.call("GET", "kv/data/authentik/selftest")
    step("kv read back", st == 200 and r["data"]["data"] == {"key": "v1"}
         and r["data"]["metadata"]["version"] == 1,
         "HTTP %d, version %s, data matches: %s" % (
             st, r["data"]["metadata"]["version"],
             r["data"]["data"] == {"key": "v1"}))

    st, _ = c.call("POST", "sys/auth/approle-selftest", {"type": "approle"})
    step("enable approle at approle-selftest/", st in (200, 204),
         "HTTP %d" % st)
    st, _ = c.call("POST", "auth/approle-selftest/role/short",
                   {"token_ttl": "10s", "token_max_ttl": "60s",
                    "token_policies": ["default"]})
    step("role with token_ttl=10s", st in (200, 204), "HTTP %d" % st)
    _, r = c.call("GET", "auth/approle-selftest/role/short/role-id")
    role_id = r["data"]["role_id"]
    _, r = c.call("POST", "auth/approle-selftest/role/short/secret-id", {})
    secret_id = r["data"]["secret_id"]
    tokens.append(secret_id)
    st, r = c.call("POST", "auth/approle-selftest/login",
                   {"role_id": role_id, "secret_id": secret_id}, token="-")
    auth = r.get("auth") or {}
    tokens.append(auth.get("client_token", ""))
    step("approle login", st == 200 and auth.get("lease_duration") == 10
         and auth.get("renewable") is True,
         "HTTP %d, lease_duration %s, renewable %s, policies %s" % (
             st, auth.get("lease_duration"), auth.get("renewable"),
             auth.get("policies")))
    st, r = c.call("POST", "auth/token/renew-self", {"increment": "10s"},
                   token=auth["client_token"])
    step("renew-self", st == 200 and r["auth"]["lease_duration"] == 10,
         "HTTP %d, lease_duration %s" % (st, r["auth"]["lease_duration"]))


def setup_sh(c, addr, root, workdir):
    out = workdir / "approle"
    out.mkdir()
    env = dict(os.environ, VAULT_ADDR="http://" + addr, VAULT_TOKEN=root,
               PATH="%s:%s" % (VAULT_BIN, os.environ.get("PATH", "")))
    for k in ("VAULT_CACERT", "VAULT_NAMESPACE", "KV_MOUNT", "AUTH_MOUNT"):
        env.pop(k, None)
    log = workdir / "setup.log"
    with open(log, "w") as f:
        rc = subprocess.run(["/bin/sh", str(SETUP), "approle", str(out)],
                            env=env, stdout=f, stderr=subprocess.STDOUT,
                            timeout=120).returncode
    last = log.read_text().strip().splitlines()
    step("setup.sh approle DIR", rc == 0,
         "exit %d, last line: %s" % (rc, last[-1] if last else ""))
    rc2 = subprocess.run(["/bin/sh", str(SETUP), "approle", str(out)],
                         env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, timeout=120).returncode
    step("setup.sh approle DIR again (idempotent)", rc2 == 0,
         "exit %d" % rc2)
    role_id = (out / "role-id").read_text().strip()
    secret_id = (out / "secret-id").read_text().strip()
    tokens.append(secret_id)
    mode = oct((out / "secret-id").stat().st_mode & 0o777)
    st, r = c.call("POST", "auth/approle/login",
                   {"role_id": role_id, "secret_id": secret_id}, token="-")
    auth = r.get("auth") or {}
    tokens.append(auth.get("client_token", ""))
    step("login with setup.sh's role-id/secret-id",
         st == 200 and "ak2vault" in auth.get("policies", []),
         "HTTP %d, secret-id file mode %s, policies %s, lease_duration %s" %
         (st, mode, auth.get("policies"), auth.get("lease_duration")))
    w = Client(addr, auth["client_token"])
    st, r = w.call("POST", "kv/data/authentik/from-worker",
                   {"options": {"cas": 0}, "data": {"key": "x"}})
    step("its token writes kv/data/authentik/*", st == 200,
         "HTTP %d, version %s" % (st, r.get("data", {}).get("version")))
    st, _ = w.call("POST", "kv/data/elsewhere", {"data": {"key": "x"}})
    step("its token may not write outside authentik/", st == 403,
         "HTTP %d" % st)


def tls(workdir, root):
    d = workdir / "tls"
    d.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p, addr = start(["--tls-cert", str(d / "cert.pem"),
                     "--tls-key", str(d / "key.pem")], root, d)
    ctx = ssl.create_default_context(cafile=str(d / "cert.pem"))
    st, r = Client(addr, root, ctx, "https").call("GET", "sys/health")
    step("HTTPS listener with the given certificate", st == 200 and
         not r.get("sealed"), "https://%s: HTTP %d, version %s" %
         (addr, st, r.get("version")))
    step("vault-local --tls stops on SIGTERM", stop(p) == 0, "exit 0")


def main():
    workdir = Path(tempfile.mkdtemp(prefix="vault-selftest."))
    root = "selftest-" + secrets.token_hex(16)
    tokens.append(root)
    p, addr = start(["--kv-mount", "kv"], root, workdir)
    print("vault-local: %s" % addr, flush=True)
    c = Client(addr, root)
    st, r = c.call("GET", "sys/health")
    step("sys/health", st == 200, "HTTP %d, version %s, sealed %s" % (
        st, r.get("version"), r.get("sealed")))
    try:
        kv_and_approle(c)
        setup_sh(c, addr, root, workdir)
    finally:
        rc = stop(p)
    step("vault-local stops on SIGTERM", rc == 0, "exit %d" % rc)
    if "--tls" in sys.argv[1:]:
        tls(workdir, root)
    leaked = []
    for f in workdir.rglob("*"):
        if f.is_file() and f.parent.name != "approle":
            text = f.read_text(errors="replace")
            leaked += [str(f) for t in tokens if t and t in text]
    step("no token in any log", not leaked,
         "%d files scanned" % sum(1 for f in workdir.rglob("*")
                                  if f.is_file()) +
         (", leaked in %s" % sorted(set(leaked)) if leaked else ""))
    if failures:
        print("kept %s" % workdir)
        print("%d failed: %s" % (len(failures), ", ".join(failures)))
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print("all passed")


if __name__ == "__main__":
    main()
