#!/usr/bin/python3
"""The authentik side: the event-forwarding policy, the webhook mappings and
the blueprints in configs/authentik/.

authentik itself cannot run here, so tests/authentik/akeval.py runs the
policy and mapping sources the way authentik's evaluator does (wrapped into
`def handler(...)`, exec'd with authentik's globals, the saved Event in
request.context["event"] of a notification rule's policy request, or
`notification` for a webhook mapping), with a real requests session, against
tests/authentik/restproxy.py: a loopback Kafka REST proxy that checks the
produce contract (POST /topics/{topic}, application/vnd.kafka.json.v2+json,
{"records": [{"key", "value"}]}) and answers like Confluent's v2 API.

  1. the policy compiles as authentik wraps it and has its settings on top;
  2. the exact HTTP request for a token event and for a non-token event;
  3. the record key for every event shape in tests/fixtures/events (the
     token's pk for token events, else the event's pk) and a value equal
     to the event as authentik's API renders it;
  4. no secret added or passed on (an event with uncleansed secrets);
  5. the action allow-list, the proxy credential (from the environment or
     inline), a slow proxy (the policy's timeout), an unreachable one,
     refusals (5xx, a record error inside a 200, an unknown topic), and a
     request without an event: every run returns False, nothing raises,
     failures are logged through ak_logger;
  6. the webhook mappings post the same records, and authentik's retry of a
     failed delivery (which the policy path does not have);
  7. both blueprints parse with authentik's tags and carry what each
     model's serializer requires; the service account gets exactly
     view_token and view_token_key;
  8. end to end: tokens are created, re-keyed, rotated and deleted in
     fake-authentik, the events it recorded go through the policy, the
     records the proxy captured are produced to mock-kafka, and the real
     worker writes the current keys into fake-vault;
  9. no captured output holds a token key, the proxy credential or a
     planted secret.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS / "lib"))
sys.path.insert(0, str(_TESTS / "authentik"))

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akeval  # noqa: E402
import akvtest  # noqa: E402
import blueprint as bp  # noqa: E402
import restproxy  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402

CONFIG = akvtest.REPO / "configs" / "authentik"
FIXTURES = Path(os.environ.get("AKV_FIXTURES") or
                akvtest.REPO / "tests" / "fixtures") / "events"
TOPIC = "authentik.events"
POLICY_NAME = "ak2vault-forward-events"
MASK = "********************"
API_ORDER = ["pk", "user", "action", "app", "context", "client_ip",
             "created", "expires", "brand"]
SETTINGS = ("PROXY_URL", "TOPIC", "TIMEOUT", "ACTIONS", "AUTH_HEADER",
            "AUTH_VALUE", "AUTH_VALUE_ENV")
CRED_ENV = "AK2VAULT_TEST_PROXY_AUTH"  # child_env() keeps it from children
# Every fixture, and what its record key must be: the token's pk, or the
# event's own pk ("event"). A new fixture must be added here.
TOKEN_PK = "8b03f2c1df9c4cabbb33602efade9ced"
KEYS = {
    "token_created.json": TOKEN_PK,
    "token_created_enterprise.json": TOKEN_PK,
    "token_created_no_expiry.json": TOKEN_PK,
    "token_updated.json": TOKEN_PK,
    "token_set_key_middleware.json": TOKEN_PK,
    "token_set_key_explicit.json": TOKEN_PK,
    "token_rotate.json": TOKEN_PK,       # context.token
    "token_view.json": TOKEN_PK,         # context.secret
    "token_deleted.json": TOKEN_PK,
    "token_rotate_managed_secret.json": "event",  # a crypto Secret
    "user_updated_intpk.json": "event",
    "oauth2_access_token_created.json": "event",
    "notificationrule_deleted.json": "event",
    "certificate_view.json": "event",
    "authorize_application.json": "event",
    "login.json": "event",
    "login_failed.json": "event",
    "custom_event.json": "event",
}

S = SimpleNamespace(rundir=None, proxy=None, session=None, logger_path=None,
                    records={}, stack=None)


def setup(rundir):
    S.rundir = rundir
    S.logger_path = rundir.file("ak_logger.log")
    S.proxy = restproxy.RestProxy(TOPIC, log_path=rundir.file(
        "restproxy.log"))
    S.session = akeval.TimeoutSession(default_timeout=5)
    os.environ.pop(CRED_ENV, None)


def teardown(rundir):
    os.environ.pop(CRED_ENV, None)
    if S.stack:
        S.stack.stop()
    if S.proxy:
        S.proxy.stop()


# ---------------------------------------------------------------------------
# Helpers


def source(name):
    return (CONFIG / name).read_text()


def configure(text, **settings):
    """The source with the given settings lines replaced, as an operator
    edits them; each must appear exactly once, at the start of a line."""
    for name, value in settings.items():
        pattern = re.compile(r"^%s = .*$" % re.escape(name), re.M)
        hits = pattern.findall(text)
        assert len(hits) == 1, "setting %s appears %d times" % (name,
                                                                len(hits))
        text = pattern.sub(lambda _: "%s = %r" % (name, value), text)
    return text


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def event_of(obj):
    return akeval.Event.from_api(obj)


def new_logger():
    return akeval.Logger(POLICY_NAME, S.logger_path)


def run_policy(event, logger=None, **settings):
    """Runs the policy for \\p event as a notification rule does; checks it
    returned exactly False without raising. @returns (requests it sent,
    logger)."""
    settings.setdefault("PROXY_URL", S.proxy.url)
    text = configure(source("forward-events-policy.py"), **settings)
    logger = logger or new_logger()
    before = len(S.proxy.requests)
    request = akeval.rule_request(event) if event is not None else \
        akeval.PolicyRequest(akeval.ANONYMOUS)
    result = akeval.evaluate_policy(text, request, POLICY_NAME, logger,
                                    S.session)
    assert result.error is None, "the policy raised %s: %s" % (
        type(result.error).__name__, result.error)
    assert result.raw_result is False and not result.passing, \
        "the policy returned %r (a notification would be sent)" % (
            result.raw_result,)
    assert not result.messages, "ak_message was called: %s" % result.messages
    return S.proxy.requests[before:], logger


def one_request(sent):
    assert len(sent) == 1, "%d requests sent, wanted 1" % len(sent)
    cap = sent[0]
    assert not cap.violations, "REST proxy contract broken: %s" % (
        "; ".join(cap.violations))
    return cap


def warnings(logger):
    return [(e, f) for lvl, e, f in logger.records if lvl == "warning"]


def leaves(value, name=None):
    """(name, leaf) for every non-container value, lists keeping their
    member's name."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, name)
    else:
        yield name, value


