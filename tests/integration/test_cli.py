#!/usr/bin/python3
"""ak2vault's command line and configuration loading, without a stack.

Each test writes a configuration file into the run directory and runs
`ak2vault check-config`, `run`, `version`, ... with a clean environment
(only what the test sets). Every invocation's stdout and stderr is checked
for the secrets the test handed to it.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import re  # noqa: E402
import subprocess  # noqa: E402

import akvtest  # noqa: E402
from akvtest import EX_CONFIG, EX_OK, EX_USAGE, SECRETS, note  # noqa: E402

RUN = None  # the RunDir
# Unreachable addresses: nothing here ever connects.
BASE = {
    "kafka": {"brokers": "127.0.0.1:9", "topic": "authentik.events",
              "group": "cli-test"},
    "authentik": {"url": "http://127.0.0.1:9"},
    "vault": {"addr": "http://127.0.0.1:9", "kv_mount": "kv",
              "prefix": "authentik"},
    "log": {"level": "info"},
}
VAULT_TOKEN = akvtest.random_secret(32)
AUTHENTIK_TOKEN = akvtest.random_secret(32)
FILE_TOKEN = akvtest.random_secret(32)
SECRETS.add("Vault token", VAULT_TOKEN)
SECRETS.add("authentik API token", AUTHENTIK_TOKEN)
SECRETS.add("Vault token (file)", FILE_TOKEN)
BOTH = {"VAULT_TOKEN": VAULT_TOKEN, "AUTHENTIK_TOKEN": AUTHENTIK_TOKEN}
_n = 0


def setup(rundir):
    global RUN
    RUN = rundir
    akvtest.binary("ak2vault")


def config(text=None, extra=None, drop=()):
    """Writes a config file: \\p text verbatim, or BASE with \\p extra
    merged in and the "group.name" settings in \\p drop removed."""
    global _n
    _n += 1
    if text is None:
        settings = {g: dict(e) for g, e in BASE.items()}
        for g, entries in (extra or {}).items():
            settings.setdefault(g, {}).update(entries)
        for d in drop:
            g, n = d.split(".", 1)
            settings[g].pop(n, None)
        text = akvtest.config_text(settings)
    path = RUN.file("cli-%02d.cfg" % _n)
    path.write_text(text)
    return str(path)


def line_of(path, needle):
    """1-based number of the first line of \\p path containing \\p needle."""
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in %s" % (needle, path))


def ak(*args, env=None):
    """Runs ak2vault. @returns (status, stdout, stderr); fails the test if
    any known secret appears in either stream."""
    r = subprocess.run([akvtest.binary("ak2vault"), *args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       env=akvtest.child_env(env), cwd=str(RUN.path),
                       timeout=30)
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    # Keep the output for the record; the scan at the end covers it too.
    with open(RUN.file("ak2vault-cli.log"), "a") as log:
        log.write("$ ak2vault %s\n[status %d]\n%s%s\n" % (
            " ".join(args), r.returncode, out, err))
    leaked = sorted({k for v, k in SECRETS.items() if v in out or v in err})
    assert not leaked, "ak2vault %s printed a secret: %s" % (
        args[0] if args else "", ", ".join(leaked))
    return r.returncode, out, err


def expect(rc, want, err, *needles):
    assert rc == want, "exit status %d, wanted %d; stderr: %s" % (
        rc, want, err.strip()[:300])
    for n in needles:
        assert n in err, "stderr lacks %r: %s" % (n, err.strip()[:300])


def dump(out):
    """check-config output as {name: value text}."""
    res = {}
    for line in out.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            res[name] = value
    return res


# ---------------------------------------------------------------------------


def test_version():
    """`version`, `--version` and `-V` print the same: ak2vault's version
    and the libraries it runs with, libcurl's TLS backend included."""
    outs = []
    for args in (("version",), ("--version",), ("-V",)):
        rc, out, err = ak(*args)
        assert rc == EX_OK, "%s: status %d" % (args[0], rc)
        outs.append(out)
    assert outs[0] == outs[1] == outs[2], "the three differ: %r" % outs
    lines = outs[0].splitlines()
    names = [line.split(" ", 1)[0] for line in lines]
    assert names == ["ak2vault", "librdkafka", "libcurl", "cJSON",
                     "libconfig", "libmicrohttpd"], names
    for line in lines:
        assert re.match(r"^\S+ \d+\.\d+(\.\d+)?\b", line), \
            "no version number: %r" % line
    assert re.search(r"^libcurl \S+ \((OpenSSL|GnuTLS|NSS|wolfSSL|mbedTLS)"
                     r"/", outs[0], re.M), "libcurl's TLS backend: %r" % \
        lines[2]


