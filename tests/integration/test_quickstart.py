#!/usr/bin/python3
"""README's "Production quick start", followed literally.

The section's shell blocks run in order in ONE bash session (set -euo
pipefail), as a person pasting them would, against a real Kafka broker
(kafka-local) and the loopback stand-ins for Vault and authentik. What the
test changes, and nothing else:

  * the first block (addresses and the administrators' tokens, which a
    person types) is replaced by the stand-ins' addresses and tokens;
  * /etc/ak2vault, and make install's PREFIX and SYSCONFDIR, point into the
    run directory; the metrics port is a free one;
  * three commands of the machine are stand-ins, on PATH first
    (tests/quickstart/bin): kafka-topics.sh is Kafka's own TopicCommand
    from the installed jars; `vault` answers docker/vault/setup.sh like an
    empty Vault and hands out the AppRole fake-vault was started with;
    `systemctl` runs the installed unit as systemd would (User=, Group=,
    EnvironmentFile=, ExecStart=, ExecReload=, KillSignal=,
    TimeoutStopSec=) on a machine whose init is not systemd;
  * between blocks 2 and 3 the harness makes the token `ak2vault-worker`
    in fake-authentik, as authentik does when it applies the blueprint.

useradd, runuser, chown and the rest are the machine's own: the suite
needs root, and leaves a system user `ak2vault` behind (as the quick start
does). Then the worker the unit started must sync a token created in
authentik into Vault, `systemctl stop` must drain it, and no output may
hold a secret. Also: the installed unit passes `systemd-analyze verify`
without a warning and `systemd-analyze security --offline` rates it "OK".
"""
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import REPO, SECRETS, depends, note  # noqa: E402

README = REPO / "README.md"
SHIMS = REPO / "tests" / "quickstart" / "bin"
TITLE = "Production quick start"

S = SimpleNamespace(rundir=None, root=None, stack=None, shell=None,
                    blocks=None, out=[], port=None, env=None, role_id=None,
                    secret_id=None)


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.shell and S.shell.poll() is None:
        S.shell.kill()
    pidfile = S.root / "state" / "main.pid" if S.root else None
    if pidfile and pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), 9)
        except (OSError, ValueError):
            pass
    if S.stack:
        S.stack.stop()


def section_blocks():
    """The ```sh blocks of README's quick start, in order."""
    text = README.read_text()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(TITLE), text,
                  re.S | re.M)
    assert m, "README has no section %r" % TITLE
    return re.findall(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)


def localise(block):
    """The run directory in place of the machine's paths."""
    etc = S.root / "etc"
    block = block.replace("/etc/ak2vault", str(etc / "ak2vault"))
    block = re.sub(r"^make install$",
                   "make install PREFIX=%s SYSCONFDIR=%s" % (
                       S.root / "usr" / "local", etc), block, flags=re.M)
    return block.replace("127.0.0.1:9464", "127.0.0.1:%d" % S.port)