SENSITIVE = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE",
                       re.I)
EXEMPT = re.compile(r"passing|password_change_date|^auth_method(_args)?$",
                    re.I)


def unmasked(value):
    """Names of leaves under a sensitive name that are not masked."""
    return sorted({n for n, v in leaves(value) if isinstance(n, str) and
                   SENSITIVE.search(n) and not EXEMPT.search(n) and
                   v != MASK})


def show(title, cap):
    note("%s:" % title)
    for line in cap.render().splitlines():
        note("    " + line)


def policy_context_names():
    return ["ak_message", "ak_user_has_authenticator", "ak_is_sso_flow",
            "ak_client_ip", "request", "context"]


def mapping_context_names():
    return ["user", "request", "notification"]


def compile_as_authentik(text, names, filename):
    return compile(akeval.wrap_expression(text, dict.fromkeys(names)),
                   filename, "exec")


# ---------------------------------------------------------------------------
# 1. The source


def test_policy_compiles_as_authentik_wraps_it():
    text = source("forward-events-policy.py")
    compile_as_authentik(text, policy_context_names(), POLICY_NAME)
    head = text.split("\nimport ", 1)[0]
    for name in SETTINGS:
        assert re.search(r"^%s = " % name, head, re.M), \
            "setting %s is not among the settings on top" % name
    values = {}
    exec(compile("\n".join(l for l in head.splitlines()
                           if re.match(r"^[A-Z_]+ = ", l)), "settings",
                 "exec"), {}, values)
    assert values["TOPIC"] == TOPIC, "TOPIC is %r, configs/ak2vault.cfg " \
        "consumes %s" % (values["TOPIC"], TOPIC)
    assert 0 < values["TIMEOUT"] <= 5, "TIMEOUT %r is not short" % (
        values["TIMEOUT"],)
    assert values["ACTIONS"] is None, "the default must forward every event"
    assert values["AUTH_HEADER"] is None and values["AUTH_VALUE"] is None
    wrapped = akeval.wrap_expression(text, dict.fromkeys(
        policy_context_names()))
    note(wrapped.splitlines()[0])


