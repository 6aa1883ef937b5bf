#!/usr/bin/python3
"""akeval — runs authentik expressions the way authentik runs them, without
authentik.

What is modelled, from authentik's source (goauthentik/authentik, main after
2026.2; the facts are restated here so the project stands alone):

* BaseEvaluator (authentik/lib/expression/evaluator.py): the expression is
  indented into ``def handler(<context names>):`` followed by
  ``result = handler(<context names>)``, compiled with the policy's or
  mapping's name as file name and exec'd with the evaluator's globals and
  the context as locals; the handler's parameters are the context keys in
  insertion order, each passed through sanitize_arg() (Django's slugify,
  then ``:``, ``.`` and ``-`` become ``_``). The globals every expression
  sees: ak_call_policy, ak_create_event, ak_create_jwt, ak_create_jwt_raw,
  ak_is_group_member, ak_logger (a structlog logger bound to the name),
  ak_send_email, ak_user_by, ak_user_has_authenticator, ip_address,
  ip_network, list_flatten, regex_match, regex_replace, requests (a
  requests.Session with authentik's User-Agent and a default timeout),
  resolve_dns, reverse_dns, slugify.
* PolicyEvaluator (authentik/policies/expression/evaluator.py): context
  ak_message, ak_user_has_authenticator, then from the PolicyRequest
  ak_is_sso_flow, (ak_client_ip, http_request when there is an HTTP
  request), request, context. (ak_client_ip is passed here for an Event
  request.obj too, from its client_ip, as later releases are said to do;
  nothing here uses it.) A result of None fails with a warning, any
  truthy result passes; an exception becomes a PolicyException (the
  policy process records policy_exception and uses the binding's
  failure_result).
* The notification rule task (authentik/events/tasks.py,
  event_trigger_handler): the saved Event, loaded again from the database,
  is request.obj and request.context["event"]; request.user is the event's
  user or the anonymous user; the rule's policies run in "any" mode and a
  rule without passing policies sends nothing.
* PropertyMappingEvaluator (authentik/core/expression/evaluator.py): context
  user, request (a PolicyRequest whose context holds the keyword
  arguments), then the keyword arguments; the global SkipObject.
* NotificationTransport.send_webhook (authentik/events/models.py): body and
  header mappings are evaluated with user=notification.user, request=None,
  notification=notification; both results go through sanitize_item();
  the body is POSTed with requests' json= (requests sets Content-Type
  application/json only when the headers carry none) and
  raise_for_status(); a failure raises NotificationTransportError, which
  the task queue retries (5 times by default, exponential backoff).
* sanitize_item (authentik/events/utils.py): dicts and lists walked (lists
  drop falsy items), UUID -> 32 hex digits, datetime -> ISO 8601 with
  ``Z``.

The Event object carries the Event model's attributes (event_uuid as pk, a
uuid.UUID; user, context and brand as the dicts the JSON columns hold;
action, app; client_ip a string or None; created and expires aware
datetimes).
"""

import ipaddress
import re
import textwrap
import threading
import time
import unicodedata
import uuid
from datetime import date, datetime, timezone

import requests

AUTHENTIK_VERSION = "2026.2.0"


# ---------------------------------------------------------------------------
# Models


class User:
    def __init__(self, pk=None, username="AnonymousUser", email="", name=""):
        self.pk = pk
        self.username = username
        self.email = email
        self.name = name

    def __str__(self):
        return self.username


ANONYMOUS = User(pk=None)


class Event:
    """authentik.events.models.Event, as a rule's task loads it."""

    def __init__(self, event_uuid, user, action, app, context, client_ip,
                 created, expires, brand):
        self.event_uuid = event_uuid
        self.user = user
        self.action = action
        self.app = app
        self.context = context
        self.client_ip = client_ip
        self.created = created
        self.expires = expires
        self.brand = brand
        self.expiring = True

    @property
    def pk(self):
        return self.event_uuid

    @property
    def summary(self):
        if "message" in self.context:
            return self.context["message"]
        return "%s: %s" % (self.action, self.context)

    @staticmethod
    def from_api(obj):
        """The Event whose API rendering (GET /api/v3/events/events/) is
        \\p obj: what the database holds for it."""
        return Event(uuid.UUID(obj["pk"]), obj["user"], obj["action"],
                     obj["app"], obj["context"], obj["client_ip"],
                     _parse_time(obj["created"]), _parse_time(obj["expires"]),
                     obj["brand"])


