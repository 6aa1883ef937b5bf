#!/usr/bin/python3
"""fake-vault held to the real Vault: the same requests to both, the answers
compared (issue 16, point 2).

The real Vault is the one `make vault` builds (build/vault/bin/vault,
v1.21.4), started by tests/vault/vault-local as a dev server with a KV v2
mount at kv/; fake-vault (bin/fake-vault) gets the same root token, the
same AppRole credentials and a kubernetes role. Each test sends one
sequence of requests to both servers, request by request, and compares
status code, Content-Type and Cache-Control, and the JSON body after
normalise() has replaced what legitimately differs between two servers (its
docstring lists every rule; nothing else is touched).

The sequences: KV v2 writes (check-and-set, bodies without data or not
JSON or not an object), reads (versions, soft-deleted, undeleted and
destroyed ones), metadata (custom_metadata, max_versions, cas_required,
purge), LIST both ways, tokens (none, unknown, lookup-self, renew-self,
capabilities-self), AppRole and kubernetes logins, a token holding only
docker/vault/ak2vault-policy.hcl, unknown paths and methods, a missing
mount and a sealed Vault. Every Vault endpoint the worker calls (worker/,
common/) is among them; test_worker_endpoints_covered checks that.

A difference fails the test that met it, naming the request and every
JSON path that differs with both values, unless ACCEPTED lists it: an
explicit table of the differences fake-vault keeps on purpose, each with
its reason, each holding exactly the JSON paths that differ. A difference
that changes (fixed, or grown) fails too, and so does an accepted
difference a test no longer meets. CONTRIBUTING.md ("fake-vault and the
real Vault") lists the same differences.

Without build/vault/bin/vault every test fails, saying that `make vault`
builds it. No token or secret reaches the output: login tokens are
registered with akvtest.SECRETS as soon as they are issued, and every log
of the run is scanned at the end.
"""
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import SECRETS, depends  # noqa: E402

VAULT_BIN = akvtest.REPO / "build" / "vault" / "bin" / "vault"
VAULT_LOCAL = akvtest.REPO / "tests" / "vault" / "vault-local"
POLICY = akvtest.REPO / "docker" / "vault" / "ak2vault-policy.hcl"

ROOT = akvtest.random_secret(32)
SECRETS.add("Vault root token", ROOT)
ROLE_ID = str(uuid.uuid4())
SECRET_ID = akvtest.random_secret(36)
SECRETS.add("approle secret_id", SECRET_ID)
K8S_JWT = akvtest.random_secret(40)
SECRETS.add("kubernetes JWT", K8S_JWT)

# The token a request carries: the root token (the default), none, a token
# neither server knows, or the AppRole login token of each server.
NO_TOKEN = None
BAD_TOKEN = "hvs.not-a-token-either-server-issued"
LOGIN = object()

REAL = None   # Server: the real Vault
FAKE = None   # Server: fake-vault
RUN = None    # the RunDir

# ---------------------------------------------------------------------------
# The differences fake-vault keeps on purpose, by request label. Each entry:
# the test that meets it, the reason, and the places that differ: "status",
# "header:NAME", or a JSON path ("$" the whole body, "$.errors",
# "$.data.keys"), which covers the members below it. Every difference of
# the request must be covered and every place listed must differ: a
# difference not listed fails, and so does an entry whose differences
# changed or that a test no longer meets.

NO_ADMIN = ("fake-vault is configured by its command line (--root-token, "
            "--approle, --k8s-role, --kv-mount) and has none of Vault's "
            "administrative endpoints; the worker never calls them: the "
            "router's 404")
NO_ACL = ("fake-vault has no ACL engine: a login token may do anything a "
          "root token may; tests model a policy's denial with the "
          "deny_prefix fault, whose 403 and capabilities are compared with "
          "Vault's own below")

ACCEPTED = {
    # test_approle_and_policy: Vault's administrative endpoints.
    "admin: write the ak2vault policy": (
        "test_approle_and_policy", NO_ADMIN, {"status", "$"}),
    "admin: enable approle": (
        "test_approle_and_policy", NO_ADMIN, {"status", "$"}),
    "admin: write the approle role": (
        "test_approle_and_policy", NO_ADMIN + " (unsupported path: the "
        "approle mount has only login)", {"status", "$"}),
    "admin: set the role-id": (
        "test_approle_and_policy", NO_ADMIN + " (unsupported path)",
        {"status", "$"}),
    "admin: set a custom secret-id": (
        "test_approle_and_policy", NO_ADMIN + " (unsupported path)",
        {"status", "$"}),
    "admin: create a child token with the ak2vault policy": (
        "test_approle_and_policy", "fake-vault issues tokens by login "
        "only; the worker never creates tokens (unsupported path)",
        {"status", "$"}),
    # test_approle_and_policy: no ACL.
    "policy: capabilities-self of the login token": (
        "test_approle_and_policy", NO_ACL + "; capabilities-self lists "
        "every KV capability on every path",
        {"$.kv/data/authentik/t1", "$.kv/data/other/x",
         "$.kv/metadata/authentik/t1", "$.sys/capabilities-self",
         "$.data.kv/data/authentik/t1", "$.data.kv/data/other/x",
         "$.data.kv/metadata/authentik/t1", "$.data.sys/capabilities-self"}),
    "policy: soft-delete without the delete capability": (
        "test_approle_and_policy", NO_ACL, {"status", "$"}),
    "policy: purge without the delete capability": (
        "test_approle_and_policy", NO_ACL, {"status", "$"}),
    "policy: read outside the prefix": (
        "test_approle_and_policy", NO_ACL + " (the key does not exist: "
        "fake-vault's 404)", {"status", "$.errors"}),
    "policy: write outside the prefix": (
        "test_approle_and_policy", NO_ACL, {"status", "$"}),
    "policy: sys/mounts": (
        "test_approle_and_policy", NO_ACL + "; nor has it sys/mounts "
        "(the router's 404)", {"status", "$.errors"}),
    # test_kubernetes_login
    "admin: enable kubernetes": (
        "test_kubernetes_login", NO_ADMIN, {"status", "$"}),
    "admin: configure kubernetes": (
        "test_kubernetes_login", NO_ADMIN + " (unsupported path)",
        {"status", "$"}),
    "admin: write the kubernetes role": (
        "test_kubernetes_login", NO_ADMIN + " (unsupported path)",
        {"status", "$"}),
    "k8s: the JWT fake-vault knows": (
        "test_kubernetes_login", "fake-vault compares a login's JWT with "
        "the file of --k8s-role; Vault has Kubernetes review it (here "
        "there is no Kubernetes: permission denied)", {"status", "$"}),
    # test_unknown_paths_and_methods
    "sys/mounts with the root token": (
        "test_unknown_paths_and_methods", "fake-vault has no sys/mounts; "
        "the worker never lists mounts (check-config asks "
        "sys/capabilities-self): the router's 404", {"status", "$"}),
    "PATCH a secret (merge patch)": (
        "test_unknown_paths_and_methods", "fake-vault does not implement "
        "KV v2's PATCH (JSON merge patch of data/); the worker never "
        "patches: 405 unsupported operation", {"status", "$"}),
    # test_missing_mount
    "admin: unmount kv": (
        "test_missing_mount", NO_ADMIN + "; its missing mount is the "
        "mount_missing fault", {"status", "$"}),
    # test_sealed
    "admin: seal": (
        "test_sealed", "fake-vault seals through its fault plan "
        "(sealed_for_ms), not sys/seal", {"status", "$"}),
}

