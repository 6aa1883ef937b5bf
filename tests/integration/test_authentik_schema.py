#!/usr/bin/env python3
"""fake-authentik held to authentik's own published schema.

authentik publishes its API client, generated from its OpenAPI schema, as
authentik-client on PyPI (pinned in tests/authentik/requirements.txt;
`make venv` installs it into build/venv; `make test` does). Started by
another interpreter, the script runs itself again with build/venv's.

Against a running fake-authentik (and a second one with --enterprise, whose
events carry the audit middleware's diff), every answer under /api/v3 and
every event it publishes to Kafka is loaded into the matching model
STRICTLY (tests/authentik/schemastrict.py): no key the model lacks, every
required key, nullable only where the schema says so, every value of the
declared type, and then the model's own validation.

  1. token answers: create (201), detail, PATCH and PUT (200), view_key
     (TokenView), set_key and delete (204, no body);
  2. list pages (PaginatedTokenList): first, middle and last page,
     page=last, a filter with no match (count 0), search;
  3. error answers (the models the operations declare, else GenericError,
     DRF's {"detail"}): 400 (field errors, a body that is not an object,
     malformed JSON, set_key without a key: no body, as declared), 401 and
     403 (no credentials, a wrong token, the deny_status fault), 404 (an
     unknown token on each route, an invalid page, an unknown path), 405,
     and the JSON bodies of injected 429, 500 and 503;
  4. every event read back with kcat against Event (model_created,
     model_updated, model_deleted, secret_view, secret_rotate), with and
     without --enterprise; the schema defines user, context and brand as
     free-form objects, so only their being objects is checked there;
  5. each check refuses deliberate mistakes: every recorded answer and
     event mutated in memory (an unknown key, each required key missing,
     each value of a wrong type, null where not nullable, the same one
     level down) must be refused;
  6. no key or API token in any output.

Failures name fields and types, never values.
"""
import os
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE.parents[1] / "build" / "venv" / "bin" / "python"
if sys.prefix == sys.base_prefix:
    # Not in a virtual environment: authentik-client lives in build/venv.
    if not VENV_PYTHON.exists():
        print("not ok - test_authentik_schema: %s is missing: run `make "
              "venv` (make test does)" % VENV_PYTHON)
        print("0 passed, 1 failed")
        sys.exit(1)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE.parent / "authentik"))

import json  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note  # noqa: E402

try:
    from authentik_client import models as M  # noqa: E402
except ImportError:
    print("not ok - test_authentik_schema: authentik-client is not in %s: "
          "run `make venv`" % sys.prefix)
    print("0 passed, 1 failed")
    sys.exit(1)
import schemastrict  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, ent=None, ent_url=None,
                    recorded=[], checked=0)
TOKENS = "/api/v3/core/tokens/"
ENT_TOPIC = "authentik.events.enterprise"
EVENT_ACTIONS = {"model_created", "model_updated", "model_deleted",
                 "secret_view", "secret_rotate"}


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    if S.stack:
        S.stack.stop()


def record(label, model, status, body, want_status):
    """Checks one answer strictly and keeps it for the mutation test."""
    assert status == want_status, "%s: HTTP %s, wanted %s" % (
        label, status, want_status)
    schemastrict.require(model, body, "%s (%s)" % (label, model.__name__))
    S.recorded.append((label, model, body))
    S.checked += 1
    return body


def no_body(label, status, body, want_status):
    assert status == want_status, "%s: HTTP %s, wanted %s" % (
        label, status, want_status)
    assert body is None, "%s: a %s body where the schema declares none" % (
        label, schemastrict.json_type(body))
    S.checked += 1


