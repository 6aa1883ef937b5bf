#!/usr/bin/env python3
"""Writes tests/fixtures/authentik-schema/: token detail, list page and
view_key bodies covering the shapes authentik's published schema allows
(authentik-client's Token, PaginatedTokenList and TokenView), each checked
strictly against its model (tests/authentik/schemastrict.py) before it is
written. tests/unit/test_authentik.c feeds every file to the worker's
parsers, without the venv.

  build/venv/bin/python tests/authentik/gen_schema_fixtures.py [--check]

--check writes nothing and fails when a committed file differs from what
would be generated (or is missing, or is left over).

File names say what the worker must do: detail-*, list-* and view_key-*
must be accepted; refused-detail-* are bodies the schema allows that the
worker refuses on purpose (no intent: the worker cannot tell what to write
to Vault; authentik itself always sends it).
"""
import copy
import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from authentik_client import models as M  # noqa: E402

import schemastrict  # noqa: E402

OUT = HERE.parent / "fixtures" / "authentik-schema"

GROUP = {"pk": "7a3c9e51-2b4d-4e6f-9a8b-1c2d3e4f5a6b", "num_pk": 18245,
         "name": "authentik Admins", "is_superuser": True, "attributes": {}}
USER_FULL = {
    "pk": 4, "username": "akadmin", "name": "authentik Default Admin",
    "is_active": True, "last_login": "2026-05-01T08:00:00.5Z",
    "date_joined": "2026-01-05T09:30:12.345678Z", "is_superuser": True,
    "groups": [GROUP["pk"]], "groups_obj": [GROUP],
    "roles": ["3f2e1d0c-9b8a-4765-8432-10fedcba9876"],
    "roles_obj": [{"pk": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
                   "name": "token readers"}],
    "email": "admin@example.com",
    "avatar": "/static/dist/assets/images/user_default.png",
    "attributes": {"settings": {"locale": "de"}, "tags": ["a", 1, None]},
    "uid": "5e1a8f7bd0c34c7a9a0e4b7f3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "path": "users", "type": "internal",
    "uuid": "0f6a1b2c-3d4e-4f50-8a61-72b3c4d5e6f7",
    "password_change_date": "2026-01-05T09:30:12.345678Z",
    "last_updated": "2026-06-01T12:00:00+02:00",
}
# Only what components.User requires, nullable ones null.
USER_MINIMAL = {k: USER_FULL[k] for k in (
    "pk", "username", "name", "date_joined", "is_superuser", "avatar", "uid",
    "uuid", "password_change_date", "last_updated")}
USER_MINIMAL.update(groups_obj=None, roles_obj=None)
USER_SERVICE = dict(USER_FULL, pk=17, username="ak2vault-worker",
                    name="", type="service_account", email="",
                    last_login=None, groups=[], groups_obj=[], roles=[],
                    roles_obj=[], is_superuser=False, is_active=False,
                    attributes={}, path="goauthentik.io/service-accounts")

TOKEN = {
    "pk": "8b03f2c1-df9c-4cab-bb33-602efade9ced", "managed": None,
    "identifier": "deploy-bot-api", "intent": "api", "user": 4,
    "user_obj": USER_FULL, "description": "Vault sync test token",
    "expires": "2026-04-22T09:12:00.412345Z", "expiring": True,
}


def token(**kw):
    t = copy.deepcopy(TOKEN)
    for k, v in kw.items():
        if v is OMIT:
            t.pop(k, None)
        else:
            t[k] = v
    return t


OMIT = object()