# Each command and the options it takes (long names); every other option
# must be refused.
COMMAND_OPTIONS = {
    "run": {"config", "exit-at-end", "from"},
    "check-config": {"config", "connect"},
    "lag": {"config", "group", "topic", "json"},
    "replay": {"config", "group", "topic", "json", "to-earliest",
               "to-current", "from-file", "partitions", "execute", "export"},
    "reconcile": {"config", "dry-run", "json", "timeout"},
    "sync": {"config", "dry-run", "json", "timeout"},
    "version": set(),
    "config-reference": set(),
}
OPTION_ARGS = {"config": "x.cfg", "from": "earliest", "group": "g",
               "topic": "t", "timeout": "5", "partitions": "0",
               "from-file": "x.csv", "export": "x.csv"}


def test_each_command_has_its_own_help():
    for cmd, opts in COMMAND_OPTIONS.items():
        for how in ((cmd, "--help"), (cmd, "-h"), ("help", cmd)):
            rc, out, err = ak(*how)
            assert rc == EX_OK, "%s: status %d" % (" ".join(how), rc)
            assert out.startswith("Usage: ak2vault %s" % cmd), \
                "%s: %r" % (" ".join(how), out[:80])
        shown = set(re.findall(r"--([a-z][a-z-]+)", out)) - {"help"}
        others = {o for c in COMMAND_OPTIONS.values() for o in c} - opts
        assert not (shown & others), "%s --help shows %s" % (
            cmd, sorted(shown & others))
    rc, out, err = ak("help", "frobnicate")
    expect(rc, EX_USAGE, err, "frobnicate")
    rc, out, err = ak("--help")
    assert rc == EX_OK and all(c in out for c in COMMAND_OPTIONS), out


def test_options_that_do_not_apply_are_refused():
    every = {o for c in COMMAND_OPTIONS.values() for o in c}
    refused = 0
    for cmd, opts in COMMAND_OPTIONS.items():
        for opt in sorted(every - opts):
            args = [cmd, "--" + opt] + ([OPTION_ARGS[opt]]
                                        if opt in OPTION_ARGS else [])
            rc, out, err = ak(*args, env=BOTH)
            expect(rc, EX_USAGE, err, "--%s does not apply to %s" % (opt,
                                                                     cmd))
            refused += 1
    rc, out, err = ak("lag", "-j", "--dry-run", env=BOTH)
    expect(rc, EX_USAGE, err, "--dry-run does not apply to lag")
    note("%d inapplicable options refused with status 64" % refused)


def test_unknown_command_is_usage_error():
    rc, out, err = ak("frobnicate")
    expect(rc, EX_USAGE, err, "frobnicate")


def test_run_without_config_is_usage_error():
    rc, out, err = ak("run", env=BOTH)
    expect(rc, EX_USAGE, err, "-c")


def test_unknown_option_is_usage_error():
    rc, out, err = ak("check-config", "--no-such-option", env=BOTH)
    expect(rc, EX_USAGE, err)


def properties(*pairs):
    return akvtest.RawCfg("(" + ", ".join(
        '("%s", "%s")' % kv for kv in pairs) + ")")


