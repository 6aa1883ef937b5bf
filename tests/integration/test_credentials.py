#!/usr/bin/python3
"""Token files replaced under a running worker: vault.token_file and
authentik.token_file are read again, without a restart.

One stand-in stack; fake-vault takes an AppRole so that the harness can
mint Vault tokens (the worker itself uses the token method, its token in
vault.token_file), and fake-authentik's accepted API token is switched at
runtime (POST /_fake/api-token), as an operator rotating it in authentik
would. The worker reads both tokens from files only (no VAULT_TOKEN, no
AUTHENTIK_TOKEN in its environment).

  * a file replaced by a new one (renamed over it: Vault Agent's sink, a
    Kubernetes Secret's volume) is noticed by itself within a second and
    logged; the upstream is switched to the new token only after that
    line, and the next token syncs with no request refused at all;
  * a file rewritten in place with its size and modification time kept
    (invisible to the change check) is read again after the upstream
    refuses the old token (Vault's 403 "invalid token", authentik's 403):
    the sync that was refused completes;
  * SIGHUP reads both files whatever their stamps say, and logs it;
  * an emptied file is refused with a warning naming the file, and the
    token read before stays in use;
  * no output of any process holds a token.
"""
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, worker=None, role_id=None,
                    secret_id=None, vault_file=None, ak_file=None, n=0)
GROUP = "credentials"
SYNC_TIMEOUT = 20


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


def vault_login():
    """A new Vault token from the AppRole (the harness's, not the
    worker's: the worker only ever reads its file)."""
    status, out = akvtest.http_json(
        "POST", S.stack.vault_addr + "/v1/auth/approle/login",
        {"role_id": S.role_id, "secret_id": S.secret_id})
    assert status == 200, "approle login returned %s" % status
    token = out["auth"]["client_token"]
    SECRETS.add("Vault token", token)
    return token


def new_authentik_token():
    token = akvtest.random_secret(32)
    SECRETS.add("authentik API token", token)
    return token


def authentik_accepts(token):
    """From now on fake-authentik accepts only \\p token."""
    status, _ = akvtest.http_json(
        "POST", S.stack.authentik_url + "/_fake/api-token", {"token": token})
    assert status == 204, "POST /_fake/api-token returned %s" % status
    S.stack.authentik_token = token  # the harness's own calls


