#!/usr/bin/python3
"""blueprint — reads authentik blueprints and checks them against what
authentik's importer and serializers require, without authentik.

Facts restated from authentik's source (goauthentik/authentik, main after
2026.2: authentik/blueprints/v1/common.py and importer.py, the models'
serializers, blueprints/schema.json of 2025.12):

* A blueprint is a mapping with ``version: 1``, optional ``metadata`` (its
  ``name`` required when present, ``labels`` a mapping of strings),
  optional ``context`` and ``entries``: a list (or a mapping of lists) of
  entries, each with ``model`` ("app_label.model_name"), ``identifiers``
  (required for every model we use), and optional ``id``, ``state``
  (present, created, must_created, absent), ``conditions``, ``attrs``,
  ``permissions``.
* authentik's YAML loader knows these tags: !KeyOf (the pk of the instance
  an earlier entry with that ``id`` created or found), !Find, !FindObject,
  !Context, !Format, !Condition, !If, !Env, !File (a file's content, read
  on the authentik worker that applies the blueprint), !Enumerate, !Value,
  !Index, !AtIndex, !ParseJSON.
* Entries are applied in order, so !KeyOf must name an earlier entry. A
  !KeyOf whose target is a PolicyBindingModel (e.g. a notification rule)
  yields the binding target's pbm_uuid only in an entry whose model is
  spelled exactly "authentik_policies.policybinding".
* Each model's attrs are validated by its API serializer (unknown members
  are ignored, a missing required one fails the entry); the fields below
  are those serializers' writable fields, plus the blueprint-only
  ``permissions`` (role, user), ``password`` (user) and ``key`` (token).
"""

import yaml

TAGS = ("!KeyOf", "!Find", "!FindObject", "!Context", "!Format",
        "!Condition", "!If", "!Env", "!File", "!Enumerate", "!Value",
        "!Index", "!AtIndex", "!ParseJSON")


class Tag:
    def __init__(self, name, value):
        self.name = name
        self.value = value  # str for a scalar node, list for a sequence

    def __repr__(self):
        return "%s %r" % (self.name, self.value)


class Loader(yaml.SafeLoader):
    pass


