#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets: tests/fuzz/corpus/<target>/.

The seeds are the project's own shapes: the event fixtures
(tests/fixtures/events), the Vault and authentik answers the unit tests
record, configs/ak2vault.cfg and small configurations like the unit tests',
and the Retry-After values, dates, durations and partition lists the unit
tests use. Each seed is a file named after what it shows.

Only missing files are written and none is removed: inputs added by hand
(a crash once found, minimized) stay. Run from anywhere:

    python3 tests/fuzz/make-corpus.py
"""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
EVENTS = ROOT / "tests" / "fixtures" / "events"


def events():
    """The event fixtures and variants the scan must give up on or refuse."""
    seeds = {}
    for f in sorted(EVENTS.glob("*.json")):
        seeds["fixture-" + f.stem] = f.read_bytes()
    created = (EVENTS / "token_created.json").read_bytes()
    pk = b'"action":"model_created","context":{"model":{"app":"authentik_core",'
    pk += b'"model_name":"token","pk":"8b03f2c1df9c4cabbb33602efade9ced",'
    seeds.update({
        "compact-sync": b"{" + pk + b'"name":"ci-deploy"}}}',
        "compact-delete": b"{" + pk.replace(b"model_created", b"model_deleted")
        + b'"name":"ci-deploy (expires=2026-01-01)"}}}',
        "escaped-action": b'{"action":"model\\u005fcreated","context":{"model":'
        b'{"app":"authentik_core","model_name":"token","pk":'
        b'"8b03f2c1-df9c-4cab-bb33-602efade9ced","name":"ci"}}}',
        "nul-in-action": b'{"action":"model_created\x00x","context":{}}',
        "bom-prefixed": b"\xef\xbb\xbf" + created,
        "truncated": created[: len(created) // 2],
        "array-root": b"[" + created + b"]",
        "duplicate-action": b'{"action":"login","action":"model_created",'
        b'"context":{"model":{"app":"authentik_core"}}}',
        "dotted-name": b"{" + pk + b'"name":"a.b"}}}',
        "dots-name": b"{" + pk + b'"name":".."}}}',
        "rotate-of-secret": b'{"action":"secret_rotate","context":{"secret":'
        b'{"pk":1,"app":"authentik_crypto"}}}',
        "diff-identifier": b'{"action":"model_updated","context":{"model":'
        b'{"app":"authentik_core","model_name":"token","pk":'
        b'"8b03f2c1df9c4cabbb33602efade9ced"},"diff":{"identifier":'
        b'{"new_value":"from-diff"}}}}',
        "token-words-undecodable": b'{"action":"model_created" authentik_core token',
        "deep-nesting": b'{"x":' + b"[" * 120 + b"]" * 120 + b"}",
        "numbers-and-literals": b'{"pk":-0.5e+3,"action":true,"context":null,'
        b'"x":[1,2.0,"a",{}]} trailing',
    })
    return seeds


VAULT_READ_LIVE = (
    b'{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,'
    b'"data":{"data":{"intent":"api","key":"k1"},"metadata":{"created_time":'
    b'"2018-03-22T02:24:06.945319214Z","custom_metadata":null,'
    b'"deletion_time":"","destroyed":false,"version":2}},"wrap_info":null,'
    b'"warnings":null,"auth":null,"mount_type":"kv"}\n')
VAULT_READ_DELETED = (
    b'{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,'
    b'"data":{"data":null,"metadata":{"created_time":"2024-01-01T00:00:00.1Z",'
    b'"custom_metadata":null,"deletion_time":"2024-01-02T00:00:00.2Z",'
    b'"destroyed":false,"version":3}},"wrap_info":null,"warnings":null,'
    b'"auth":null,"mount_type":""}')
VAULT_LOGIN = (
    b'{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,'
    b'"data":null,"wrap_info":null,"warnings":null,"auth":{"client_token":'
    b'"hvs.abcdef","accessor":"a","policies":["default"],"metadata":{},'
    b'"lease_duration":2764800,"renewable":true,"entity_id":"e",'
    b'"token_type":"service","orphan":true,"mfa_requirement":null,'
    b'"num_uses":0},"mount_type":"kubernetes"}')


def vault():
    """HTTP status line, then a Vault answer (tests/unit/test_vault.c,
    test_sync.c, test_probe.c)."""
    return {
        "read-live-version": b"200\n" + VAULT_READ_LIVE,
        "read-deleted-version": b"404\n" + VAULT_READ_DELETED,
        "read-never-written": b'404\n{"errors":[]}\n',
        "read-no-route": b'404\n{"errors":["no handler for route '
        b'\\"nope/data/authentik/x\\". route entry not found."]}\n',
        "read-not-kv2": b'404\n{"request_id":"r","data":null,"warnings":'
        b'["Invalid path for a versioned K/V secrets engine."]}',
        "read-html": b"200\n<html>",
        "sealed": b'503\n{"errors":["Vault is sealed"]}',
        "invalid-token": b'403\n{"errors":["2 errors occurred:\\n\\t* '
        b'permission denied\\n\\t* invalid token\\n\\n"]}',
        "cas-mismatch": b'400\n{"errors":["check-and-set parameter did not '
        b'match the current version"]}',
        "upgrading": b'400\n{"errors":["Upgrading from non-versioned to '
        b'versioned data. This backend will be unavailable for a brief '
        b'period and will resume service shortly."]}',
        "rate-limited": b'429\n{"errors":["request path \\"kv/data/a\\": '
        b'rate limit quota exceeded"]}',
        "standby": b'307\n{"errors":["local node not active but active '
        b'cluster node not found"]}',
        "not-initialised": b'501\n{"errors":["Vault is not initialized"]}',
        "no-answer": b"0\n",
        "login": b"200\n" + VAULT_LOGIN,
        "login-null-auth": b'200\n{"auth":null}',
        "login-denied": b'403\n{"errors":["permission denied"]}',
        "capabilities-two-paths": b'200\n{"kv/data/authentik/ci":["create",'
        b'"read","update"],"kv/metadata/authentik/ci":["deny"],"data":{'
        b'"kv/data/authentik/ci":["create","read","update"],'
        b'"kv/metadata/authentik/ci":["deny"]},"wrap_info":null,'
        b'"warnings":null,"auth":null,"mount_type":"system"}\n',
        "capabilities-single": b'200\n{"data":{"capabilities":["root"],'
        b'"p":["root"]}}',
        "capabilities-bare": b'200\n{"capabilities":["delete","list",'
        b'"read","update"]}',
        "capabilities-unknown-name": b'200\n{"p":["read","subscribe"]}',
        "capabilities-not-a-list": b'200\n{"p":"read"}',
    }


def vault_path():
    """mount, kind, prefix, identifier and buffer size, one per line."""
    return {
        "default": b"kv\ndata\nauthentik\nci-deploy\n1024",
        "metadata": b"kv\nmetadata\nauthentik\nci-deploy\n1024",
        "nested-mount-and-prefix": b"secret/team-a\ndata\nauthentik/prod\n"
        b"deploy_bot-1\n256",
        "escaped-identifier": b"kv\ndata\np\n../a/b?c\n1024",
        "unicode-identifier": b"kv\ndata\np\ncaf\xc3\xa9 bot\n1024",
        "short-identifier": b"kv\ndata\np\nx\n64",
        "too-small": b"kv\ndata\np\nabc\n12",
        "exact-size": b"kv\ndata\np\nabc\n14",
        "long-identifier": b"kv\ndata\nauthentik\n" + b"a" * 255 + b"\n4096",
    }


DETAIL = (
    b'{"pk":"8b03f2c1-df9c-4cab-bb33-602efade9ced","managed":null,'
    b'"identifier":"deploy-bot-api","intent":"api","user":12,'
    b'"user_obj":{"pk":12,"username":"deploy-bot"},'
    b'"description":"Vault sync test token",'
    b'"expires":"2026-04-22T09:12:00.412345Z","expiring":true}')


def authentik():
    """The identifier asked for, then an authentik answer
    (tests/unit/test_authentik.c)."""
    return {
        "detail": b"deploy-bot-api\n" + DETAIL,
        "detail-other-identifier": b"other\n" + DETAIL,
        "detail-no-intent": b'x\n{"identifier":"x"}',
        "detail-truncated": b'x\n{"detail":',
        "key": b'deploy-bot-api\n{"key":"abcDEF123"}',
        "key-empty": b'x\n{"key":""}',
        "key-number": b'x\n{"key":5}',
        "key-escaped": b'x\n{"key":"a\\u00e9\\ud83d\\ude00\\/b"}',
        "not-found": b'x\n{"detail":"Not found."}',
        "count": b'x\n{"pagination":{"next":0,"previous":0,"count":3,'
        b'"current":1,"total_pages":3,"start_index":1,"end_index":1},'
        b'"results":[' + DETAIL + b"]}",
        "count-without-results": b'x\n{"pagination":{"count":3}}',
        "count-negative": b'x\n{"pagination":{"count":-1},"results":[]}',
        "count-fraction": b'x\n{"pagination":{"count":1.5},"results":[]}',
    }


def backoff():
    """'initial cap multiplier attempt rnd', 'now cap', then a Retry-After
    value (tests/unit/test_common.c)."""
    now = b"1445412480 60000\n"
    return {
        "defaults-seconds": b"1000 60000 2 3 12345\n" + now + b"120",
        "first-attempt": b"1000 60000 2 0 18446744073709551615\n" + now + b"0",
        "capped": b"1000 60000 2 40 987654321\n" + now + b" 120 ",
        "multiplier-below-one": b"500 2000 0.5 7 42\n" + now + b"1",
        "zero-initial": b"0 60000 2 3 5\n" + now + b"",
        "huge-seconds": b"250 300000 1.5 12 77\n" + now
        + b"99999999999999999999999",
        "imf-date": b"1000 60000 2 1 9\n" + now
        + b"Wed, 21 Oct 2015 07:28:30 GMT",
        "rfc850-date": b"1000 60000 2 1 9\n" + now
        + b"Wednesday, 21-Oct-15 07:28:30 GMT",
        "asctime-date": b"1000 60000 2 1 9\n" + now
        + b"Wed Oct 21 07:28:30 2015",
        "past-date": b"1000 60000 2 1 9\n" + now
        + b"Wed, 21 Oct 2015 07:00:00 GMT",
        "far-date": b"1000 60000 2 1 9\n" + now
        + b"Thu, 01 Jan 2099 00:00:00 GMT",
        "words": b"1000 60000 2 1 9\n" + now + b"soon",
        "negative": b"1000 60000 2 1 9\n" + now + b"-5",
        "fraction": b"1000 60000 2 1 9\n" + now + b"1.5",
        "trailing-letters": b"1000 60000 2 1 9\n" + now + b"12abc",
    }


BASE_CFG = (b'kafka: { brokers = "localhost:9092"; };\n'
            b'authentik: { url = "http://localhost:9000"; };\n'
            b'vault: { addr = "http://127.0.0.1:8200"; };\n')


def settings():
    """Configuration files: the shipped example, the smallest valid one and
    variations of each section (tests/unit/test_config.c)."""
    return {
        "example": (ROOT / "configs" / "ak2vault.cfg").read_bytes(),
        "minimal": BASE_CFG,
        "properties": BASE_CFG.replace(
            b'brokers = "localhost:9092";',
            b'brokers = "b:1,c:2"; properties = ( ("security.protocol", '
            b'"SASL_SSL"), ("sasl.password", "pw") );'),
        "managed-property": BASE_CFG.replace(
            b'brokers = "localhost:9092";',
            b'brokers = "b:1"; properties = ( ("enable.auto.commit", "true") );'),
        "token-file": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "http://v"; token_file = "tests/fuzz/token-file.txt";')
        .replace(b'url = "http://localhost:9000";',
                 b'url = "https://a"; token_file = "tests/fuzz/token-file.txt";'),
        "approle": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "https://v"; auth: { method = "approle"; '
            b'role_id = "r"; secret_id_file = "tests/fuzz/token-file.txt"; };'),
        "kubernetes-without-role": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "https://v"; auth: { method = "kubernetes"; };'),
        "mount-and-prefix": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "http://v"; kv_mount = "secret/team"; prefix = "a/b"; '
            b'on_delete = "purge"; extra_fields = ["user", "expires"];'),
        "bad-prefix": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "http://v"; prefix = "a/../b";'),
        "match-and-sync": BASE_CFG
        + b'match: { apps = ["authentik_core"]; models = ["token"]; '
        b'sync_actions = ["model_created", "secret_rotate"]; '
        b'delete_actions = []; intents = ["api", "app_password"]; };\n'
        b'sync: { max_in_flight = 8; retry_initial_ms = 100; '
        b'retry_max_ms = 50; retry_multiplier = 1.5; };\n',
        "metrics-listen": BASE_CFG
        + b'metrics: { listen = "127.0.0.1:9464"; };\n'
        b'log: { level = "debug"; format = "json"; };\n',
        "secret-in-file": BASE_CFG.replace(
            b'addr = "http://127.0.0.1:8200";',
            b'addr = "http://v"; token = "x";'),
        "unknown-setting": BASE_CFG + b"nope = 1;\n",
        "wrong-type": BASE_CFG.replace(b'"localhost:9092"', b"9092"),
        "syntax-error": BASE_CFG[:40],
        "dlq": BASE_CFG + b'dlq: { enabled = true; topic = "t.dlq"; '
        b'undecodable = false; };\n',
    }


def replay():
    """Arguments of --to-datetime, --by-duration and --partitions
    (tests/unit/test_replay.c)."""
    words = [
        "1970-01-01T00:00:00Z", "2026-11-28T10:00:00Z",
        "2026-11-28t10:00:00z", "2026-11-28T10:00Z",
        "2026-11-28T10:00:00.5Z", "2026-11-28T10:00:00.123456789Z",
        "2026-11-28T10:00:00+02:00", "2026-11-28T10:00:00-0530",
        "2024-02-29T23:59:59.999Z", "9999-12-31T23:59:59.999-23:59",
        "2026-11-28T10:00:00", "2023-02-29T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "90s", "15m", "2h", "1d", "500ms", "1h30m", "1d2h3m4s5ms", "1.5h",
        "PT15M", "P1DT2H", "PT0.5S", "P1DT2H3M4.25S", "36500d", "36600d",
        "p1dt2h", "PT1M1H", "1h1h",
        "0,2,5-7", "0-3", "1,2-5", "0-2000000000", "3-1", "1,", "2147483647",
    ]
    return {"arg-" + w.replace(":", "").replace("+", "p"): w.encode()
            for w in words}


TARGETS = {
    "fuzz_matcher": events,
    "fuzz_prefilter": events,
    "fuzz_jscan": events,
    "fuzz_vault": vault,
    "fuzz_vault_path": vault_path,
    "fuzz_authentik": authentik,
    "fuzz_backoff": backoff,
    "fuzz_settings": settings,
    "fuzz_replay": replay,
}


def main():
    for target, seeds in TARGETS.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        added = 0
        for name, data in seeds().items():
            f = d / name
            if not f.exists():
                f.write_bytes(data)
                added += 1
        print(f"{target}: {added} seeds added, "
              f"{len(os.listdir(d))} in {d.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