def test_bad_kafka_properties_refused_as_run_refuses_them():
    """check-config builds the Kafka consumer run would: what librdkafka
    refuses (an unknown property, a bad value, a CA file that is not
    there) is a configuration error (78) for both, naming the property."""
    cases = [
        ((("no.such.prop", "1"),), "no.such.prop"),
        ((("security.protocol", "bogus"),), "security.protocol"),
        ((("security.protocol", "ssl"),
          ("ssl.ca.location", "/nonexistent/ca.pem")), "ssl.ca.location"),
    ]
    for pairs, name in cases:
        path = config(extra={"kafka": {"properties": properties(*pairs)}})
        rc, out, err = ak("check-config", "-c", path, env=BOTH)
        expect(rc, EX_CONFIG, err, name)
        assert "configuration is valid" not in err, err
        rc, out, err = ak("run", "-c", path, env=BOTH)
        expect(rc, EX_CONFIG, err, name)
    note("%d sets of kafka.properties: check-config and run both exit 78 "
         "naming the property" % len(cases))


def test_errors_name_their_real_cause():
    """A directory is not "Success"; a bad value that came from the
    environment is blamed on the variable, not on the file."""
    rc, out, err = ak("check-config", "-c", str(RUN.path), env=BOTH)
    expect(rc, EX_CONFIG, err, "is a directory")
    assert "Success" not in err, err
    path = config()
    for var, value, setting in (
            ("VAULT_ADDR", "vault:8200", "vault.addr"),
            ("AUTHENTIK_URL", "authentik:9000", "authentik.url"),
            ("AK2VAULT_METRICS_LISTEN", "nowhere", "metrics.listen")):
        rc, out, err = ak("check-config", "-c", path,
                          env=dict(BOTH, **{var: value}))
        expect(rc, EX_CONFIG, err, "environment %s" % var, setting)
        assert path not in err, "%s blamed on the file: %s" % (var, err)


def test_booleans_are_spelled_as_vault_spells_them():
    """VAULT_SKIP_VERIFY takes what Vault's own tools take (Go's
    strconv.ParseBool) and nothing else."""
    path = config()
    for value, want in (("1", "true"), ("t", "true"), ("T", "true"),
                        ("TRUE", "true"), ("true", "true"),
                        ("True", "true"), ("0", "false"), ("f", "false"),
                        ("F", "false"), ("FALSE", "false"),
                        ("false", "false"), ("False", "false")):
        rc, out, err = ak("check-config", "-c", path,
                          env=dict(BOTH, VAULT_SKIP_VERIFY=value))
        assert rc == EX_OK, "VAULT_SKIP_VERIFY=%s: status %d: %s" % (
            value, rc, err)
        assert dump(out)["vault.tls.skip_verify"] == want, \
            "VAULT_SKIP_VERIFY=%s: %s" % (value, dump(out))
    for value in ("yes", "on", "tRuE", "2"):
        rc, out, err = ak("check-config", "-c", path,
                          env=dict(BOTH, VAULT_SKIP_VERIFY=value))
        expect(rc, EX_CONFIG, err, "environment VAULT_SKIP_VERIFY")


def test_kafka_secrets_from_a_file_or_the_environment():
    """kafka.properties values "@file:PATH" and "@env:NAME": check-config
    shows the reference, never the password; a file or variable that is
    not there is a configuration error naming it."""
    pw = "kafkaPw" + akvtest.random_secret(20)
    SECRETS.add("sasl password", pw)
    pw_file = RUN.write("sasl.pw", pw + "\n")
    sasl = [("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"), ("sasl.username", "ak2vault")]
    for ref, env in (("@file:%s" % pw_file, {}),
                     ("@env:AKV_SASL_PW", {"AKV_SASL_PW": pw})):
        path = config(extra={"kafka": {"properties": properties(
            *(sasl + [("sasl.password", ref)]))}})
        rc, out, err = ak("check-config", "-c", path, env=dict(BOTH, **env))
        expect(rc, EX_OK, err, "valid")
        assert ref in out, "the reference is not shown: %s" % out
    for ref, needle in (("@file:/nonexistent/pw", "cannot read "
                         "/nonexistent/pw"),
                        ("@env:AKV_NO_SUCH_PW", "AKV_NO_SUCH_PW is not set")):
        path = config(extra={"kafka": {"properties": properties(
            *(sasl + [("sasl.password", ref)]))}})
        for cmd in ("check-config", "run"):
            rc, out, err = ak(cmd, "-c", path, env=BOTH)
            expect(rc, EX_CONFIG, err, "sasl.password", needle)
    note("sasl.password from @file: and @env:, shown as the reference; "
         "missing ones refused with 78 by check-config and run")