# ---------------------------------------------------------------------------
# The two servers and one request to each


# The headers compared, besides status and body.
COMPARED_HEADERS = ("Content-Type", "Cache-Control", "Location")


class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {h: headers.get(h) for h in COMPARED_HEADERS}
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = raw.decode("utf-8", "replace")

    def json(self):
        assert isinstance(self.body, dict), "not a JSON object: HTTP %d" % \
            self.status
        return self.body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to compare, not to follow."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                      _NoRedirect())


class Server:
    def __init__(self, name, proc):
        self.name = name
        self.proc = proc
        self.base = "http://" + proc.address
        self.login_token = None

    def call(self, method, path, body=None, token=ROOT, raw=None,
             ctype="application/json", headers=None):
        """One request below /v1/ (or at \\p path when it starts with
        "/"): \\p body as JSON, or \\p raw bytes; \\p token as described
        at NO_TOKEN."""
        if token is LOGIN:
            token = self.login_token
            assert token, "%s: no login token yet" % self.name
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        url = self.base + (path if path.startswith("/") else "/v1/" + path)
        req = urllib.request.Request(url, data=data, method=method)
        if token:
            req.add_header("X-Vault-Token", token)
        if data is not None and ctype:
            req.add_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with _OPENER.open(req, timeout=30) as r:
                return Answer(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())
        except (urllib.error.URLError, OSError) as e:
            raise AssertionError("%s %s on %s failed: %s" % (
                method, urllib.parse.urlsplit(url).path, self.name,
                getattr(e, "reason", e))) from None

    def faults(self, plan):
        """Sets fake-vault's fault plan (None clears it)."""
        a = self.call("POST" if plan else "DELETE", "/_fake/faults",
                      plan or None, token=NO_TOKEN)
        assert a.status == 200, "fault plan %s refused: HTTP %d" % (
            json.dumps(plan), a.status)


def setup(rundir):
    global REAL, FAKE, RUN
    RUN = rundir
    if not VAULT_BIN.exists():
        raise AssertionError("no real Vault at build/vault/bin/vault: "
                             "`make vault` builds it (once per machine)")
    jwt = rundir.write("k8s.jwt", K8S_JWT + "\n")
    FAKE = Server("fake-vault", akvtest.Proc("fake-vault", [
        akvtest.binary("fake-vault"), "--listen", "127.0.0.1:0",
        "--root-token", ROOT, "--kv-mount", "kv",
        "--approle", "%s=%s" % (ROLE_ID, SECRET_ID),
        "--k8s-role", "ak2vault=%s" % jwt], rundir, address_line=True))
    # vault-local reads the root token from its environment only and keeps
    # Vault's data directory (vault.log) in the run directory.
    REAL = Server("Vault", akvtest.Proc("vault-local", [
        "/usr/bin/python3", str(VAULT_LOCAL), "--kv-mount", "kv",
        "--vault", str(VAULT_BIN), "--keep"], rundir,
        env={"VAULT_LOCAL_ROOT_TOKEN": ROOT,
             "VAULT_LOCAL_DIR": str(rundir.path)},
        address_line=True, startup_timeout=120))
    # the dev server's unseal key, which vault-local keeps out of its log
    for key_file in rundir.path.glob("vault-local.*/unseal-key"):
        SECRETS.add("Vault unseal key", key_file.read_text().strip())


def teardown(rundir):
    akvtest.stop_all()


# ---------------------------------------------------------------------------
# Normalising and comparing

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}\Z")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z\Z")
TOKEN_RE = re.compile(r"hvs\.[A-Za-z0-9_-]{91}\Z")
ACCESSOR_RE = re.compile(r"[A-Za-z0-9]{24}\Z")
CLUSTER_NAME_RE = re.compile(r"vault-cluster-[0-9a-f]{8}\Z")

# RFC 3339 dates (when a server did something); "" (unset) stays.
TIME_KEYS = {"created_time", "updated_time", "deletion_time", "issue_time",
             "expire_time", "last_renewal"}
# Unix seconds of the same kind.
UNIX_KEYS = {"creation_time", "last_renewal_time", "server_time_utc"}
# Random identifiers, numbered per server in order of appearance.
ID_KEYS = {"entity_id", "client_id", "cluster_id", "secret_id_accessor"}