# ---------------------------------------------------------------------------
# 2-3. Requests and keys


def test_token_event_exact_request():
    ev = fixture("token_created.json")
    sent, logger = run_policy(event_of(ev))
    cap = one_request(sent)
    show("the request for a token event (model_created of an API token)",
         cap)
    assert cap.method == "POST" and cap.path == "/topics/" + TOPIC
    assert cap.header("Content-Type") == restproxy.CONTENT_TYPE
    assert cap.header("Accept") == restproxy.ANSWER_TYPE
    assert (cap.header("User-Agent") or "").startswith("authentik@"), \
        "not sent with authentik's session"
    assert cap.status == 200
    assert cap.body == {"records": [{"key": TOKEN_PK, "value": ev}]}, \
        "record differs: %s" % cap.raw[:300]
    value = cap.body["records"][0]["value"]
    assert list(value) == API_ORDER, "members in order %s" % list(value)
    assert not warnings(logger), "warnings: %s" % warnings(logger)


def test_non_token_event_exact_request():
    ev = fixture("login.json")
    sent, _ = run_policy(event_of(ev))
    cap = one_request(sent)
    show("the request for a non-token event (login)", cap)
    assert cap.body == {"records": [{"key": ev["pk"], "value": ev}]}, \
        "record differs: %s" % cap.raw[:300]
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}",
                        cap.body["records"][0]["key"])


def test_key_and_value_for_every_fixture():
    names = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert set(names) == set(KEYS), "fixtures without an expected key: %s; " \
        "listed but missing: %s" % (sorted(set(names) - set(KEYS)),
                                    sorted(set(KEYS) - set(names)))
    bad = []
    for name in names:
        ev = fixture(name)
        cap = one_request(run_policy(event_of(ev))[0])
        rec = cap.body["records"][0]
        want = ev["pk"] if KEYS[name] == "event" else KEYS[name]
        if rec.get("key") != want:
            bad.append("%s: key %r, wanted %r" % (name, rec.get("key"), want))
        if rec["value"] != ev:
            bad.append("%s: value differs from the API rendering" % name)
        S.records[name] = rec
    assert not bad, "; ".join(bad)
    note("%d event shapes: %d keyed by token pk, %d by event pk" % (
        len(names), sum(1 for v in KEYS.values() if v != "event"),
        sum(1 for v in KEYS.values() if v == "event")))


# ---------------------------------------------------------------------------
# 4. Secrets


@depends("test_key_and_value_for_every_fixture")
def test_no_secret_added_or_passed_on():
    for name, rec in S.records.items():
        value = rec["value"]
        assert "key" not in value, "%s: the record has a key member" % name
        for ref in ("model", "token", "secret"):
            obj = value["context"].get(ref)
            if isinstance(obj, dict) and obj.get("model_name") == "token":
                assert set(obj) == {"pk", "app", "name", "model_name"}, \
                    "%s: context.%s has %s" % (name, ref, sorted(obj))
        assert not unmasked(value), "%s: unmasked %s" % (name,
                                                         unmasked(value))
    # An event whose context authentik did not cleanse (logout's
    # event_extra and with_exception write into it directly).
    planted = [akvtest.random_secret(40) for _ in range(4)]
    SECRETS.add_many("planted secret", planted)
    ev = fixture("custom_event.json")
    ev["context"]["event_extra"] = {"api_key": planted[0],
                                    "nested": {"client_secret": planted[1]}}
    ev["context"]["headers"] = [{"authorization": planted[2]},
                                {"x_session_token": planted[3]}]
    ev["context"]["auth_method"] = "password"
    cap = one_request(run_policy(event_of(ev))[0])
    raw = cap.raw.decode()
    leaked = [i for i, p in enumerate(planted) if p in raw]
    assert not leaked, "planted secrets %s reached the record" % leaked
    ctx = cap.body["records"][0]["value"]["context"]
    assert ctx["event_extra"] == {"api_key": MASK,
                                  "nested": {"client_secret": MASK}}
    assert ctx["headers"] == [{"authorization": MASK},
                              {"x_session_token": MASK}]
    assert ctx["auth_method"] == "password" and ctx["message"], \
        "cleansing masked more than authentik's rule"