def _construct(tag):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            return Tag(tag, loader.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return Tag(tag, loader.construct_sequence(node, deep=True))
        return Tag(tag, loader.construct_mapping(node, deep=True))
    return construct


for _t in TAGS:
    Loader.add_constructor(_t, _construct(_t))


def load(text):
    return yaml.load(text, Loader=Loader)  # noqa: S506 - our own loader


# Writable fields per model; "required" are those a create must carry (the
# serializer's required fields, or what its validate() demands).
MODELS = {
    "authentik_core.user": {
        "required": {"username", "name"},
        "fields": {"username", "name", "is_active", "last_login", "groups",
                   "roles", "email", "attributes", "path", "type",
                   "password", "password_hash", "permissions"},
    },
    "authentik_core.group": {
        "required": {"name"},
        "fields": {"name", "is_superuser", "parent", "parents", "users",
                   "attributes", "roles"},
    },
    "authentik_core.token": {
        # TokenSerializer.validate() without a request: user and intent.
        "required": {"identifier", "user", "intent"},
        "fields": {"managed", "identifier", "intent", "user", "description",
                   "expires", "expiring", "key"},
    },
    "authentik_rbac.role": {
        "required": {"name"},
        "fields": {"name", "permissions"},
    },
    "authentik_policies_expression.expressionpolicy": {
        "required": {"name", "expression"},
        "fields": {"name", "execution_logging", "expression"},
    },
    "authentik_policies.policybinding": {
        "required": {"target", "order"},
        "fields": {"policy", "group", "user", "target", "negate", "enabled",
                   "order", "timeout", "failure_result"},
    },
    "authentik_events.notificationrule": {
        "required": {"name"},
        # destination_group since 2025.8 (migration 0010 renamed group).
        "fields": {"name", "transports", "severity", "destination_group",
                   "destination_event_user", "group"},
    },
    "authentik_events.notificationtransport": {
        "required": {"name", "mode"},
        "fields": {"name", "mode", "webhook_url", "webhook_ca",
                   "webhook_mapping_body", "webhook_mapping_headers",
                   "email_subject_prefix", "email_template", "send_once"},
    },
    "authentik_events.notificationwebhookmapping": {
        "required": {"name", "expression"},
        "fields": {"name", "expression", "managed"},
    },
}
STATES = {"present", "created", "must_created", "absent"}
SEVERITIES = {"notice", "warning", "alert"}
TRANSPORT_MODES = {"local", "webhook", "webhook_slack", "email"}


def entries(doc):
    e = doc.get("entries") or []
    if isinstance(e, dict):
        return [x for v in e.values() for x in v]
    return list(e)


def walk_tags(value):
    if isinstance(value, Tag):
        yield value
        value = value.value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk_tags(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_tags(v)


def check(doc):
    """@returns a list of problems (empty when the blueprint is sound)."""
    problems = []
    if not isinstance(doc, dict):
        return ["not a mapping"]
    if doc.get("version") != 1:
        problems.append("version is %r, not 1" % doc.get("version"))
    meta = doc.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict) or not meta.get("name"):
            problems.append("metadata without a name")
        elif not all(isinstance(v, str) for v in
                     (meta.get("labels") or {}).values()):
            problems.append("metadata labels must be strings")
    seen_ids = {}
    for n, entry in enumerate(entries(doc)):
        where = "entry %d" % n
        if not isinstance(entry, dict):
            problems.append("%s is not a mapping" % where)
            continue
        model = entry.get("model")
        where = "entry %d (%s%s)" % (n, model, ", id " + entry["id"]
                                     if entry.get("id") else "")
        extra = set(entry) - {"model", "id", "state", "conditions",
                              "identifiers", "attrs", "permissions"}
        if extra:
            problems.append("%s: unknown members %s" % (where, sorted(extra)))
        rules = MODELS.get(model)
        if rules is None:
            problems.append("%s: model not known here" % where)
            continue
        state = entry.get("state", "present")
        if not isinstance(state, Tag) and state not in STATES:
            problems.append("%s: state %r" % (where, state))
        idents = entry.get("identifiers")
        if not isinstance(idents, dict) or not idents:
            problems.append("%s: no identifiers" % where)
            idents = {}
        attrs = entry.get("attrs") or {}
        merged = dict(idents, **attrs)
        for name in sorted(set(idents) | set(attrs)):
            if name not in rules["fields"]:
                problems.append("%s: %s is not a field of %s" % (
                    where, name, model))
        if state not in ("absent",):
            for name in sorted(rules["required"] - set(merged)):
                problems.append("%s: required %s missing" % (where, name))
        for tag in walk_tags(entry):
            if tag.name == "!KeyOf":
                if tag.value not in seen_ids:
                    problems.append("%s: !KeyOf %s names no earlier entry" % (
                        where, tag.value))
        if entry.get("id"):
            if entry["id"] in seen_ids:
                problems.append("%s: id used twice" % where)
            seen_ids[entry["id"]] = model
        # Model-specific values.
        if model == "authentik_events.notificationrule":
            sev = merged.get("severity", "notice")
            if sev not in SEVERITIES:
                problems.append("%s: severity %r" % (where, sev))
        if model == "authentik_events.notificationtransport":
            if merged.get("mode") not in TRANSPORT_MODES:
                problems.append("%s: mode %r" % (where, merged.get("mode")))
            if merged.get("mode") == "webhook" and not merged.get(
                    "webhook_url"):
                problems.append("%s: a webhook transport needs webhook_url"
                                % where)
        if model == "authentik_policies.policybinding":
            targets = [merged.get(k) for k in ("policy", "group", "user")
                       if merged.get(k) is not None]
            if len(targets) != 1:
                problems.append("%s: exactly one of policy, group, user" %
                                where)
            target = merged.get("target")
            if isinstance(target, Tag) and target.name == "!KeyOf" and \
                    seen_ids.get(target.value) not in (
                        "authentik_events.notificationrule",):
                problems.append("%s: target %s is not a notification rule" %
                                (where, target.value))
        if model == "authentik_core.token":
            if merged.get("intent") not in ("api", "app_password"):
                problems.append("%s: intent %r (the API accepts api and "
                                "app_password)" % (where,
                                                   merged.get("intent")))
        if model == "authentik_core.user" and merged.get("type") not in (
                None, "internal", "external", "service_account"):
            problems.append("%s: user type %r" % (where, merged.get("type")))
    return problems


def find(doc, model, **identifiers):
    """Entries of \\p model whose identifiers include \\p identifiers."""
    out = []
    for e in entries(doc):
        if e.get("model") != model:
            continue
        ids = e.get("identifiers") or {}
        if all(ids.get(k) == v for k, v in identifiers.items()):
            out.append(e)
    return out


def by_id(doc, entry_id):
    for e in entries(doc):
        if e.get("id") == entry_id:
            return e
    return None