DETAILS = {
    "full": token(),
    "expires-null-not-expiring": token(
        identifier="never-expires", intent="app_password", expires=None,
        expiring=False),
    "description-empty": token(identifier="no-words", description=""),
    "description-unicode": token(identifier="umlaut",
                                 description="Schl\u00fcssel \u2603 \"q\""),
    "managed": token(identifier="managed-one",
                     managed="goauthentik.io/token/outpost"),
    "user-obj-minimal": token(identifier="minimal-user",
                              user_obj=USER_MINIMAL),
    "user-obj-service-account": token(identifier="service-user", user=17,
                                      user_obj=USER_SERVICE),
    "intent-verification": token(identifier="verify-1",
                                 intent="verification", expires=None),
    "intent-recovery": token(identifier="recover-1", intent="recovery"),
    "expires-offset": token(identifier="offset-date",
                            expires="2026-04-22T11:12:00+02:00"),
    "identifier-255": token(identifier="a-" + "b" * 253),
    # Only the required properties (pk, identifier, user_obj) and intent.
    "optional-omitted": token(identifier="sparse", managed=OMIT, user=OMIT,
                              description=OMIT, expires=OMIT,
                              expiring=OMIT),
}
REFUSED_DETAILS = {
    "intent-omitted": token(identifier="no-intent", intent=OMIT),
}


def page(results, count, current, size, total_pages):
    start = 0 if count == 0 else (current - 1) * size + 1
    return {"pagination": {
        "next": current + 1 if current < total_pages else 0,
        "previous": current - 1 if current > 1 else 0,
        "count": count, "current": current, "total_pages": total_pages,
        "start_index": start,
        "end_index": count if current == total_pages else current * size},
        "results": results, "autocomplete": {}}


_all = list(DETAILS.values())
LISTS = {
    "first-page": page(_all[0:3], 8, 1, 3, 3),
    "middle-page": page(_all[3:6], 8, 2, 3, 3),
    "last-page": page(_all[6:8], 8, 3, 3, 3),
    "only-page": page(_all, len(_all), 1, 20, 1),
    "empty": page([], 0, 1, 20, 1),
}
# The schema types pagination numbers as "number": 2.0 is one.
_floats = page(_all[0:2], 5, 2, 2, 3)
_floats["pagination"] = {k: float(v) for k, v in
                         _floats["pagination"].items()}
LISTS["numbers-as-floats"] = _floats
_ac = page(_all[0:1], 1, 1, 20, 1)
_ac["autocomplete"] = {"identifier": ["deploy-bot-api"], "n": 1}
LISTS["autocomplete-filled"] = _ac

VIEW_KEYS = {
    "plain": {"key": "v3ryS3cretK3yF0rT3sts0nly1234567890abcdefghijklmnopqrst"},
    "unicode": {"key": "cl\u00e9-\u2603-\U0001f511"},
    "escapes": {"key": "a\"b\\c/d\te"},
    "one-char": {"key": "x"},
}


def files():
    out = {}
    for name, body in DETAILS.items():
        out["detail-%s.json" % name] = (M.Token, body)
    for name, body in REFUSED_DETAILS.items():
        out["refused-detail-%s.json" % name] = (M.Token, body)
    for name, body in LISTS.items():
        out["list-%s.json" % name] = (M.PaginatedTokenList, body)
    for name, body in VIEW_KEYS.items():
        out["view_key-%s.json" % name] = (M.TokenView, body)
    return out


def main():
    check = "--check" in sys.argv[1:]
    bad = []
    want = {}
    for name, (model, body) in sorted(files().items()):
        p = schemastrict.problems(model, body, name)
        if p:
            bad.extend(p)
        want[name] = json.dumps(body, ensure_ascii=False, indent=1) + "\n"
    if bad:
        sys.exit("not allowed by the schema: " + "; ".join(bad))
    have = {p.name: p.read_text() for p in OUT.glob("*.json")} \
        if OUT.is_dir() else {}
    if check:
        diff = sorted(n for n in set(want) | set(have)
                      if want.get(n) != have.get(n))
        if diff:
            sys.exit("out of date: " + ", ".join(diff))
        print("%d fixtures up to date" % len(want))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for n in set(have) - set(want):
        (OUT / n).unlink()
    for n, text in want.items():
        (OUT / n).write_text(text)
    print("wrote %d fixtures to %s" % (len(want), OUT))


if __name__ == "__main__":
    main()