# ---------------------------------------------------------------------------
# 5. Settings and failures


def test_action_allow_list():
    allow = ("model_created", "secret_rotate")
    sent = []
    for name in ("login.json", "token_updated.json", "token_created.json",
                 "token_rotate.json"):
        sent.append((name, run_policy(event_of(fixture(name)),
                                      ACTIONS=allow)[0]))
    counts = {n: len(s) for n, s in sent}
    assert counts == {"login.json": 0, "token_updated.json": 0,
                      "token_created.json": 1, "token_rotate.json": 1}, \
        "requests per event: %s" % counts


def test_proxy_credential():
    value = "Basic " + akvtest.random_secret(32)
    SECRETS.add("REST proxy credential", value)
    S.proxy.auth = ("Authorization", value)
    ev = event_of(fixture("token_rotate.json"))
    try:
        # From authentik worker's environment.
        os.environ[CRED_ENV] = value
        cap = one_request(run_policy(ev, AUTH_HEADER="Authorization",
                                     AUTH_VALUE_ENV=CRED_ENV)[0])
        assert cap.status == 200 and cap.header("Authorization") == value
        # Inline in the policy.
        os.environ.pop(CRED_ENV)
        cap = one_request(run_policy(ev, AUTH_HEADER="Authorization",
                                     AUTH_VALUE=value)[0])
        assert cap.status == 200
        # The variable is missing: nothing is sent, the cause is logged.
        sent, logger = run_policy(ev, AUTH_HEADER="Authorization",
                                  AUTH_VALUE_ENV=CRED_ENV)
        assert not sent, "sent without its credential"
        assert any("no value for the proxy credential" in e
                   for e, _ in warnings(logger)), logger.records
        # Not configured: the proxy refuses, the status is logged.
        sent, logger = run_policy(ev)
        assert len(sent) == 1 and sent[0].status == 401, \
            "without the credential: %s" % [c.status for c in sent]
        sent[0].violations.clear()  # wanted here
        assert [f.get("status") for _, f in warnings(logger)] == [401]
    finally:
        os.environ.pop(CRED_ENV, None)
        S.proxy.auth = None
    text = S.logger_path.read_text() if S.logger_path.exists() else ""
    assert value not in text, "the credential reached ak_logger's output"


def test_slow_proxy_times_out():
    ev = event_of(fixture("token_created.json"))
    S.proxy.delay = 3.0
    try:
        t0 = time.monotonic()
        sent, logger = run_policy(ev, TIMEOUT=0.5)
        short = time.monotonic() - t0
        t0 = time.monotonic()
        _, logger_default = run_policy(ev)  # the shipped TIMEOUT
        default = time.monotonic() - t0
    finally:
        S.proxy.delay = 0.0
    assert len(sent) == 1, "%d requests" % len(sent)
    assert short < 2.0, "TIMEOUT 0.5 returned after %.1fs" % short
    assert default < 2.9, "the default TIMEOUT returned after %.1fs" % (
        default)
    for lg in (logger, logger_default):
        w = warnings(lg)
        assert len(w) == 1 and "Timeout" in w[0][1].get("error", ""), \
            "logged: %s" % lg.records
        assert w[0][1].get("event_pk") == str(ev.pk)
    note("a proxy answering after 3 s: False after %.2fs (TIMEOUT 0.5) and "
         "%.2fs (default), logged %s" % (short, default,
                                         warnings(logger)[0][1]["error"]))