def ak(method, path, body=None, url=None, token=True, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + S.stack.authentik_token
    return akvtest.http_json(method, (url or S.stack.authentik_url) + path,
                             body, headers=h)


def raw(method, path, data, url=None):
    """A request with a raw body (not JSON-encoded by the harness)."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request((url or S.stack.authentik_url) + path,
                                 data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Bearer " + S.stack.authentik_token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=15) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, json.loads(text) if text else None


def test_stack_starts():
    S.stack = akvtest.Stack(S.rundir, partitions=1,
                            topics=["%s:1" % ENT_TOPIC])
    ent = akvtest.Proc("fake-authentik-enterprise", [
        akvtest.binary("fake-authentik"), "--listen", "127.0.0.1:0",
        "--brokers", S.stack.brokers, "--topic", ENT_TOPIC, "--enterprise"],
        S.rundir, env={"AUTHENTIK_API_TOKEN": S.stack.authentik_token},
        address_line=True)
    S.ent = ent
    S.ent_url = "http://" + ent.address


def _token_answers(url, prefix):
    """Creates, reads, changes and deletes tokens on one fake-authentik."""
    created = [
        ({"identifier": prefix + "api-a", "intent": "api",
          "description": "an API token", "expiring": True}, "api"),
        ({"identifier": prefix + "app-never", "intent": "app_password",
          "description": "", "expiring": False, "expires": None},
         "app_password, not expiring, expires null"),
        ({"identifier": prefix + "app-soon", "intent": "app_password",
          "expires": "2020-01-01T00:00:00Z"}, "app_password, expires set"),
        ({"identifier": prefix + "minimal"}, "identifier only"),
    ]
    for body, what in created:
        st, out = ak("POST", TOKENS, body, url=url)
        record("create (%s)" % what, M.Token, st, out, 201)
    ident = prefix + "api-a"
    st, out = ak("GET", TOKENS + ident + "/", url=url)
    record("detail", M.Token, st, out, 200)
    st, out = ak("PATCH", TOKENS + ident + "/",
                 {"description": "patched", "intent": "app_password",
                  "expires": None, "expiring": False}, url=url)
    record("PATCH (to app_password, never expiring)", M.Token, st, out, 200)
    st, out = ak("PUT", TOKENS + ident + "/",
                 {"identifier": ident, "intent": "api",
                  "description": "put"}, url=url)
    record("PUT", M.Token, st, out, 200)
    st, out = ak("GET", TOKENS + ident + "/view_key/", url=url)
    if isinstance(out, dict) and isinstance(out.get("key"), str):
        SECRETS.add("token key", out["key"])
    record("view_key", M.TokenView, st, out, 200)
    key = akvtest.random_secret(40)
    SECRETS.add("token key", key)
    st, out = ak("POST", TOKENS + ident + "/set_key/", {"key": key},
                 url=url)
    no_body("set_key", st, out, 204)
    st, out = akvtest.http_json("POST", url + "/_fake/tokens/%s/rotate" %
                                (prefix + "minimal"))
    assert st == 200, "rotate: HTTP %s" % st
    schemastrict.require(M.Token, out, "rotate's answer (Token)")
    st, out = ak("DELETE", TOKENS + prefix + "app-soon/", url=url)
    no_body("delete", st, out, 204)


@depends("test_stack_starts")
def test_token_answers_match_schema():
    _token_answers(S.stack.authentik_url, "s-")
    _token_answers(S.ent_url, "e-")
    S.stack.live_tokens()  # every key is a secret for the scan


@depends("test_token_answers_match_schema")
def test_list_pages_match_schema():
    for i in range(5):
        st, out = ak("POST", TOKENS, {"identifier": "page-%02d" % i,
                                      "intent": "app_password",
                                      "expiring": i % 2 == 0})
        assert st == 201, "create page-%02d: HTTP %s" % (i, st)
    st, out = ak("GET", TOKENS)
    record("list, default page size", M.PaginatedTokenList, st, out, 200)
    total = out["pagination"]["count"]
    assert total >= 8, "only %d tokens" % total
    size = 3
    pages = (total + size - 1) // size
    assert pages >= 3, "%d pages" % pages
    for page, what in ((1, "first"), (2, "middle"), (pages, "last")):
        st, out = ak("GET", TOKENS + "?page=%d&page_size=%d" % (page, size))
        record("list, %s page" % what, M.PaginatedTokenList, st, out, 200)
        p = out["pagination"]
        assert p["current"] == page and len(out["results"]) > 0, \
            "%s page: current %s, %d results" % (what, p["current"],
                                                 len(out["results"]))
    st, out = ak("GET", TOKENS + "?page=last&page_size=%d" % size)
    record("list, page=last", M.PaginatedTokenList, st, out, 200)
    st, out = ak("GET", TOKENS + "?identifier=no-such-token")
    record("list, no match", M.PaginatedTokenList, st, out, 200)
    assert out["pagination"]["count"] == 0 and out["results"] == [], \
        "no match: count %s" % out["pagination"]["count"]
    st, out = ak("GET", TOKENS + "?search=PAGE&expiring=false")
    record("list, search and filter", M.PaginatedTokenList, st, out, 200)


@depends("test_list_pages_match_schema")
def test_error_answers_match_schema():
    VE, GE = M.ValidationError, M.GenericError
    # 400: the operations declare ValidationError
    st, out = ak("POST", TOKENS, {"description": "no identifier"})
    record("create without identifier", VE, st, out, 400)
    st, out = ak("POST", TOKENS, {"identifier": "not a slug",
                                  "expires": "soon", "expiring": "maybe"})
    record("create with bad fields", VE, st, out, 400)
    st, out = ak("POST", TOKENS, {"identifier": "api-a-dup"})
    st, out = ak("POST", TOKENS, {"identifier": "api-a-dup"})
    record("create, identifier taken", VE, st, out, 400)
    st, out = ak("PATCH", TOKENS + "s-api-a/", {"intent": "recovery"})
    record("PATCH with a refused intent", VE, st, out, 400)
    st, out = raw("POST", TOKENS, b"[1, 2]")
    record("create with a list body", VE, st, out, 400)
    assert "non_field_errors" in out, "no non_field_errors"
    st, out = raw("POST", TOKENS, b"{not json")
    record("create with malformed JSON", VE, st, out, 400)
    st, out = ak("POST", TOKENS + "s-api-a/set_key/", {"key": ""})
    no_body("set_key without a key", st, out, 400)
    # 403 and 401: GenericError
    st, out = ak("GET", TOKENS, token=False)
    record("no credentials", GE, st, out, 403)
    st, out = ak("GET", TOKENS, token=False,
                 headers={"Authorization": "Bearer wrong"})
    record("a wrong API token", GE, st, out, 403)
    for status in (401, 403):
        S.stack.authentik_faults({"deny_status": status})
        try:
            st, out = ak("GET", TOKENS + "s-api-a/")
        finally:
            S.stack.authentik_faults({})
        record("deny_status %d" % status, GE, st, out, status)
    # 404
    for method, path in (("GET", "nope/"), ("GET", "nope/view_key/"),
                         ("POST", "nope/set_key/"), ("DELETE", "nope/"),
                         ("PATCH", "nope/")):
        body = {"key": "k"} if path.endswith("set_key/") else \
            ({} if method == "PATCH" else None)
        st, out = ak(method, TOKENS + path, body)
        record("%s unknown token %s" % (method, path), GE, st, out, 404)
    st, out = ak("GET", TOKENS + "?page=999")
    record("list, invalid page", GE, st, out, 404)
    st, out = ak("GET", "/api/v3/core/nothing/")
    record("unknown path", GE, st, out, 404)
    # 405
    for method, path in (("PUT", ""), ("POST", "s-api-a/view_key/"),
                         ("GET", "s-api-a/set_key/"), ("POST", "s-api-a/")):
        st, out = ak(method, TOKENS + path, {} if method != "GET" else None)
        record("%s %s" % (method, path or "list"), GE, st, out, 405)
    # injected faults with DRF's JSON body
    for status in (429, 500, 503):
        S.stack.authentik_faults({"error_rates": {str(status): 1.0},
                                  "retry_after": "2"})
        try:
            st, out = ak("GET", TOKENS + "s-api-a/")
        finally:
            S.stack.authentik_faults({})
        record("injected %d" % status, GE, st, out, status)


def _events(topic):
    recs = akvtest.kcat_consume(S.stack.brokers, topic, S.rundir,
                                name="kcat-" + topic)
    assert recs, "no events on %s" % topic
    out = []
    for r in recs:
        try:
            out.append(json.loads(r["value"]))
        except (TypeError, ValueError):
            raise AssertionError("%s offset %d: not JSON" % (
                topic, r["offset"])) from None
    return out


@depends("test_error_answers_match_schema")
def test_events_match_schema():
    seen = {}
    for topic, label in ((S.stack.topic, "event"), (ENT_TOPIC,
                                                   "enterprise event")):
        for i, ev in enumerate(_events(topic)):
            action = ev.get("action") if isinstance(ev, dict) else None
            where = "%s %d (%s)" % (label, i, action)
            schemastrict.require(M.Event, ev, where)
            S.checked += 1
            key = (label, action, "diff" in (ev.get("context") or {}))
            if key not in seen:
                seen[key] = ev
                S.recorded.append((where, M.Event, ev))
    actions = {a for (_, a, _) in seen}
    missing = EVENT_ACTIONS - actions
    assert not missing, "no %s event seen" % ", ".join(sorted(missing))
    assert any(d for (_, _, d) in seen), "no event with an audit diff"
    note("events checked: %s" % ", ".join(
        "%s %s%s" % (lbl, a, " +diff" if d else "")
        for (lbl, a, d) in sorted(seen)))


@depends("test_events_match_schema")
def test_checks_refuse_deliberate_mistakes():
    total = 0
    kinds = set()
    for label, model, body in S.recorded:
        for what, bad in schemastrict.mutations(model, body):
            total += 1
            kinds.add(what.split(": ")[-1].split(" ", 1)[-1])
            if not schemastrict.problems(model, bad):
                raise AssertionError("%s: accepted with %s" % (label, what))
    # the lenient model alone would have let some of them through
    lenient = 0
    for label, model, body in S.recorded:
        for what, bad in schemastrict.mutations(model, body):
            try:
                model.from_dict(bad)
                lenient += 1
            except Exception:  # noqa: BLE001
                pass
    assert total > 100, "only %d mutations" % total
    note("%d mutations of %d recorded answers and events refused (%d of "
         "them the generated models alone accept)" % (
             total, len(S.recorded), lenient))
    note("%d answers and events checked strictly" % S.checked)


def test_no_secret_in_any_output():
    akvtest.stop_all()
    akvtest.assert_no_secrets(S.rundir.logs())


if __name__ == "__main__":
    akvtest.run_tests(globals(), "authentik_schema", setup=setup,
                      teardown=teardown)