def _parse_time(text):
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class PolicyRequest:
    def __init__(self, user, obj=None, context=None, http_request=None):
        self.user = user
        self.obj = obj
        self.context = dict(context or {})
        self.http_request = http_request
        self.debug = False


class PolicyResult:
    def __init__(self, passing, messages=(), raw_result=None, error=None):
        self.passing = passing
        self.messages = list(messages)
        self.raw_result = raw_result
        self.error = error  # the exception a PolicyException wrapped


class Notification:
    def __init__(self, event, user, severity="notice"):
        self.event = event
        self.user = user
        self.severity = severity
        self.body = event.summary if event is not None else ""


class NotificationTransportError(Exception):
    pass


class SkipObject(Exception):
    pass


# ---------------------------------------------------------------------------
# Logging and HTTP


class Logger:
    """A structlog-like logger: records (level, event, fields) and writes
    one line per call to \\p path (so the harness's secret scan sees
    whatever authentik would have logged). As in structlog's bound loggers,
    the message parameter is called ``event``: a field named event=...
    raises TypeError there and here."""

    def __init__(self, name, path=None):
        self.name = name
        self.path = path
        self.records = []
        self._lock = threading.Lock()

    def bind(self, **_):
        return self

    def _log(self, level, event, **fields):
        with self._lock:
            self.records.append((level, event, fields))
            if self.path:
                with open(self.path, "a") as f:
                    f.write("%s [%s] %s %s\n" % (
                        level, self.name, event,
                        " ".join("%s=%r" % kv for kv in sorted(
                            fields.items()))))

    def debug(self, event, **kw):
        self._log("debug", event, **kw)

    def info(self, event, **kw):
        self._log("info", event, **kw)

    def warning(self, event, **kw):
        self._log("warning", event, **kw)

    def error(self, event, **kw):
        self._log("error", event, **kw)

    def exception(self, event, **kw):
        self._log("error", event, **kw)

    warn = warning
    critical = error


class TimeoutSession(requests.Session):
    """authentik.lib.utils.http.get_http_session(): a requests session that
    applies a default timeout (authentik's http_timeout setting) to every
    request made without one, with authentik's User-Agent. Unlike
    authentik's it ignores proxy environment variables, so a test never
    reaches its loopback endpoint through a proxy."""

    def __init__(self, default_timeout=30):
        super().__init__()
        self.default_timeout = default_timeout
        self.headers["User-Agent"] = "authentik@%s" % AUTHENTIK_VERSION
        self.trust_env = False

    def send(self, request, **kwargs):
        if not kwargs.get("timeout") and self.default_timeout:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, **kwargs)


# ---------------------------------------------------------------------------
# The evaluator