def test_unreachable_proxy():
    port = akvtest.free_port()
    t0 = time.monotonic()
    sent, logger = run_policy(event_of(fixture("token_created.json")),
                              PROXY_URL="http://127.0.0.1:%d" % port)
    took = time.monotonic() - t0
    assert not sent
    w = warnings(logger)
    assert len(w) == 1 and w[0][1].get("error") == "ConnectionError", \
        "logged: %s" % logger.records
    assert took < 2.0, "took %.1fs" % took


def test_proxy_refusals_are_logged():
    ev = event_of(fixture("token_created.json"))
    got = {}
    S.proxy.fail_next, S.proxy.fail_status = 1, 503
    _, lg = run_policy(ev)
    got["503"] = [(f.get("status"), f.get("error_code"))
                  for _, f in warnings(lg)]
    S.proxy.record_error = True
    try:
        _, lg = run_policy(ev)
    finally:
        S.proxy.record_error = False
    got["record error"] = [(f.get("status"), f.get("error_code"))
                           for _, f in warnings(lg)]
    before = len(S.proxy.requests)
    _, lg = run_policy(ev, TOPIC="no-such-topic")
    S.proxy.requests[before].violations.clear()  # wanted here
    got["unknown topic"] = [(f.get("status"), f.get("error_code"))
                            for _, f in warnings(lg)]
    assert got == {"503": [(503, 50301)], "record error": [(200, 50003)],
                   "unknown topic": [(404, 40401)]}, "logged: %s" % got


def test_no_event_in_the_request():
    sent, logger = run_policy(None)
    assert not sent, "%d requests without an event" % len(sent)
    assert [lvl for lvl, _, _ in logger.records] == ["info"], \
        "logged: %s" % logger.records


# ---------------------------------------------------------------------------
# 6. The webhook path


def send_webhook(event, logger=None):
    note_user = akeval.User(7, "ak2vault", "")
    notification = akeval.Notification(event, note_user)
    return akeval.send_webhook(
        S.proxy.url + "/topics/" + TOPIC,
        source("webhook-body-mapping.py"),
        source("webhook-headers-mapping.py"), notification,
        logger or new_logger(), S.session)


@depends("test_key_and_value_for_every_fixture")
def test_webhook_mappings_post_the_same_records():
    for text, name in ((source("webhook-body-mapping.py"), "body"),
                       (source("webhook-headers-mapping.py"), "headers")):
        compile_as_authentik(text, mapping_context_names(), name)
    bad = []
    for name in sorted(S.records):
        before = len(S.proxy.requests)
        status, _ = send_webhook(event_of(fixture(name)))
        cap = one_request(S.proxy.requests[before:])
        if status != 200 or cap.body != {"records": [S.records[name]]}:
            bad.append(name)
        if name == "token_rotate.json":
            show("the webhook transport's request for secret_rotate", cap)
    assert not bad, "the webhook records differ from the policy's for %s" % (
        bad)


@depends("test_webhook_mappings_post_the_same_records")
def test_webhook_header_mapping_credential():
    value = "Bearer " + akvtest.random_secret(32)
    SECRETS.add("REST proxy credential", value)
    S.proxy.auth = ("Authorization", value)
    os.environ[CRED_ENV] = value
    try:
        headers = configure(source("webhook-headers-mapping.py"),
                            AUTH_HEADER="Authorization",
                            AUTH_VALUE_ENV=CRED_ENV)
        before = len(S.proxy.requests)
        notification = akeval.Notification(
            event_of(fixture("token_created.json")), akeval.User(7))
        akeval.send_webhook(S.proxy.url + "/topics/" + TOPIC,
                            source("webhook-body-mapping.py"), headers,
                            notification, new_logger(), S.session)
        cap = one_request(S.proxy.requests[before:])
        assert cap.status == 200
    finally:
        os.environ.pop(CRED_ENV, None)
        S.proxy.auth = None