def replace_file(path, text):
    """Written beside and renamed over: a new inode."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def rewrite_in_place(path, text):
    """Same inode, same size, same modification time: only a read tells
    the new content from the old."""
    st = path.stat()
    assert len(text.encode()) == st.st_size, "not the same size"
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
        (st.st_ino, st.st_size, st.st_mtime_ns)


def log_count(needle):
    return S.worker.stderr_text().count(needle)


def wait_log(needle, at_least, timeout=10):
    return akvtest.wait_until(lambda: log_count(needle) >= at_least, timeout)


def synced(identifier):
    """Creates \\p identifier in authentik and waits for its key in
    Vault; returns whether it arrived."""
    S.stack.create_token(identifier)
    key = S.stack.live_tokens()[identifier]["key"]

    def there():
        cur = S.stack.vault_current().get(identifier)
        return cur is not None and (cur[1] or {}).get("key") == key
    return akvtest.wait_until(there, SYNC_TIMEOUT)


def next_identifier():
    S.n += 1
    return "cred-token-%d" % S.n


def refusals():
    """(Vault 403s so far, authentik refusals so far)."""
    vault = sum(1 for r in S.stack.vault_requests()
                if r.get("status") == 403)
    return vault, S.stack.authentik_stats().get("denied", 0)


# ---------------------------------------------------------------------------

def test_worker_runs_on_token_files():
    """The worker starts with both tokens in files and syncs a token."""
    S.role_id = str(uuid.uuid4())
    S.secret_id = akvtest.random_secret(36)
    SECRETS.add("approle secret_id", S.secret_id)
    S.stack = akvtest.Stack(S.rundir, partitions=1, vault_args=(
        "--approle", "%s=%s" % (S.role_id, S.secret_id)))
    rd = S.rundir.sub("files")
    S.vault_file = rd.write("vault-token", vault_login() + "\n")
    S.ak_file = rd.write("authentik-token", S.stack.authentik_token + "\n")
    S.worker = S.stack.start_worker(
        "worker", GROUP,
        env={"VAULT_TOKEN": None, "AUTHENTIK_TOKEN": None},
        extra={"vault": {"token_file": str(S.vault_file)},
               "authentik": {"token_file": str(S.ak_file)},
               "sync": {"config_retry_ms": 300, "retry_initial_ms": 50,
                        "retry_max_ms": 500, "log_interval_ms": 0,
                        "shutdown_timeout_ms": 2000}})
    assert synced(next_identifier()), "nothing synced: %s" % \
        S.worker.stderr_tail(5)


@depends("test_worker_runs_on_token_files")
def test_replaced_files_are_noticed_without_a_refusal():
    """Both files renamed over: each new token is logged within seconds,
    and once the upstreams accept only the new ones the next token syncs
    with no 403 from either."""
    vault_before, ak_before = refusals()
    new_vault = vault_login()
    new_ak = new_authentik_token()
    replace_file(S.vault_file, new_vault + "\n")
    replace_file(S.ak_file, new_ak + "\n")
    assert wait_log("vault.token_file %s holds a new token" % S.vault_file,
                    1), S.worker.stderr_tail(5)
    assert wait_log("authentik.token_file %s holds a new token" % S.ak_file,
                    1), S.worker.stderr_tail(5)
    # The old tokens stop working only now.
    status, out = akvtest.http_json(
        "POST", S.stack.vault_addr + "/_fake/tokens/revoke-all")
    assert status == 200 and out.get("revoked", 0) >= 2, out
    authentik_accepts(new_ak)
    # revoke-all took the worker's new Vault token too: mint the one it
    # will use and replace the file again (a second change, noticed too).
    newer_vault = vault_login()
    replace_file(S.vault_file, newer_vault + "\n")
    assert wait_log("vault.token_file %s holds a new token" % S.vault_file,
                    2), S.worker.stderr_tail(5)
    vault_mid, ak_mid = refusals()
    assert synced(next_identifier()), S.worker.stderr_tail(8)
    vault_after, ak_after = refusals()
    assert (vault_after, ak_after) == (vault_mid, ak_mid), \
        "requests refused after the files changed: Vault %d, authentik " \
        "%d" % (vault_after - vault_mid, ak_after - ak_mid)
    assert S.worker.running()
    note("renamed files noticed by themselves (Vault refusals before %d, "
         "after %d; authentik %d, %d)" % (vault_before, vault_after,
                                           ak_before, ak_after))


@depends("test_replaced_files_are_noticed_without_a_refusal")
def test_refused_token_makes_the_worker_read_the_file_again():
    """Files rewritten in place with their stamps kept: the change check
    cannot see them; the upstreams' refusal of the old tokens makes the
    worker read them, and the refused sync completes."""
    vault_before, ak_before = refusals()
    status, _ = akvtest.http_json(
        "POST", S.stack.vault_addr + "/_fake/tokens/revoke-all")
    assert status == 200
    new_vault = vault_login()
    new_ak = new_authentik_token()
    authentik_accepts(new_ak)
    rewrite_in_place(S.vault_file, new_vault + "\n")
    rewrite_in_place(S.ak_file, new_ak + "\n")
    time.sleep(1.5)  # past the change check's second: it saw nothing
    assert log_count("holds a new token") == 3, S.worker.stderr_tail(5)
    assert synced(next_identifier()), S.worker.stderr_tail(8)
    vault_after, ak_after = refusals()
    assert vault_after > vault_before, "Vault never refused the old token"
    assert ak_after > ak_before, "authentik never refused the old token"
    assert log_count("holds a new token") == 5, S.worker.stderr_tail(5)
    note("after %d Vault and %d authentik refusals the files were read "
         "again and the sync completed" % (vault_after - vault_before,
                                           ak_after - ak_before))


@depends("test_refused_token_makes_the_worker_read_the_file_again")
def test_sighup_reads_the_files_again():
    """SIGHUP reads both files whatever their stamps say."""
    _, ak_before = refusals()
    new_ak = new_authentik_token()
    rewrite_in_place(S.ak_file, new_ak + "\n")
    S.worker.signal(signal.SIGHUP)
    assert wait_log("SIGHUP: token files read again: new token in use", 1), \
        S.worker.stderr_tail(5)
    assert log_count("authentik.token_file %s holds a new token" %
                     S.ak_file) == 3
    authentik_accepts(new_ak)
    assert synced(next_identifier()), S.worker.stderr_tail(8)
    assert refusals()[1] == ak_before, "authentik refused a request"
    S.worker.signal(signal.SIGHUP)
    assert wait_log("SIGHUP: token files read again: unchanged", 1), \
        S.worker.stderr_tail(5)


@depends("test_sighup_reads_the_files_again")
def test_an_emptied_file_keeps_the_token_read_before():
    """An empty file is refused with a warning naming it; the token read
    before keeps working."""
    replace_file(S.ak_file, "\n")
    assert wait_log("authentik.token_file: %s must hold exactly one "
                    "non-empty line; the token read before stays in use" %
                    S.ak_file, 1), S.worker.stderr_tail(5)
    assert synced(next_identifier()), S.worker.stderr_tail(8)
    assert S.worker.running()


@depends("test_worker_runs_on_token_files")
def test_stops_cleanly():
    S.worker.signal(signal.SIGTERM)
    assert S.worker.wait(20) == 0, S.worker.stderr_tail(5)


def test_no_secret_in_any_output():
    """Runs last: every captured output of every process."""
    assert SECRETS.kinds().get("Vault token", 0) >= 4, SECRETS.kinds()
    akvtest.assert_no_secrets(S.rundir.logs(), base=S.rundir.path)


if __name__ == "__main__":
    akvtest.run_tests(globals(), "credentials", setup=setup,
                      teardown=teardown)