def slugify(value):
    """django.utils.text.slugify."""
    value = unicodedata.normalize("NFKD", str(value)).encode(
        "ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def sanitize_arg(name):
    return re.sub(r"[:.-]", "_", slugify(name))


def wrap_expression(expression, context):
    names = ",".join(n for n in (sanitize_arg(k) for k in context) if n)
    return "def handler(%s):\n%s\nresult = handler(%s)" % (
        names, textwrap.indent(expression, "    "), names)


def _not_here(name):
    def call(*_, **__):
        raise NotImplementedError("%s needs authentik's database" % name)
    return call


def _regex_match(value, regex):
    return re.search(regex, value) is not None


def _flatten(value):
    if isinstance(value, list):
        return value[0] if value else None
    return value


def base_globals(logger, session):
    return {
        "ak_call_policy": _not_here("ak_call_policy"),
        "ak_create_event": _not_here("ak_create_event"),
        "ak_create_jwt": _not_here("ak_create_jwt"),
        "ak_create_jwt_raw": _not_here("ak_create_jwt_raw"),
        "ak_is_group_member": _not_here("ak_is_group_member"),
        "ak_logger": logger,
        "ak_send_email": _not_here("ak_send_email"),
        "ak_user_by": _not_here("ak_user_by"),
        "ak_user_has_authenticator": _not_here("ak_user_has_authenticator"),
        "ip_address": ipaddress.ip_address,
        "ip_network": ipaddress.ip_network,
        "list_flatten": _flatten,
        "regex_match": _regex_match,
        "regex_replace": lambda v, r, s: re.sub(r, s, v),
        "requests": session,
        "resolve_dns": _not_here("resolve_dns"),
        "reverse_dns": _not_here("reverse_dns"),
        "slugify": slugify,
    }


def evaluate(expression, filename, globals_, context):
    """BaseEvaluator.evaluate(): compile the wrapped expression, exec it,
    return result (exceptions propagate, as authentik re-raises them)."""
    code = compile(wrap_expression(expression, context), filename, "exec")
    local = {sanitize_arg(k): v for k, v in context.items()}
    exec(code, dict(globals_), local)  # noqa: S102 - that is the point
    return local["result"]


def evaluate_policy(expression, request, name, logger, session):
    """ExpressionPolicy.passes(request) for a policy named \\p name."""
    messages = []
    context = {
        "ak_message": messages.append,
        "ak_user_has_authenticator": _not_here("ak_user_has_authenticator"),
        # PLAN_CONTEXT_SSO of authentik/flows/planner.py
        "ak_is_sso_flow": request.context.get("is_sso", False),
    }
    if isinstance(request.obj, Event):
        context["ak_client_ip"] = ipaddress.ip_address(
            request.obj.client_ip or "255.255.255.255")
    context["request"] = request
    context["context"] = request.context
    try:
        result = evaluate(expression, name, base_globals(logger, session),
                          context)
    except Exception as exc:  # noqa: BLE001 - a PolicyException in authentik
        return PolicyResult(False, messages, error=exc)
    return PolicyResult(bool(result), messages, raw_result=result)


def rule_request(event):
    """The PolicyRequest a notification rule's task builds for \\p event."""
    user = ANONYMOUS
    if event.user.get("pk") is not None:
        user = User(event.user["pk"], event.user.get("username", ""),
                    event.user.get("email", ""))
    return PolicyRequest(user, obj=event, context={"event": event})


def evaluate_mapping(expression, name, logger, session, user=None,
                     request=None, **kwargs):
    """PropertyMapping.evaluate(user, request, **kwargs)."""
    req = PolicyRequest(user or User())
    context = {}
    if user is not None:
        context["user"] = user
    if request is not None:
        req.http_request = request
        context["http_request"] = request
    req.context.update(kwargs)
    context["request"] = req
    context.update(kwargs)
    globals_ = base_globals(logger, session)
    globals_["SkipObject"] = SkipObject
    return evaluate(expression, name, globals_, context)


def sanitize_item(value):
    """authentik.events.utils.sanitize_item for the types mappings return."""
    if isinstance(value, dict):
        return {k: sanitize_item(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [x for x in (sanitize_item(v) for v in value) if x]
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    return value


def send_webhook(url, body_mapping, headers_mapping, notification, logger,
                 session):
    """NotificationTransport.send_webhook() with both mappings set.
    @returns (status, text); raises NotificationTransportError."""
    body = sanitize_item(evaluate_mapping(
        body_mapping, "ak2vault-webhook-body", logger, session,
        user=notification.user, request=None, notification=notification))
    headers = sanitize_item(evaluate_mapping(
        headers_mapping, "ak2vault-webhook-headers", logger, session,
        user=notification.user, request=None, notification=notification))
    try:
        response = session.post(url, json=body, headers=headers)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise NotificationTransportError(type(exc).__name__) from None
    return response.status_code, response.text


def deliver(send, max_retries=5, backoff=0.05):
    """The task queue's retries around one notification_transport task:
    \\p send is tried up to 1 + \\p max_retries times while it raises
    NotificationTransportError. @returns the number of attempts made, and
    raises the last error when all failed."""
    for attempt in range(max_retries + 1):
        try:
            send()
            return attempt + 1
        except NotificationTransportError:
            if attempt == max_retries:
                raise
            time.sleep(backoff * (2 ** attempt))
    return max_retries + 1