@depends("test_webhook_mappings_post_the_same_records")
def test_webhook_is_retried_the_policy_is_not():
    ev = event_of(fixture("token_rotate.json"))
    S.proxy.fail_next, S.proxy.fail_status = 1, 503
    sent, _ = run_policy(ev)
    policy_delivered = sum(1 for c in sent if c.status == 200)
    before = len(S.proxy.requests)
    S.proxy.fail_next = 1
    attempts = akeval.deliver(lambda: send_webhook(ev))
    statuses = [c.status for c in S.proxy.requests[before:]]
    assert policy_delivered == 0 and [c.status for c in sent] == [503]
    assert attempts == 2 and statuses == [503, 200], \
        "webhook attempts %d, answers %s" % (attempts, statuses)
    note("one 503 from the proxy: the policy's record is lost (logged); "
         "the webhook transport delivers it on its retry")


def test_webhook_rule_policy_filters():
    text = source("webhook-rule-policy.py")
    compile_as_authentik(text, policy_context_names(), "rule")
    logger = new_logger()

    def passes(ev, **settings):
        req = akeval.rule_request(ev) if ev else akeval.PolicyRequest(
            akeval.ANONYMOUS)
        res = akeval.evaluate_policy(configure(text, **settings), req,
                                     "ak2vault-webhook-events", logger,
                                     S.session)
        assert res.error is None, res.error
        return res.passing
    login = event_of(fixture("login.json"))
    rotate = event_of(fixture("token_rotate.json"))
    got = (passes(login), passes(rotate),
           passes(login, ACTIONS=("secret_rotate",)),
           passes(rotate, ACTIONS=("secret_rotate",)), passes(None))
    assert got == (True, True, False, True, False), got


# ---------------------------------------------------------------------------
# 7. Blueprints


def load_blueprint(name):
    return bp.load((CONFIG / name).read_text())


def file_tags(doc):
    return [t for t in bp.walk_tags(doc.get("entries")) if t.name == "!File"]


def test_blueprints_parse_with_authentiks_tags():
    problems = []
    for name in ("blueprint.yaml", "blueprint-webhook.yaml"):
        doc = load_blueprint(name)
        problems += ["%s: %s" % (name, p) for p in bp.check(doc)]
        for tag in file_tags(doc):
            path = tag.value if isinstance(tag.value, str) else None
            if not path or not path.startswith("/blueprints/ak2vault/"):
                problems.append("%s: !File %r is not under "
                                "/blueprints/ak2vault/" % (name, tag.value))
                continue
            local = CONFIG / path[len("/blueprints/ak2vault/"):]
            if not local.is_file():
                problems.append("%s: !File %s: no %s" % (name, path, local))
                continue
            names = mapping_context_names() if "mapping" in local.name \
                else policy_context_names()
            try:
                compile_as_authentik(local.read_text(), names, local.name)
            except SyntaxError as e:
                problems.append("%s: %s does not compile: %s" % (
                    name, local.name, e))
    assert not problems, "; ".join(problems)
    main = load_blueprint("blueprint.yaml")
    hook = load_blueprint("blueprint-webhook.yaml")
    labels = (main["metadata"].get("labels") or {},
              hook["metadata"].get("labels") or {})
    assert labels[0].get("blueprints.goauthentik.io/instantiate",
                         "true") != "false", "blueprint.yaml must apply"
    assert labels[1].get("blueprints.goauthentik.io/instantiate") == \
        "false", "blueprint-webhook.yaml must not apply by itself"


def keyof(value):
    return value.value if isinstance(value, bp.Tag) and \
        value.name == "!KeyOf" else None