class Shell:
    """One bash session fed block by block on its stdin."""

    def __init__(self, env, log):
        self.log = open(log, "w")
        self.p = subprocess.Popen(
            ["/bin/bash", "-s"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, cwd=str(REPO), bufsize=1)
        self.run("set -euo pipefail")
        self.n = 0

    def run(self, block, timeout=600):
        """Runs \\p block; @returns its output. A failing command ends the
        session (set -e): that is an AssertionError here."""
        marker = "__quickstart_block_done_%s__" % uuid.uuid4().hex
        self.p.stdin.write(block.rstrip("\n") + "\necho %s\n" % marker)
        self.p.stdin.flush()
        lines = []
        for line in self.p.stdout:
            if line.strip() == marker:
                return "".join(lines)
            lines.append(line)
            self.log.write(line)
            self.log.flush()
        rc = self.p.wait(timeout)
        raise AssertionError("the shell exited (status %s) in:\n%s\n--- "
                             "output:\n%s" % (rc, block.strip(),
                                              SECRETS.scrub("".join(
                                                  lines[-15:]))))

    def poll(self):
        return self.p.poll()

    def kill(self):
        self.p.kill()


def run_block(i):
    out = S.shell.run(localise(S.blocks[i]))
    S.out.append(out)
    return out


# ---------------------------------------------------------------------------

def test_section_has_its_blocks():
    """Eight blocks, the first only sets where things are."""
    if os.geteuid() != 0:
        raise AssertionError("needs root (useradd, runuser, chown), as the "
                             "quick start does")
    S.blocks = section_blocks()
    assert len(S.blocks) == 8, "%d shell blocks" % len(S.blocks)
    first = [l for l in S.blocks[0].splitlines() if l.strip()]
    assert all(re.match(r"(export [A-Z_]+=|read -rsp )", l) for l in first), \
        "the first block does more than say where things are: %s" % first
    assert {"KAFKA", "AUTHENTIK_URL", "VAULT_ADDR", "AUTHENTIK_ADMIN_TOKEN",
            "VAULT_ADMIN_TOKEN"} == set(re.findall(
                r"(?:export |read -rsp '[^']*' )([A-Z_]+)", S.blocks[0])), \
        S.blocks[0]


@depends("test_section_has_its_blocks")
def test_stack_and_shell():
    """A real broker with no topic yet for the workers, the stand-ins, and
    the shell with block 0 replaced."""
    S.role_id = str(uuid.uuid4())
    S.secret_id = akvtest.random_secret(36)
    SECRETS.add("approle secret_id", S.secret_id)
    # The broker's own topic is not the quick start's: block 2 creates
    # authentik.events, where fake-authentik publishes.
    S.stack = akvtest.Stack(
        S.rundir, partitions=1, topic="quickstart-bootstrap", kafka="real",
        authentik_args=("--topic", "authentik.events"),
        vault_args=("--approle", "%s=%s" % (S.role_id, S.secret_id)))
    S.root = Path(S.rundir.sub("root").path)
    # The worker's user must reach its files under the run directory.
    p = S.root
    while p != S.rundir.path.parent:
        os.chmod(p, os.stat(p).st_mode | 0o711)
        p = p.parent
    S.port = akvtest.free_port()
    state = S.root / "state"
    S.env = {
        "PATH": "%s:%s:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" % (
            SHIMS, S.root / "usr" / "local" / "bin"),
        "HOME": str(S.root),
        "LANG": "C.UTF-8",
        "QS_UNITDIR": str(S.root / "usr" / "local" / "lib" / "systemd" /
                          "system"),
        "QS_STATE": str(state),
        "QS_KAFKA_LIBS": str(akvtest.KAFKA_LIBS),
        "QS_VAULT_LOG": str(S.root / "vault-calls.log"),
        "QS_VAULT_ADMIN_TOKEN": S.stack.vault_token,
        "QS_VAULT_ADDR": S.stack.vault_addr,
        "QS_ROLE_ID": S.role_id,
        "QS_SECRET_ID": S.secret_id,
    }
    for k in ("JAVA_HOME",):
        if os.environ.get(k):
            S.env[k] = os.environ[k]
    S.shell = Shell(S.env, S.rundir.path / "quickstart-shell.log")
    # Block 0, as a person would type it for this site.
    S.shell.run("\n".join((
        "export KAFKA=%s" % S.stack.brokers,
        "export AUTHENTIK_URL=%s" % S.stack.authentik_url,
        "export VAULT_ADDR=%s" % S.stack.vault_addr,
        "export AUTHENTIK_ADMIN_TOKEN VAULT_ADMIN_TOKEN",
        "AUTHENTIK_ADMIN_TOKEN=$QS_AUTHENTIK_ADMIN",
        "VAULT_ADMIN_TOKEN=$QS_VAULT_ADMIN_TOKEN")).replace(
            "$QS_AUTHENTIK_ADMIN", S.stack.authentik_token))


@depends("test_stack_and_shell")
def test_1_build_and_install():
    run_block(1)
    installed = S.root / "usr" / "local" / "bin" / "ak2vault"
    unit = Path(S.env["QS_UNITDIR"]) / "ak2vault.service"
    cfg = S.root / "etc" / "ak2vault" / "ak2vault.cfg"
    for f in (installed, unit, cfg):
        assert f.is_file(), "make install made no %s" % f
    assert os.access(installed, os.X_OK)
    assert (cfg.stat().st_mode & 0o777) == 0o640, oct(cfg.stat().st_mode)
    text = unit.read_text()
    assert "ExecStart=%s run -c %s" % (installed, cfg) in text, \
        "the unit does not run the installed binary on the installed " \
        "configuration"
    r = subprocess.run(["id", "-u", "ak2vault"], capture_output=True)
    assert r.returncode == 0, "no user ak2vault"


@depends("test_1_build_and_install")
def test_unit_passes_systemd_analyze():
    """`systemd-analyze verify` accepts the unit without a single warning
    (an unknown or misspelt directive is only a warning), and its offline
    security rating is "OK" or better."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not installed (Debian's systemd " \
        "package; make deps installs it)"
    unit = Path(S.env["QS_UNITDIR"]) / "ak2vault.service"
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip() and \
        not r.stdout.strip(), "verify: %s%s" % (r.stdout, r.stderr)
    r = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for ak2vault\.service: "
                  r"([0-9.]+) (\w+)", r.stdout)
    assert m, "no rating: %s" % (r.stdout[-300:] + r.stderr[-300:])
    assert m.group(2) in ("OK", "SAFE"), "rated %s %s" % m.groups()
    note("systemd-analyze: verify clean, exposure %s %s" % m.groups())


@depends("test_1_build_and_install")
def test_2_topics():
    run_block(2)
    out = subprocess.run(
        [str(SHIMS / "kafka-topics.sh"), "--bootstrap-server",
         S.stack.brokers, "--describe", "--topic", "authentik.events"],
        capture_output=True, text=True, env=S.env, timeout=120).stdout
    assert "PartitionCount: 4" in out, out[-400:]
    # Again: --if-not-exists, so the block can be run twice.
    run_block(2)


@depends("test_2_topics")
def test_3_authentik_token():
    """authentik applied the blueprint (the harness makes its token), and
    the block copies the token's key into the worker's file."""
    S.stack.create_token("ak2vault-worker", intent="api",
                         description="ak2vault workers", expiring=False)
    # The key fake-authentik accepts as an API token is the one the
    # service account's token holds.
    S.stack.set_key("ak2vault-worker", S.stack.authentik_token)
    run_block(3)
    f = S.root / "etc" / "ak2vault" / "authentik-token"
    assert f.read_text().strip() == S.stack.authentik_token, \
        "the file does not hold the token's key"


@depends("test_3_authentik_token")
def test_4_vault_setup():
    run_block(4)
    calls = (S.root / "vault-calls.log").read_text()
    for want in ("secrets enable -path=kv -version=2 kv",
                 "policy write ak2vault",
                 "auth enable -path=approle approle",
                 "write auth/approle/role/ak2vault"):
        assert want in calls, "setup.sh never ran `vault %s`" % want
    d = S.root / "etc" / "ak2vault"
    assert (d / "role-id").read_text().strip() == S.role_id
    assert (d / "secret-id").read_text().strip() == S.secret_id


@depends("test_4_vault_setup")
def test_5_configure():
    run_block(5)
    d = S.root / "etc" / "ak2vault"
    for f in d.iterdir():
        st = f.stat()
        assert st.st_mode & 0o777 == 0o640, "%s: %o" % (f.name, st.st_mode)
    assert d.stat().st_mode & 0o777 == 0o750
    assert "KAFKA_BROKERS=%s" % S.stack.brokers in \
        (d / "ak2vault.env").read_text()


@depends("test_5_configure")
def test_6_check_config_as_the_worker():
    out = run_block(6)
    for check in ("kafka", "kafka group", "kafka dlq", "vault", "vault kv",
                  "authentik"):
        assert re.search(r"^%s: ok\b" % re.escape(check), out, re.M), \
            "check-config --connect: no '%s: ok' in:\n%s" % (check, out)


@depends("test_6_check_config_as_the_worker")
def test_7_start_and_verify():
    out = run_block(7)
    assert re.search(r"^ak2vault_consumer_lag_messages\{", out, re.M), \
        "no lag in /metrics:\n" + out[-600:]
    assert "authentik.events" in out, "lag printed no partition:\n" + out
    journal = S.root / "state" / "journal.log"
    assert akvtest.wait_until(lambda: "SIGHUP" in journal.read_text(), 10), \
        "systemctl reload: no SIGHUP in the journal"


@depends("test_7_start_and_verify")
def test_a_token_reaches_vault_and_stop_drains():
    """A token created in authentik reaches Vault under kv/authentik/, in
    the unit's worker; `systemctl stop` ends it with its final stats."""
    S.stack.create_token("quickstart-bot")
    key = S.stack.live_tokens()["quickstart-bot"]["key"]

    def there():
        cur = S.stack.vault_current().get("quickstart-bot")
        return cur is not None and (cur[1] or {}).get("key") == key
    journal = S.root / "state" / "journal.log"
    assert akvtest.wait_until(there, 30), "not in Vault: %s" % \
        SECRETS.scrub(journal.read_text()[-800:])
    S.shell.run("systemctl stop ak2vault")
    text = journal.read_text()
    assert "final stats:" in text.splitlines()[-1], text[-400:]
    assert "token=quickstart-bot" in text
    assert " error " not in text, "errors in the journal"
    note("the unit's worker synced a token and stopped with its final stats")


def test_no_secret_in_any_output():
    # The unit's journal is under the run directory too.
    akvtest.assert_no_secrets(S.rundir.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "quickstart", setup=setup,
                      teardown=teardown)