def test_plain_http_upstreams_are_warned_about():
    path = config()
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    assert rc == EX_OK and "plain http" not in err, err
    path = config(extra={"vault": {"addr": "http://vault.example:8200"},
                         "authentik": {"url": "http://ak.example:9000"}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_OK, err, "vault.addr http://vault.example:8200 is plain "
           "http", "authentik.url http://ak.example:9000 is plain http")


def test_valid_config():
    path = config()
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_OK, err, "valid")


def test_unknown_setting():
    path = config(extra={"kafka": {"bogus_setting": 1}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err,
           "%s:%d:" % (path, line_of(path, "bogus_setting")),
           "kafka.bogus_setting")


def test_unknown_setting_also_stops_run():
    path = config(extra={"vault": {"kv_mnt": "kv"}})
    rc, out, err = ak("run", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err,
           "%s:%d:" % (path, line_of(path, "kv_mnt")), "vault.kv_mnt")


def test_unknown_group():
    path = config(extra={"kafak": {"brokers": "127.0.0.1:9"}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "%s:%d:" % (path, line_of(path, "kafak:")),
           "kafak")


def test_wrong_type():
    path = config(extra={"kafka": {"topic": akvtest.RawCfg("5")}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "%s:%d:" % (path, line_of(path, "topic =")),
           "kafka.topic")


def test_out_of_range():
    path = config(extra={"kafka": {"session_timeout_ms": 1}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err,
           "%s:%d:" % (path, line_of(path, "session_timeout_ms")),
           "kafka.session_timeout_ms")


def test_bad_enum_value():
    path = config(extra={"log": {"level": "chatty"}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "%s:%d:" % (path, line_of(path, "chatty")),
           "log.level")


def test_syntax_error():
    path = config(text='kafka: { brokers = "127.0.0.1:9"\n  topic = ; };\n')
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "%s:" % path)


def test_missing_file():
    rc, out, err = ak("check-config", "-c", str(RUN.file("nope.cfg")),
                      env=BOTH)
    expect(rc, EX_CONFIG, err, "nope.cfg")


def test_missing_required_setting():
    path = config(drop=["kafka.brokers"])
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "kafka.brokers")


def test_missing_vault_token():
    path = config()
    rc, out, err = ak("check-config", "-c", path,
                      env={"AUTHENTIK_TOKEN": AUTHENTIK_TOKEN})
    expect(rc, EX_CONFIG, err, "VAULT_TOKEN")


def test_missing_vault_token_also_stops_run():
    path = config()
    rc, out, err = ak("run", "-c", path,
                      env={"AUTHENTIK_TOKEN": AUTHENTIK_TOKEN})
    expect(rc, EX_CONFIG, err, "VAULT_TOKEN")


def test_missing_authentik_token():
    path = config()
    rc, out, err = ak("check-config", "-c", path,
                      env={"VAULT_TOKEN": VAULT_TOKEN})
    expect(rc, EX_CONFIG, err, "AUTHENTIK_TOKEN")


def test_vault_token_both_env_and_file():
    tf = RUN.write("vault-token-both", FILE_TOKEN + "\n")
    path = config(extra={"vault": {"token_file": str(tf)}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "VAULT_TOKEN", "vault.token_file")


def test_vault_token_in_file_rejected():
    secret = akvtest.random_secret(32)
    SECRETS.add("Vault token (in config)", secret)
    path = config(extra={"vault": {"token": secret}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "%s:%d:" % (path, line_of(path, "token =")),
           "vault.token")


def test_authentik_token_in_file_rejected():
    path = config(extra={"authentik": {"token": "x"}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_CONFIG, err, "authentik.token")


def test_token_file_works_and_is_masked():
    tf = RUN.write("vault-token", FILE_TOKEN + "\n")
    path = config(extra={"vault": {"token_file": str(tf)}})
    rc, out, err = ak("check-config", "-c", path,
                      env={"AUTHENTIK_TOKEN": AUTHENTIK_TOKEN})
    expect(rc, EX_OK, err)
    d = dump(out)
    # ak() already failed the test if the token's value was printed.
    assert d.get("vault.token") == '"********"', \
        "vault.token shown as %r, wanted the mask" % d.get("vault.token")
    assert d.get("vault.token_file") == '"%s"' % tf, \
        "vault.token_file shown as %r" % d.get("vault.token_file")


def test_empty_token_file_rejected():
    tf = RUN.write("vault-token-empty", "\n")
    path = config(extra={"vault": {"token_file": str(tf)}})
    rc, out, err = ak("check-config", "-c", path,
                      env={"AUTHENTIK_TOKEN": AUTHENTIK_TOKEN})
    expect(rc, EX_CONFIG, err)


def test_unreadable_token_file_rejected():
    path = config(extra={"vault": {"token_file": str(RUN.file("absent"))}})
    rc, out, err = ak("check-config", "-c", path,
                      env={"AUTHENTIK_TOKEN": AUTHENTIK_TOKEN})
    expect(rc, EX_CONFIG, err)


def test_check_config_prints_effective_config():
    path = config(extra={"kafka": {"group": "cli-effective"},
                         "sync": {"retry_initial_ms": 250}})
    rc, out, err = ak("check-config", "-c", path, env=BOTH)
    expect(rc, EX_OK, err)
    d = dump(out)
    want = {
        "kafka.brokers": '"127.0.0.1:9"',          # from the file
        "kafka.group": '"cli-effective"',          # from the file
        "sync.retry_initial_ms": "250",            # from the file
        "kafka.session_timeout_ms": "45000",       # default
        "kafka.auto_offset_reset": '"earliest"',   # default
        "authentik.token": '"********"',           # masked
        "vault.token": '"********"',               # masked
    }
    wrong = ["%s=%s" % (k, d.get(k)) for k, v in want.items()
             if d.get(k) != v]
    assert not wrong, "unexpected values: %s" % ", ".join(wrong)
    assert len(d) >= 25, "only %d settings printed" % len(d)


def test_env_overrides_file():
    path = config()
    env = dict(BOTH, KAFKA_TOPIC="from-env.events",
               KAFKA_GROUP="env-group", VAULT_ADDR="http://127.0.0.2:8200")
    rc, out, err = ak("check-config", "-c", path, env=env)
    expect(rc, EX_OK, err)
    d = dump(out)
    got = (d.get("kafka.topic"), d.get("kafka.group"), d.get("vault.addr"))
    assert got == ('"from-env.events"', '"env-group"',
                   '"http://127.0.0.2:8200"'), "got %r" % (got,)


def test_env_override_is_validated():
    path = config()
    rc, out, err = ak("check-config", "-c", path,
                      env=dict(BOTH, VAULT_ADDR="ftp://vault"))
    expect(rc, EX_CONFIG, err, "vault.addr")


def test_config_reference():
    rc, out, err = ak("config-reference")
    assert rc == EX_OK, "status %d" % rc
    for name in ("kafka.brokers", "vault.token_file", "sync.retry_multiplier"):
        assert name in out, "config-reference lacks %s" % name


def test_no_secret_in_outputs():
    akvtest.assert_no_secrets(RUN.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "cli", setup=setup)