def test_blueprint_grants_the_worker_exactly_token_read():
    doc = load_blueprint("blueprint.yaml")
    users = bp.find(doc, "authentik_core.user")
    assert len(users) == 1, "%d users" % len(users)
    user = users[0]
    attrs = user.get("attrs") or {}
    assert attrs.get("type") == "service_account"
    assert attrs.get("path") == "goauthentik.io/service-accounts"
    assert "password" not in attrs and "permissions" not in attrs, \
        "the account gets no password and no direct permissions"
    roles = bp.find(doc, "authentik_rbac.role")
    assert len(roles) == 1
    perms = (roles[0].get("attrs") or {}).get("permissions")
    assert sorted(perms) == ["authentik_core.view_token",
                             "authentik_core.view_token_key"], perms
    granting = [g for g in bp.find(doc, "authentik_core.group")
                if (g.get("attrs") or {}).get("roles")]
    assert len(granting) == 1, "%d groups hold roles" % len(granting)
    g = granting[0]["attrs"]
    assert [keyof(r) for r in g["roles"]] == [roles[0]["id"]]
    assert [keyof(u) for u in g["users"]] == [user["id"]]
    assert g.get("is_superuser") is False
    for e in bp.entries(doc):
        assert not (e.get("attrs") or {}).get("is_superuser"), \
            "%s grants superuser" % e.get("identifiers")
        assert not e.get("permissions"), "object permissions in %s" % (
            e.get("identifiers"))
    tokens = bp.find(doc, "authentik_core.token")
    assert len(tokens) == 1
    t = tokens[0]["attrs"]
    assert keyof(t["user"]) == user["id"] and t["intent"] == "api"
    assert t.get("expiring") is False, "authentik rotates expiring API " \
        "tokens daily"
    assert "key" not in t, "a token key must not live in the blueprint"


def test_blueprints_wire_rule_policy_and_binding():
    doc = load_blueprint("blueprint.yaml")
    rule = bp.find(doc, "authentik_events.notificationrule")
    policy = bp.find(doc, "authentik_policies_expression.expressionpolicy")
    binding = bp.find(doc, "authentik_policies.policybinding")
    assert len(rule) == len(policy) == len(binding) == 1
    rule, policy, binding = rule[0], policy[0], binding[0]
    assert policy["attrs"]["expression"].name == "!File" and \
        policy["attrs"]["expression"].value.endswith(
            "/forward-events-policy.py")
    assert keyof(binding["identifiers"]["target"]) == rule["id"]
    assert keyof(binding["identifiers"]["policy"]) == policy["id"]
    group = bp.by_id(doc, keyof(rule["attrs"]["destination_group"]))
    assert group and keyof(rule["attrs"]["group"]) == group["id"]
    assert not (group.get("attrs") or {}).get("users"), \
        "the policy path needs no recipients"
    # The four entries of the policy path switch off together.
    for e in (rule, policy, binding, group):
        cond = e.get("conditions") or []
        assert len(cond) == 1 and cond[0].name == "!Context" and \
            cond[0].value == ["forward_with_policy", True], \
            "%s: conditions %s" % (e.get("identifiers"), cond)
    hook = load_blueprint("blueprint-webhook.yaml")
    tr = bp.find(hook, "authentik_events.notificationtransport")[0]["attrs"]
    assert tr["mode"] == "webhook" and tr["send_once"] is True
    url = tr["webhook_url"]
    assert url.name == "!Context" and url.value[1].endswith(
        "/topics/" + TOPIC)
    mappings = {e["id"]: e for e in bp.find(
        hook, "authentik_events.notificationwebhookmapping")}
    assert mappings[keyof(tr["webhook_mapping_body"])]["attrs"][
        "expression"].value.endswith("/webhook-body-mapping.py")
    assert mappings[keyof(tr["webhook_mapping_headers"])]["attrs"][
        "expression"].value.endswith("/webhook-headers-mapping.py")
    hrule = bp.find(hook, "authentik_events.notificationrule")[0]
    recipients = bp.by_id(hook, keyof(hrule["attrs"]["destination_group"]))
    users = recipients["attrs"]["users"]
    assert len(users) == 1 and users[0].name == "!Find", \
        "the webhook rule needs exactly one recipient"


# ---------------------------------------------------------------------------
# 8. End to end


def kafka_partition(key, partitions=4):
    return zlib.crc32(key.encode()) % partitions


@depends("test_token_event_exact_request", "test_key_and_value_for_every_"
         "fixture")