class Normaliser:
    """What legitimately differs between two servers, and only that, is
    replaced by a placeholder (per server, for one request sequence):

    - request_id: a random UUID per answer -> "<request_id>";
    - dates (created_time, updated_time, deletion_time, issue_time,
      expire_time, last_renewal: RFC 3339) -> "<time>", and Unix seconds
      (creation_time, last_renewal_time, server_time_utc) -> "<unix>": two
      servers never act in the same nanosecond. An unset date ("", null)
      stays as it is;
    - ttl (seconds a token has left, counted down between the two
      requests) -> "<ttl>" when not 0;
    - random identifiers: entity_id, client_id (an entity's ID; the root
      token's client ID is a fixed hash and stays), cluster_id,
      secret_id_accessor (UUIDs) and accessor (24 characters) ->
      "<id-N>" / "<accessor-N>", numbered in order of first appearance on
      that server, so one entity met in two places must be one entity on
      both servers; cluster_name "vault-cluster-" and 8 random hex digits
      -> "<cluster_name>";
    - token values: the root token -> "<root>"; any other token of
      Vault's shape (hvs. and 91 base64url characters) -> "<token-N>",
      numbered like identifiers. A token of another shape stays (and
      differs).

    Everything else (statuses, error texts, warnings, every other field,
    the order of list items) is compared as it is."""

    def __init__(self):
        self.ids = {}
        self.accessors = {}
        self.tokens = {}

    @staticmethod
    def _number(table, value, prefix):
        if value not in table:
            table[value] = "<%s-%d>" % (prefix, len(table) + 1)
        return table[value]

    def value(self, key, v):
        if isinstance(v, dict):
            return {k: self.value(k, x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(None, x) for x in v]
        if isinstance(v, str):
            if v == ROOT:
                return "<root>"
            if TOKEN_RE.match(v):
                SECRETS.add("Vault login token", v)
                return self._number(self.tokens, v, "token")
            if key == "request_id" and UUID_RE.match(v):
                return "<request_id>"
            if key in TIME_KEYS and TIME_RE.match(v):
                return "<time>"
            if key in ID_KEYS and UUID_RE.match(v):
                return self._number(self.ids, v, "id")
            if key == "accessor" and ACCESSOR_RE.match(v):
                return self._number(self.accessors, v, "accessor")
            if key == "cluster_name" and CLUSTER_NAME_RE.match(v):
                return "<cluster_name>"
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            if key in UNIX_KEYS and v > 1000000000:
                return "<unix>"
            if key == "ttl" and v > 0:
                return "<ttl>"
        return v


def json_diff(a, b, path="$"):
    """The JSON paths where \\p a and \\p b differ: a member only one side
    has, or values (or kinds) that differ, down to the leaves."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            p = "%s.%s" % (path, k)
            if k not in a or k not in b:
                out.append((p, a.get(k, "<absent>"), b.get(k, "<absent>")))
            else:
                out.extend(json_diff(a[k], b[k], p))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_diff(x, y, "%s[%d]" % (path, i)))
        return out
    if a == b and type(a) is type(b):
        return []
    return [(path, a, b)]


def covers(place, path):
    """Whether the accepted \\p place covers the differing \\p path: the
    same place, or one below it ("$" covers the whole body)."""
    if path == place:
        return True
    if place == "$":
        return path.startswith("$")
    return path.startswith(place + ".") or path.startswith(place + "[")


def same_places(diffs, places):
    """Every difference covered by a place, every place covering one."""
    paths = [p for p, _, _ in diffs]
    return all(any(covers(pl, p) for pl in places) for p in paths) and \
        all(any(covers(pl, p) for p in paths) for pl in places)


def short(v):
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 300 else text[:300] + "..."


class Sequence:
    """One test's requests, each sent to both servers and compared. A
    difference is collected (the sequence goes on: later requests show
    whether the states diverged) and check() fails with all of them."""

    LABELS = set()
    COVERED = set()  # (method, path pattern) of the worker's calls met

    def __init__(self, test):
        self.test = test
        self.norm = {REAL: Normaliser(), FAKE: Normaliser()}
        self.failures = []
        self.accepted_met = set()

    def ex(self, label, method, path, body=None, token=ROOT, raw=None,
           ctype="application/json", headers=None, expect=None):
        """Sends the request to both servers and compares the answers.
        \\p expect: the status Vault must answer (keeps the sequence
        honest about what it tests). @returns (real, fake) Answers."""
        assert label not in Sequence.LABELS, "label used twice: " + label
        Sequence.LABELS.add(label)
        r = REAL.call(method, path, body, token, raw, ctype, headers)
        f = FAKE.call(method, path, body, token, raw, ctype, headers)
        covered(method, path, r)
        # identifiers in an answer only one server gives are numbered
        # apart, so they do not shift the numbering of the sequence
        diffs = self.compare(r, f, fresh=label in ACCEPTED)
        where = "[%s] %s %s" % (label, method, path)
        if expect is not None and r.status != expect:
            self.failures.append("%s: Vault answered %d, the sequence "
                                 "expects %d" % (where, r.status, expect))
        acc = ACCEPTED.get(label)
        if acc is not None:
            self.accepted_met.add(label)
            if acc[0] != self.test:
                self.failures.append("%s: accepted for %s, met in %s" % (
                    where, acc[0], self.test))
            elif not same_places(diffs, acc[2]):
                self.failures.append(
                    "%s: the accepted difference changed (accepted: %s):%s"
                    % (where, ", ".join(sorted(acc[2])),
                       self.describe(diffs) or " none left"))
        elif diffs:
            self.failures.append("%s:%s" % (where, self.describe(diffs)))
        return r, f

    @staticmethod
    def describe(diffs):
        return "".join(" %s: Vault %s, fake-vault %s;" % (
            p, short(a), short(b)) for p, a, b in diffs)

    def compare(self, r, f, fresh=False):
        norm = {REAL: Normaliser(), FAKE: Normaliser()} if fresh else \
            self.norm
        diffs = []
        if r.status != f.status:
            diffs.append(("status", r.status, f.status))
        for name in COMPARED_HEADERS:
            if r.headers[name] != f.headers[name]:
                diffs.append(("header:" + name.lower(), r.headers[name],
                              f.headers[name]))
        rb = norm[REAL].value(None, r.body)
        fb = norm[FAKE].value(None, f.body)
        if isinstance(rb, dict) and isinstance(fb, dict):
            diffs.extend(json_diff(rb, fb))
        elif rb != fb:
            diffs.append(("$", rb, fb))
        return diffs

    def check(self):
        """Fails with every difference met, and when an accepted
        difference of this test was not met."""
        for label, (test, _, _) in sorted(ACCEPTED.items()):
            if test == self.test and label not in self.accepted_met:
                self.failures.append("[%s]: accepted difference not met "
                                     "(fixed? remove it from ACCEPTED and "
                                     "CONTRIBUTING.md)" % label)
        assert not self.failures, "%d difference(s) from Vault: %s" % (
            len(self.failures), " | ".join(self.failures))


def sequence(fn):
    """A test that is one Sequence: fn(seq), then seq.check()."""
    def run():
        seq = Sequence(fn.__name__)
        fn(seq)
        seq.check()
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


# The Vault endpoints the worker calls (worker/upstream/vault.c and
# worker/sync/engine.c build them from kv_mount, prefix and auth_mount).
WORKER_CALLS = {
    ("POST", "kv/data/*"): "a secret's new version, with options.cas",
    ("GET", "kv/data/*"): "a secret's current version",
    ("DELETE", "kv/data/*"): "on_delete = soft-delete",
    ("POST", "kv/metadata/*"): "provenance in custom_metadata",
    ("GET", "kv/metadata/*"): "a secret's current version, live or not",
    ("DELETE", "kv/metadata/*"): "on_delete = purge",
    ("GET", "kv/metadata/*/?list=true"): "a reconcile's LIST of the prefix",
    ("POST", "sys/capabilities-self"): "check-config --connect",
    ("GET", "auth/token/lookup-self"): "a token file's token at start",
    ("POST", "auth/token/renew-self"): "renewal",
    ("POST", "auth/approle/login"): "approle login",
    ("POST", "auth/kubernetes/login"): "kubernetes login",
}


def covered(method, path, answer):
    """Records which of WORKER_CALLS a request was (answered without a
    5xx by Vault)."""
    if answer.status >= 500:
        return
    bare, _, query = path.partition("?")
    for m, pattern in WORKER_CALLS:
        p_path, _, p_query = pattern.partition("?")
        regex = "^" + re.escape(p_path).replace(r"\*", "[^?]+") + "$"
        if m == method and re.match(regex, bare) and \
                (not p_query or p_query in query):
            Sequence.COVERED.add((m, pattern))


def start_of_a_second():
    """Waits for the wall clock's next second to begin."""
    time.sleep(1.0 - time.time() % 1.0 + 0.005)


def login(seq, label):
    """An AppRole login on both servers; each keeps its token."""
    r, f = seq.ex(label, "POST", "auth/approle/login",
                  {"role_id": ROLE_ID, "secret_id": SECRET_ID},
                  token=NO_TOKEN, expect=200)
    for server, answer in ((REAL, r), (FAKE, f)):
        token = (answer.json().get("auth") or {}).get("client_token")
        assert token, "%s: no token from the login" % server.name
        SECRETS.add("Vault login token", token)
        server.login_token = token


# ---------------------------------------------------------------------------
# The sequences

MALFORMED = [
    # (name, body): what the JSON limits scan (500) or the decoder (400)
    # says about each
    ("unquoted word", b"{not json"),
    ("unclosed object", b"{"),
    ("unclosed nested object", b'{"data":{"k":"v"}'),
    ("extra closing brace", b'{"data":{"k":"v"}}}'),
    ("trailing garbage", b'{"data":{"k":"v"}} x'),
    ("duplicate key", b'{"data":{"k":"v","k":"w"}}'),
    ("duplicate top-level key", b'{"data":{"k":"v"},"data":{"j":"w"}}'),
    ("trailing comma", b'{"data":{"k":"v",}}'),
    ("missing colon", b'{"data" {"k":"v"}}'),
    ("missing comma", b'{"data":{"k":"v" "j":"w"}}'),
    ("bad escape", b'{"data":{"k":"\\q"}}'),
    ("short unicode escape", b'{"data":{"k":"\\u12"}}'),
    ("leading zero", b'{"data":{"k":01}}'),
    ("bad number", b'{"data":{"k":1.}}'),
    ("bad literal", b'{"data":{"k":tru}}'),
    ("control character", b'{"data":{"k":"a\x01b"}}'),
    ("byte order mark", b'\xef\xbb\xbf{"data":{"k":"v"}}'),
    ("an array", b"[1]"),
    ("a string", b'"text"'),
    ("a number", b"42"),
    ("true", b"true"),
    ("null", b"null"),
    ("a bare word", b"garbage"),
    ("a cut literal", b"tru"),
    ("a cut string", b'"abc'),
    ("blank", b"  \n"),
]


@sequence
def test_kv_writes(seq):
    """First writes, check-and-set, bodies without data, not an object,
    not JSON."""
    seq.ex("write: first write", "POST", "kv/data/w/first",
           {"data": {"k": "v1", "n": 1, "deep": {"list": [1, "two", None]}}},
           expect=200)
    seq.ex("write: read it back", "GET", "kv/data/w/first", expect=200)
    seq.ex("write: second write, no cas", "PUT", "kv/data/w/first",
           {"data": {"k": "v2"}}, expect=200)
    seq.ex("write: cas=0 on a new path", "POST", "kv/data/w/cas",
           {"options": {"cas": 0}, "data": {"k": "v1"}}, expect=200)
    seq.ex("write: cas=0 on an existing path", "POST", "kv/data/w/cas",
           {"options": {"cas": 0}, "data": {"k": "v2"}}, expect=400)
    seq.ex("write: cas=1, the current version", "POST", "kv/data/w/cas",
           {"options": {"cas": 1}, "data": {"k": "v2"}}, expect=200)
    seq.ex("write: cas=1 again, stale", "POST", "kv/data/w/cas",
           {"options": {"cas": 1}, "data": {"k": "v3"}}, expect=400)
    seq.ex("write: cas=5, ahead", "POST", "kv/data/w/cas",
           {"options": {"cas": 5}, "data": {"k": "v3"}}, expect=400)
    seq.ex("write: cas as a string", "POST", "kv/data/w/cas",
           {"options": {"cas": "2"}, "data": {"k": "v3"}}, expect=200)
    seq.ex("write: cas not a number", "POST", "kv/data/w/cas",
           {"options": {"cas": "three"}, "data": {"k": "v4"}}, expect=400)
    seq.ex("write: read after check-and-set", "GET", "kv/data/w/cas",
           expect=200)
    seq.ex("write: no data", "POST", "kv/data/w/none", {}, expect=400)
    seq.ex("write: only options", "POST", "kv/data/w/none",
           {"options": {"cas": 0}}, expect=400)
    seq.ex("write: empty body", "POST", "kv/data/w/none", raw=b"",
           expect=400)
    seq.ex("write: data null", "POST", "kv/data/w/null", {"data": None},
           expect=200)
    seq.ex("write: data null read back", "GET", "kv/data/w/null",
           expect=200)
    seq.ex("write: data a string", "POST", "kv/data/w/bad", {"data": "v"},
           expect=400)
    seq.ex("write: data a number", "POST", "kv/data/w/bad", {"data": 5},
           expect=400)
    seq.ex("write: data a list of a number", "POST", "kv/data/w/bad",
           {"data": [1]}, expect=400)
    seq.ex("write: data a list holding a list of a bool", "POST",
           "kv/data/w/bad", {"data": [{"k": "v"}, [True]]}, expect=400)
    seq.ex("write: options a string", "POST", "kv/data/w/bad",
           {"data": {"k": "v"}, "options": "cas"}, expect=400)
    seq.ex("write: data an empty list", "POST", "kv/data/w/list0",
           {"data": []}, expect=200)
    seq.ex("write: data an empty list read back", "GET", "kv/data/w/list0",
           expect=200)
    seq.ex("write: data a list of objects", "POST", "kv/data/w/lists",
           {"data": [{"a": "1"}, None, [{"b": "2", "a": "3"}]]}, expect=200)
    seq.ex("write: data a list of objects read back", "GET",
           "kv/data/w/lists", expect=200)
    seq.ex("write: unknown parameter", "POST", "kv/data/w/extra",
           {"data": {"k": "v"}, "extra": 1, "version": 3}, expect=200)
    seq.ex("write: to a path ending in /", "POST", "kv/data/w/",
           {"data": {"k": "v"}}, expect=400)
    seq.ex("write: a path to clean", "POST", "kv/data/w/../first",
           {"data": {"k": "v"}}, expect=307)
    for name, raw in MALFORMED:
        seq.ex("write: body %s" % name, "POST", "kv/data/w/malformed",
               raw=raw)
    seq.ex("write: nothing malformed was written", "GET",
           "kv/metadata/w/malformed")
    seq.ex("write: malformed body on a read", "GET", "kv/data/w/first",
           raw=b"{", ctype="application/json")


@sequence
def test_kv_reads(seq):
    """Missing paths, versions, soft-deleted, undeleted and destroyed
    versions."""
    for i in range(1, 4):
        seq.ex("read: setup write %d" % i, "POST", "kv/data/r/a",
               {"data": {"k": "v%d" % i}}, expect=200)
    seq.ex("read: missing path", "GET", "kv/data/r/missing", expect=404)
    seq.ex("read: current", "GET", "kv/data/r/a", expect=200)
    seq.ex("read: version 1", "GET", "kv/data/r/a?version=1", expect=200)
    seq.ex("read: version 0 (the current)", "GET", "kv/data/r/a?version=0",
           expect=200)
    seq.ex("read: version -1 (the current)", "GET",
           "kv/data/r/a?version=-1", expect=200)
    seq.ex("read: version beyond the current", "GET",
           "kv/data/r/a?version=9", expect=404)
    seq.ex("read: version not a number", "GET", "kv/data/r/a?version=abc",
           expect=400)
    seq.ex("read: version not an integer", "GET",
           "kv/data/r/a?version=1.5", expect=400)
    seq.ex("read: soft-delete the current version", "DELETE", "kv/data/r/a",
           expect=204)
    seq.ex("read: the soft-deleted current version", "GET", "kv/data/r/a",
           expect=404)
    seq.ex("read: soft-delete it again", "DELETE", "kv/data/r/a",
           expect=204)
    seq.ex("read: an older version stays", "GET", "kv/data/r/a?version=2",
           expect=200)
    seq.ex("read: soft-delete a missing path", "DELETE",
           "kv/data/r/missing", expect=204)
    seq.ex("read: delete/ versions 1 and 9", "POST", "kv/delete/r/a",
           {"versions": [1, 9]}, expect=204)
    seq.ex("read: the version deleted by delete/", "GET",
           "kv/data/r/a?version=1", expect=404)
    seq.ex("read: metadata after the deletes", "GET", "kv/metadata/r/a",
           expect=200)
    seq.ex("read: delete/ without versions", "POST", "kv/delete/r/a", {},
           expect=400)
    seq.ex("read: delete/ of a missing path", "POST", "kv/delete/r/missing",
           {"versions": [1]}, expect=204)
    seq.ex("read: undelete/ versions 1 and 3 as a string", "POST",
           "kv/undelete/r/a", {"versions": "1,3"}, expect=204)
    seq.ex("read: the undeleted version", "GET", "kv/data/r/a?version=1",
           expect=200)
    seq.ex("read: the undeleted current version", "GET", "kv/data/r/a",
           expect=200)
    seq.ex("read: metadata after undelete", "GET", "kv/metadata/r/a",
           expect=200)
    seq.ex("read: undelete/ without versions", "POST", "kv/undelete/r/a",
           {"versions": []}, expect=400)
    seq.ex("read: destroy/ version 1", "POST", "kv/destroy/r/a",
           {"versions": [1]}, expect=204)
    seq.ex("read: the destroyed version", "GET", "kv/data/r/a?version=1",
           expect=404)
    seq.ex("read: undelete/ a destroyed version", "POST", "kv/undelete/r/a",
           {"versions": [1]}, expect=204)
    seq.ex("read: destroy/ the current version as a string", "PUT",
           "kv/destroy/r/a", {"versions": "3"}, expect=204)
    seq.ex("read: the destroyed current version", "GET", "kv/data/r/a",
           expect=404)
    seq.ex("read: metadata after destroy", "GET", "kv/metadata/r/a",
           expect=200)
    seq.ex("read: destroy/ without versions", "POST", "kv/destroy/r/a", {},
           expect=400)
    seq.ex("read: destroy/ with a version that is no number", "POST",
           "kv/destroy/r/a", {"versions": ["x", {"v": 1}]}, expect=400)
    seq.ex("read: destroy/ of a missing path", "POST",
           "kv/destroy/r/missing", {"versions": [1]}, expect=204)
    seq.ex("read: destroy/ read with GET", "GET", "kv/destroy/r/a",
           expect=405)
    seq.ex("read: a new write after destroy", "POST", "kv/data/r/a",
           {"options": {"cas": 3}, "data": {"k": "v4"}}, expect=200)
    seq.ex("read: metadata at the end", "GET", "kv/metadata/r/a",
           expect=200)


@sequence
def test_kv_metadata(seq):
    """custom_metadata, max_versions, cas_required, purge, a key made by
    its metadata, bad fields."""
    seq.ex("meta: setup write", "POST", "kv/data/m/a",
           {"data": {"k": "v1"}}, expect=200)
    # what the worker writes after a sync (worker/sync/provenance)
    seq.ex("meta: custom_metadata as the worker writes it", "POST",
           "kv/metadata/m/a",
           {"custom_metadata": {"ak2vault_token_pk": "1234",
                                "ak2vault_event_pk": str(uuid.uuid4()),
                                "ak2vault_action": "model_updated",
                                "ak2vault_synced_at":
                                    "2026-01-02T03:04:05Z"}}, expect=204)
    seq.ex("meta: custom_metadata with a number, max_versions 3", "POST",
           "kv/metadata/m/a",
           {"custom_metadata": {"owner": "team-a", "n": 5},
            "max_versions": 3}, expect=204)
    seq.ex("meta: cas_required", "PUT", "kv/metadata/m/a",
           {"cas_required": True}, expect=204)
    seq.ex("meta: read", "GET", "kv/metadata/m/a", expect=200)
    seq.ex("meta: write without cas refused", "POST", "kv/data/m/a",
           {"data": {"k": "v2"}}, expect=400)
    seq.ex("meta: write with cas", "POST", "kv/data/m/a",
           {"options": {"cas": 1}, "data": {"k": "v2"}}, expect=200)
    seq.ex("meta: data carries custom_metadata", "GET", "kv/data/m/a",
           expect=200)
    for i in range(3, 6):
        seq.ex("meta: write %d past max_versions" % i, "POST", "kv/data/m/a",
               {"options": {"cas": i - 1}, "data": {"k": "v%d" % i}},
               expect=200)
    seq.ex("meta: versions pruned to max_versions", "GET", "kv/metadata/m/a",
           expect=200)
    seq.ex("meta: a pruned version", "GET", "kv/data/m/a?version=2",
           expect=404)
    seq.ex("meta: nothing to set", "POST", "kv/metadata/m/a", {},
           expect=204)
    seq.ex("meta: unknown parameter only", "POST", "kv/metadata/m/a",
           {"colour": "blue"}, expect=204)
    seq.ex("meta: delete_version_after", "POST", "kv/metadata/m/a",
           {"delete_version_after": "1h30m"}, expect=204)
    seq.ex("meta: cas_required off, custom_metadata emptied", "POST",
           "kv/metadata/m/a",
           {"cas_required": False, "custom_metadata": {},
            "delete_version_after": "0s"}, expect=204)
    seq.ex("meta: read after the changes", "GET", "kv/metadata/m/a",
           expect=200)
    seq.ex("meta: custom_metadata a string", "POST", "kv/metadata/m/a",
           {"custom_metadata": "x"}, expect=400)
    seq.ex("meta: custom_metadata a list of objects", "POST",
           "kv/metadata/m/a", {"custom_metadata": [{"a": "b"}]},
           expect=204)
    seq.ex("meta: custom_metadata an empty value", "POST",
           "kv/metadata/m/a", {"custom_metadata": {"a": ""}}, expect=400)
    seq.ex("meta: custom_metadata a nested object", "POST",
           "kv/metadata/m/a", {"custom_metadata": {"a": {"b": "c"}}},
           expect=400)
    seq.ex("meta: custom_metadata too many keys", "POST", "kv/metadata/m/a",
           {"custom_metadata": {"k%02d" % i: "v" for i in range(65)}},
           expect=400)
    # one key: Vault checks a map's keys in Go's random order
    seq.ex("meta: custom_metadata a key too long, its value unprintable",
           "POST", "kv/metadata/m/a",
           {"custom_metadata": {"k" * 129: "a\tb"}}, expect=400)
    seq.ex("meta: max_versions not a number", "PUT", "kv/metadata/m/a",
           {"max_versions": "abc"}, expect=400)
    seq.ex("meta: max_versions not an integer", "PUT", "kv/metadata/m/a",
           {"max_versions": 1.5}, expect=400)
    seq.ex("meta: max_versions a list", "PUT", "kv/metadata/m/a",
           {"max_versions": [1]}, expect=400)
    seq.ex("meta: cas_required not a bool", "PUT", "kv/metadata/m/a",
           {"cas_required": "maybe"}, expect=400)
    seq.ex("meta: cas_required an object", "PUT", "kv/metadata/m/a",
           {"cas_required": {"x": 1}}, expect=400)
    seq.ex("meta: delete_version_after not a duration", "PUT",
           "kv/metadata/m/a", {"delete_version_after": "soon"}, expect=400)
    seq.ex("meta: delete_version_after a bool", "PUT", "kv/metadata/m/a",
           {"delete_version_after": True}, expect=400)
    seq.ex("meta: read after the refusals", "GET", "kv/metadata/m/a",
           expect=200)
    seq.ex("meta: a key made by its metadata", "POST", "kv/metadata/m/new",
           {"custom_metadata": {"a": "b"}, "max_versions": 2}, expect=204)
    seq.ex("meta: read the key made by its metadata", "GET",
           "kv/metadata/m/new", expect=200)
    seq.ex("meta: its data", "GET", "kv/data/m/new", expect=404)
    seq.ex("meta: its first version", "POST", "kv/data/m/new",
           {"options": {"cas": 0}, "data": {"k": "v"}}, expect=200)
    seq.ex("meta: read after its first version", "GET", "kv/metadata/m/new",
           expect=200)
    seq.ex("meta: purge", "DELETE", "kv/metadata/m/a", expect=204)
    seq.ex("meta: read the purged key", "GET", "kv/metadata/m/a",
           expect=404)
    seq.ex("meta: data of the purged key", "GET", "kv/data/m/a?version=5",
           expect=404)
    seq.ex("meta: purge again", "DELETE", "kv/metadata/m/a", expect=204)
    seq.ex("meta: metadata of a missing path", "GET",
           "kv/metadata/m/missing", expect=404)
    seq.ex("meta: a purged key written again", "POST", "kv/data/m/a",
           {"options": {"cas": 0}, "data": {"k": "again"}}, expect=200)
    seq.ex("meta: read the key written again", "GET", "kv/metadata/m/a",
           expect=200)


@sequence
def test_kv_list(seq):
    """LIST and GET ?list=true, nested folders, a missing prefix."""
    for key in ("l/top", "l/x/w", "l/x/y/z", "l/x/y/q", "l2/other"):
        seq.ex("list: setup write %s" % key, "POST", "kv/data/" + key,
               {"data": {"k": "v"}}, expect=200)
    seq.ex("list: LIST a prefix", "LIST", "kv/metadata/l", expect=200)
    seq.ex("list: LIST a prefix with /", "LIST", "kv/metadata/l/",
           expect=200)
    seq.ex("list: GET ?list=true", "GET", "kv/metadata/l/?list=true",
           expect=200)
    seq.ex("list: GET ?list=true without the /", "GET",
           "kv/metadata/l?list=true", expect=200)
    seq.ex("list: GET ?list=1", "GET", "kv/metadata/l/x/?list=1",
           expect=200)
    seq.ex("list: nested folder", "LIST", "kv/metadata/l/x/y", expect=200)
    seq.ex("list: missing prefix", "LIST", "kv/metadata/nothing",
           expect=404)
    seq.ex("list: missing prefix with GET", "GET",
           "kv/metadata/nothing/?list=true", expect=404)
    seq.ex("list: a key is no folder", "LIST", "kv/metadata/l/top",
           expect=404)
    seq.ex("list: soft-delete l/top", "DELETE", "kv/data/l/top", expect=204)
    seq.ex("list: a soft-deleted key is listed", "LIST", "kv/metadata/l",
           expect=200)
    seq.ex("list: purge l/x/w", "DELETE", "kv/metadata/l/x/w", expect=204)
    seq.ex("list: a purged key is not", "LIST", "kv/metadata/l/x",
           expect=200)
    seq.ex("list: ?list=false is a read", "GET",
           "kv/metadata/l/top?list=false", expect=200)
    seq.ex("list: ?list=maybe", "GET", "kv/metadata/l/?list=maybe",
           expect=400)
    seq.ex("list: LIST on data/", "LIST", "kv/data/l", expect=404)
    seq.ex("list: LIST the mount's metadata", "LIST", "kv/metadata/",
           expect=200)


@sequence
def test_tokens(seq):
    """No token, an unknown token, lookup-self, renew-self and
    capabilities-self with the root token."""
    seq.ex("token: setup write", "POST", "kv/data/t/a", {"data": {"k": "v"}},
           expect=200)
    seq.ex("token: none", "GET", "kv/data/t/a", token=NO_TOKEN,
           expect=403)
    seq.ex("token: none on a write", "POST", "kv/data/t/x",
           {"data": {"k": "v"}}, token=NO_TOKEN, expect=403)
    seq.ex("token: unknown", "GET", "kv/data/t/a", token=BAD_TOKEN,
           expect=403)
    seq.ex("token: unknown, on a missing mount", "GET", "nomount/x",
           token=BAD_TOKEN, expect=403)
    seq.ex("token: as a Bearer", "GET", "kv/data/t/a", token=NO_TOKEN,
           headers={"Authorization": "Bearer " + ROOT}, expect=200)
    seq.ex("token: lookup-self without a token", "GET",
           "auth/token/lookup-self", token=NO_TOKEN, expect=403)
    seq.ex("token: lookup-self with an unknown token", "GET",
           "auth/token/lookup-self", token=BAD_TOKEN, expect=403)
    seq.ex("token: lookup-self of the root token", "GET",
           "auth/token/lookup-self", expect=200)
    seq.ex("token: lookup-self with POST", "POST", "auth/token/lookup-self",
           {}, expect=200)
    seq.ex("token: lookup-self with an unknown parameter", "GET",
           "auth/token/lookup-self?x=1", expect=200)
    seq.ex("token: renew-self of the root token", "POST",
           "auth/token/renew-self", {}, expect=400)
    seq.ex("token: renew-self with GET", "GET", "auth/token/renew-self",
           expect=405)
    seq.ex("token: capabilities-self, two paths", "POST",
           "sys/capabilities-self",
           {"paths": ["kv/data/authentik/x", "kv/metadata/authentik/x"]},
           expect=200)
    seq.ex("token: capabilities-self, one path", "POST",
           "sys/capabilities-self", {"paths": ["kv/data/authentik/x"]},
           expect=200)
    seq.ex("token: capabilities-self, paths as a string", "POST",
           "sys/capabilities-self",
           {"paths": "kv/data/a, kv/metadata/a"}, expect=200)
    seq.ex("token: capabilities-self, the deprecated path", "PUT",
           "sys/capabilities-self", {"path": "kv/data/authentik/x"},
           expect=200)
    seq.ex("token: capabilities-self, no paths", "POST",
           "sys/capabilities-self", {}, expect=400)
    seq.ex("token: capabilities-self, an empty path", "POST",
           "sys/capabilities-self", {"paths": ["kv/data/a", " "]},
           expect=400)
    seq.ex("token: capabilities-self, paths an object", "POST",
           "sys/capabilities-self", {"paths": {"a": 1}}, expect=400)
    seq.ex("token: capabilities-self, a list in the paths", "POST",
           "sys/capabilities-self", {"paths": [["a"], "b", {"c": 1}]},
           expect=400)
    seq.ex("token: capabilities-self, unknown parameter", "POST",
           "sys/capabilities-self", {"paths": ["kv/data/a"], "x": 1},
           expect=200)
    seq.ex("token: capabilities-self with GET", "GET",
           "sys/capabilities-self", expect=405)


@sequence
def test_approle_and_policy(seq):
    """AppRole login, a token holding only ak2vault-policy.hcl: what it
    may do, what it may not (the policy's 403 against fake-vault's
    deny_prefix fault), lookup and renewal."""
    seq.ex("admin: write the ak2vault policy", "PUT",
           "sys/policies/acl/ak2vault", {"policy": POLICY.read_text()})
    seq.ex("admin: enable approle", "POST", "sys/auth/approle",
           {"type": "approle"})
    seq.ex("admin: write the approle role", "POST",
           "auth/approle/role/ak2vault",
           {"token_policies": ["ak2vault"], "token_ttl": 3600,
            "token_max_ttl": 86400})
    seq.ex("admin: set the role-id", "POST",
           "auth/approle/role/ak2vault/role-id", {"role_id": ROLE_ID})
    seq.ex("admin: set a custom secret-id", "POST",
           "auth/approle/role/ak2vault/custom-secret-id",
           {"secret_id": SECRET_ID})
    r, _ = seq.ex("admin: create a child token with the ak2vault policy",
                  "POST", "auth/token/create",
                  {"policies": ["ak2vault"], "ttl": "1h"})
    child = ((r.body or {}).get("auth") or {}).get("client_token")
    if child:
        SECRETS.add("Vault child token", child)

    seq.ex("login: wrong secret_id", "POST", "auth/approle/login",
           {"role_id": ROLE_ID, "secret_id": "wrong"}, token=NO_TOKEN,
           expect=400)
    seq.ex("login: unknown role_id", "POST", "auth/approle/login",
           {"role_id": "nope", "secret_id": SECRET_ID}, token=NO_TOKEN,
           expect=400)
    seq.ex("login: no secret_id", "POST", "auth/approle/login",
           {"role_id": ROLE_ID}, token=NO_TOKEN, expect=400)
    seq.ex("login: no role_id", "POST", "auth/approle/login", {},
           token=NO_TOKEN, expect=400)
    seq.ex("login: role_id a list", "POST", "auth/approle/login",
           {"role_id": [ROLE_ID], "secret_id": SECRET_ID}, token=NO_TOKEN)
    seq.ex("login: secret_id a number", "POST", "auth/approle/login",
           {"role_id": ROLE_ID, "secret_id": 5}, token=NO_TOKEN)
    seq.ex("login: GET", "GET", "auth/approle/login", token=NO_TOKEN,
           expect=405)
    seq.ex("login: OPTIONS", "OPTIONS", "auth/approle/login",
           token=NO_TOKEN, expect=405)
    # A renewal past the max TTL is capped to what is left of it, counted
    # in whole seconds from the login: login and renewal fall in one
    # second on both servers, or the caps would differ by one.
    start_of_a_second()
    login(seq, "login: the role's credentials")
    seq.ex("login token: renew-self past the max TTL", "POST",
           "auth/token/renew-self", {"increment": 90001}, token=LOGIN,
           expect=200)
    seq.ex("login: an unknown parameter", "POST", "auth/approle/login",
           {"role_id": ROLE_ID, "secret_id": SECRET_ID, "x": 1},
           token=NO_TOKEN, expect=200)
    seq.ex("login: with a token too", "POST", "auth/approle/login",
           {"role_id": ROLE_ID, "secret_id": "wrong"}, expect=400)

    seq.ex("login token: lookup-self", "GET", "auth/token/lookup-self",
           token=LOGIN, expect=200)
    seq.ex("login token: renew-self as the worker does", "POST",
           "auth/token/renew-self", {}, token=LOGIN, expect=200)
    seq.ex("login token: renew-self by a duration", "POST",
           "auth/token/renew-self", {"increment": "90m"}, token=LOGIN,
           expect=200)
    seq.ex("login token: renew-self by no duration", "POST",
           "auth/token/renew-self", {"increment": "soon"}, token=LOGIN,
           expect=400)
    seq.ex("login token: lookup-self after renewal", "GET",
           "auth/token/lookup-self", token=LOGIN, expect=200)

    # what the worker does with it
    seq.ex("policy: capabilities-self of the login token", "POST",
           "sys/capabilities-self",
           {"paths": ["kv/data/authentik/t1", "kv/metadata/authentik/t1",
                      "kv/data/other/x", "sys/capabilities-self"]},
           token=LOGIN, expect=200)
    seq.ex("policy: read a missing secret", "GET", "kv/data/authentik/t1",
           token=LOGIN, expect=404)
    seq.ex("policy: first version with cas=0", "POST",
           "kv/data/authentik/t1",
           {"options": {"cas": 0}, "data": {"key": "k1"}}, token=LOGIN,
           expect=200)
    seq.ex("policy: provenance", "POST", "kv/metadata/authentik/t1",
           {"custom_metadata": {"ak2vault_token_pk": "7"}}, token=LOGIN,
           expect=204)
    seq.ex("policy: second version with cas=1", "POST",
           "kv/data/authentik/t1",
           {"options": {"cas": 1}, "data": {"key": "k2"}}, token=LOGIN,
           expect=200)
    seq.ex("policy: read the secret", "GET", "kv/data/authentik/t1",
           token=LOGIN, expect=200)
    seq.ex("policy: read its metadata", "GET", "kv/metadata/authentik/t1",
           token=LOGIN, expect=200)
    seq.ex("policy: list the prefix", "GET",
           "kv/metadata/authentik/?list=true", token=LOGIN, expect=200)
    # fake-vault performs what Vault refuses here: t2 is not used again
    seq.ex("policy: a secret to refuse deleting", "POST",
           "kv/data/authentik/t2", {"data": {"key": "k"}}, expect=200)
    seq.ex("policy: soft-delete without the delete capability", "DELETE",
           "kv/data/authentik/t2", token=LOGIN, expect=403)
    seq.ex("policy: purge without the delete capability", "DELETE",
           "kv/metadata/authentik/t2", token=LOGIN, expect=403)
    seq.ex("policy: read outside the prefix", "GET", "kv/data/other/x",
           token=LOGIN, expect=403)
    seq.ex("policy: write outside the prefix", "POST", "kv/data/other/y",
           {"data": {"k": "v"}}, token=LOGIN, expect=403)
    seq.ex("policy: sys/mounts", "GET", "sys/mounts", token=LOGIN,
           expect=403)
    seq.ex("policy: the root token soft-deletes it", "DELETE",
           "kv/data/authentik/t1", expect=204)
    seq.ex("policy: metadata after a delete by another", "GET",
           "kv/metadata/authentik/t1", token=LOGIN, expect=200)

    # fake-vault's deny_prefix fault stands for the policy's denial
    denied = ["kv/data/other/", "kv/data/authentik/t1", "sys/mounts"]
    FAKE.faults({"deny_prefix": denied})
    try:
        seq.ex("denied: read outside the prefix", "GET", "kv/data/other/x",
               token=LOGIN, expect=403)
        seq.ex("denied: write outside the prefix", "POST",
               "kv/data/other/y", {"data": {"k": "v"}}, token=LOGIN,
               expect=403)
        seq.ex("denied: soft-delete", "DELETE", "kv/data/authentik/t1",
               token=LOGIN, expect=403)
        seq.ex("denied: sys/mounts", "GET", "sys/mounts", token=LOGIN,
               expect=403)
        seq.ex("denied: capabilities-self", "POST", "sys/capabilities-self",
               {"paths": ["kv/data/other/x"]}, token=LOGIN, expect=200)
        seq.ex("denied: a bad token keeps its own 403", "GET",
               "kv/data/other/x", token=BAD_TOKEN, expect=403)
    finally:
        FAKE.faults(None)


@sequence
def test_kubernetes_login(seq):
    """The kubernetes login's refusals (a JWT is not reviewed)."""
    seq.ex("admin: enable kubernetes", "POST", "sys/auth/kubernetes",
           {"type": "kubernetes"})
    seq.ex("admin: configure kubernetes", "POST", "auth/kubernetes/config",
           {"kubernetes_host": "https://127.0.0.1:9",
            "disable_local_ca_jwt": True})
    seq.ex("admin: write the kubernetes role", "POST",
           "auth/kubernetes/role/ak2vault",
           {"bound_service_account_names": ["ak2vault"],
            "bound_service_account_namespaces": ["default"],
            "audience": "vault", "token_policies": ["ak2vault"]})
    seq.ex("k8s: no role", "POST", "auth/kubernetes/login",
           {"jwt": "a.b.c"}, token=NO_TOKEN, expect=400)
    seq.ex("k8s: no jwt", "POST", "auth/kubernetes/login",
           {"role": "ak2vault"}, token=NO_TOKEN, expect=400)
    seq.ex("k8s: unknown role", "POST", "auth/kubernetes/login",
           {"role": "nope", "jwt": "a.b.c"}, token=NO_TOKEN, expect=400)
    seq.ex("k8s: role a list", "POST", "auth/kubernetes/login",
           {"role": ["ak2vault"], "jwt": "a.b.c"}, token=NO_TOKEN)
    seq.ex("k8s: GET", "GET", "auth/kubernetes/login", token=NO_TOKEN,
           expect=405)
    seq.ex("k8s: a JWT that is no JWT", "POST", "auth/kubernetes/login",
           {"role": "ak2vault", "jwt": "a.b.c"}, token=NO_TOKEN)
    seq.ex("k8s: the JWT fake-vault knows", "POST", "auth/kubernetes/login",
           {"role": "ak2vault", "jwt": K8S_JWT}, token=NO_TOKEN)


@sequence
def test_unknown_paths_and_methods(seq):
    """Paths no mount or backend handles, and methods a path does not
    take."""
    seq.ex("path: no mount", "GET", "nomount/x", expect=404)
    seq.ex("path: nothing below /v1/", "GET", "", expect=404)
    seq.ex("path: a KV path with no route", "GET", "kv/foo", expect=404)
    seq.ex("path: a KV path with no route, written", "POST", "kv/foo",
           {"a": "b"}, expect=404)
    seq.ex("path: the root of data/", "GET", "kv/data", expect=404)
    seq.ex("path: data/ with nothing after it", "GET", "kv/data/",
           expect=404)
    seq.ex("path: the root of metadata/", "GET", "kv/metadata",
           expect=404)
    seq.ex("path: token backend, no such path", "GET",
           "auth/token/nothing", expect=404)
    seq.ex("path: approle backend, no such path", "GET",
           "auth/approle/nothing", expect=404)
    seq.ex("path: with ..", "GET", "kv/data/w/../first?version=1&x=a%26b",
           expect=307)
    seq.ex("path: with .", "GET", "kv/data/w/./first", expect=307)
    seq.ex("path: empty segment", "HEAD", "kv//data/w/first", expect=307)
    seq.ex("path: .. at the end", "DELETE", "kv/data/w/..", expect=307)
    seq.ex("sys/mounts with the root token", "GET", "sys/mounts",
           expect=200)
    seq.ex("health", "GET", "sys/health", token=NO_TOKEN, expect=200)
    seq.ex("health with activecode", "GET", "sys/health?activecode=204",
           token=NO_TOKEN, expect=204)
    seq.ex("health with POST", "POST", "sys/health", {}, token=NO_TOKEN,
           expect=405)
    seq.ex("method: HEAD", "HEAD", "kv/data/w/first", expect=405)
    seq.ex("method: OPTIONS on a KV path", "OPTIONS", "kv/metadata/w/first",
           expect=405)
    seq.ex("method: OPTIONS without a token", "OPTIONS", "kv/data/w/first",
           token=NO_TOKEN, expect=403)
    seq.ex("method: OPTIONS on no mount", "OPTIONS", "nomount/x",
           expect=404)
    seq.ex("method: OPTIONS on lookup-self", "OPTIONS",
           "auth/token/lookup-self", expect=405)
    seq.ex("method: unknown", "FOO", "kv/data/w/first", expect=405)
    seq.ex("method: LIST on lookup-self", "LIST", "auth/token/lookup-self",
           expect=404)
    seq.ex("method: DELETE on destroy/", "DELETE", "kv/destroy/w/first",
           expect=405)
    seq.ex("method: PATCH without its content type", "PATCH",
           "kv/data/w/first", {"data": {"k": "v"}}, expect=415)
    seq.ex("method: PATCH on metadata without its content type", "PATCH",
           "kv/metadata/w/first", {"max_versions": 1}, expect=415)
    seq.ex("PATCH a secret (merge patch)", "PATCH", "kv/data/w/patched",
           {"data": {"k": "v"}}, ctype="application/merge-patch+json")


@depends("test_approle_and_policy")  # the AppRole it logs in with
@sequence
def test_missing_mount(seq):
    """The KV mount gone (Vault: unmounted; fake-vault: the mount_missing
    fault), with the root token and a login token."""
    login(seq, "mount: login")
    seq.ex("admin: unmount kv", "DELETE", "sys/mounts/kv")
    FAKE.faults({"mount_missing": True})
    try:
        seq.ex("mount: read", "GET", "kv/data/authentik/t1", expect=404)
        seq.ex("mount: write", "POST", "kv/data/authentik/t1",
               {"options": {"cas": 0}, "data": {"k": "v"}}, expect=404)
        seq.ex("mount: metadata", "GET", "kv/metadata/authentik/t1",
               expect=404)
        seq.ex("mount: list", "GET", "kv/metadata/authentik/?list=true",
               expect=404)
        seq.ex("mount: read with the login token", "GET",
               "kv/data/authentik/t1", token=LOGIN, expect=404)
        seq.ex("mount: capabilities-self", "POST", "sys/capabilities-self",
               {"paths": ["kv/data/authentik/t1"]}, expect=200)
    finally:
        FAKE.faults(None)


@depends("test_approle_and_policy")
@sequence
def test_sealed(seq):
    """A sealed Vault (Vault: sys/seal; fake-vault: sealed_for_ms)."""
    login(seq, "sealed: login before")
    seq.ex("admin: seal", "PUT", "sys/seal")
    FAKE.faults({"sealed_for_ms": 600000})
    try:
        seq.ex("sealed: read", "GET", "kv/data/w/first", expect=503)
        seq.ex("sealed: write", "POST", "kv/data/w/first",
               {"data": {"k": "v"}}, expect=503)
        seq.ex("sealed: list", "GET", "kv/metadata/w/?list=true",
               expect=503)
        seq.ex("sealed: no token", "GET", "kv/data/w/first", token=NO_TOKEN,
               expect=503)
        seq.ex("sealed: unknown token", "GET", "kv/data/w/first",
               token=BAD_TOKEN, expect=503)
        seq.ex("sealed: lookup-self", "GET", "auth/token/lookup-self",
               token=LOGIN, expect=503)
        seq.ex("sealed: renew-self", "POST", "auth/token/renew-self", {},
               token=LOGIN, expect=503)
        seq.ex("sealed: login", "POST", "auth/approle/login",
               {"role_id": ROLE_ID, "secret_id": SECRET_ID},
               token=NO_TOKEN, expect=503)
        seq.ex("sealed: capabilities-self", "POST", "sys/capabilities-self",
               {"paths": ["kv/data/a"]}, expect=503)
        seq.ex("sealed: no mount", "GET", "nomount/x", expect=503)
        seq.ex("sealed: health", "GET", "sys/health", token=NO_TOKEN,
               expect=503)
        seq.ex("sealed: health with sealedcode", "GET",
               "sys/health?sealedcode=200", token=NO_TOKEN, expect=200)
    finally:
        FAKE.faults(None)


@depends("test_kv_writes", "test_kv_reads", "test_kv_metadata",
         "test_kv_list", "test_tokens", "test_approle_and_policy",
         "test_kubernetes_login", "test_missing_mount")
def test_worker_endpoints_covered():
    """Every Vault endpoint the worker calls was among the requests."""
    missing = ["%s %s (%s)" % (m, p, why) for (m, p), why in
               sorted(WORKER_CALLS.items()) if (m, p) not in
               Sequence.COVERED]
    assert not missing, "not compared: " + "; ".join(missing)


def test_no_secret_in_any_output():
    akvtest.stop_all()
    akvtest.assert_no_secrets(RUN.logs(), RUN.path)


if __name__ == "__main__":
    akvtest.run_tests(globals(), "vault_diff", setup=setup,
                      teardown=teardown)