def test_end_to_end_policy_to_vault():
    # fake-authentik records its events on a topic of its own; the workers'
    # topic gets only what went through the policy and the proxy.
    st = S.stack = akvtest.Stack(S.rundir.sub("e2e"), partitions=2,
                                 topic="authentik.recorded",
                                 topics=("%s:4" % TOPIC,))
    st.create_token("policy-api", intent="api", description="via policy")
    st.create_token("policy-app", intent="app_password", expiring=False)
    st.create_token("policy-rot", intent="api")
    st.create_token("policy-gone", intent="api")
    st.set_key("policy-api", "pol" + akvtest.random_secret(45))
    st.rotate("policy-rot")
    st.delete_token("policy-gone")
    live = st.live_tokens()
    assert sorted(live) == ["policy-api", "policy-app", "policy-rot"]

    recorded = akvtest.kcat_consume(st.brokers, "authentik.recorded",
                                    st.rundir, name="kcat-recorded")
    recorded.sort(key=lambda r: json.loads(r["value"])["created"])
    events = [fixture("login.json"), fixture("authorize_application.json")]
    events += [json.loads(r["value"]) for r in recorded]
    assert len(recorded) == 8, "fake-authentik recorded %d events" % len(
        recorded)
    before = len(S.proxy.requests)
    for ev in events:
        run_policy(event_of(ev))
    caps = S.proxy.requests[before:]
    assert len(caps) == len(events) and all(
        c.status == 200 and not c.violations for c in caps), \
        "answers: %s" % [(c.status, c.violations) for c in caps]
    records = [c.body["records"][0] for c in caps]
    # The policy keys each event as fake-authentik keyed it.
    fake_keys = [r["key"] for r in recorded]
    assert [r["key"] for r in records[2:]] == fake_keys, \
        "keys differ from fake-authentik's"
    assert [r["value"] for r in records] == events
    # A JSON REST proxy writes key and value as JSON text.
    produce = [(kafka_partition(r["key"]), json.dumps(r["key"]),
                json.dumps(r["value"], separators=(",", ":")))
               for r in records]
    akvtest.kcat_produce_many(st.brokers, TOPIC, produce, st.rundir,
                              name="kcat-policy")
    w = st.start_worker("worker-policy", "ak2vault-policy", exit_at_end=True,
                        extra={"kafka": {"topic": TOPIC,
                                         "session_timeout_ms": 6000},
                               "sync": {"retry_initial_ms": 50,
                                        "retry_max_ms": 1000}})
    rc = w.wait(60)
    if rc is None:
        w.stop(5)
        raise AssertionError("the worker did not reach the end in 60s")
    assert rc == 0, "worker exited %d: %s" % (rc, w.stderr_tail(3))
    stats = akvtest.final_stats(w.stderr_text())
    assert stats, "no final stats line"
    want = {"consumed": 10, "skipped": 2, "matched": 8, "poison": 0,
            "written": 3}
    got = {k: stats[k] for k in want}
    assert got == want, "stats %s, wanted %s" % (got, want)
    current = st.vault_current()
    live = st.live_tokens()
    bad = [i for i, t in live.items() if current.get(i, (0, None))[1] !=
           {"key": t["key"], "intent": t["intent"]}]
    assert not bad, "Vault differs from authentik for %s" % bad
    assert "policy-gone" not in current
    note("%d events (8 from fake-authentik, 2 fixtures) -> policy -> REST "
         "proxy -> mock-kafka -> worker: %s; Vault holds the current key "
         "of %s" % (len(events), got, sorted(live)))


# ---------------------------------------------------------------------------
# 9. Secrets in the output


def test_no_secret_in_any_output():
    # Everything the REST proxy received, as one file.
    with open(S.rundir.file("restproxy-bodies.log"), "wb") as f:
        for c in S.proxy.requests:
            f.write(c.raw + b"\n")
    found = akvtest.scan_for_secrets(S.rundir.logs())
    assert not found, "secrets found: %s" % ", ".join(
        "%s in %s (%d)" % (k, Path(p).name, n) for p, k, n in found)
    kinds = SECRETS.kinds()
    assert kinds.get("token key") and kinds.get("REST proxy credential") \
        and kinds.get("planted secret"), "nothing to look for: %s" % kinds
    assert not S.proxy.violations(), "contract violations: %s" % (
        S.proxy.violations()[:5])
    note("scanned %d files for %s" % (len(S.rundir.logs()), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "authentik-policy", setup=setup,
                      teardown=teardown)
