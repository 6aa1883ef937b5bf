# ak2vault: publish every authentik event to Kafka through a REST proxy.
#
# An authentik expression policy (the body of a function: authentik wraps
# it into `def handler(...)` and runs it). Bound to a notification rule,
# authentik runs it once for every event it records, with the saved Event
# in request.context["event"]. It sends that event, shaped as
# GET /api/v3/events/events/ returns it, as one Kafka record to a Kafka
# REST proxy or HTTP bridge (Confluent REST Proxy v2, Strimzi Kafka Bridge):
#
#   POST {PROXY_URL}/topics/{TOPIC}
#   Content-Type: application/vnd.kafka.json.v2+json
#   {"records": [{"key": "<token pk or event pk>", "value": {<event>}}]}
#
# The key is the token's pk (32 hex digits, as authentik writes it into
# the event) for events about an API token or app password, wherever the
# event names it (context.model, context.token for secret_rotate,
# context.secret for secret_view), so all events of one token land in one
# partition, in order; any other event is keyed by its own pk.
#
# It always returns False: the rule never creates a notification, this is
# a hook, not a filter. A failed send (proxy down or slow, refused record)
# is logged with ak_logger and dropped: there is no retry here. ak2vault
# reads each token's current state from authentik's API, so the next
# event of that token (or a resync) repairs a lost one; if that is not
# enough, use the webhook transport path (README.md beside this file).
#
# Nothing secret is added: authentik never puts a token key into an event.
# As a second line of defence the event's context is cleansed again with
# authentik's own rule (any value under a name containing api, auth,
# token, key, secret, pass, signature or http_cookie becomes
# "********************"; nested objects are walked, not masked), which
# changes nothing in an event authentik recorded itself. Failures are
# logged by exception class and HTTP status only, never with the
# credential, URL or body.

# --- Settings ----------------------------------------------------------------
# Base URL of the REST proxy or bridge (no trailing /topics).
PROXY_URL = "http://kafka-rest-proxy:8082"
# Topic the ak2vault workers consume (kafka.topic in their configuration).
TOPIC = "authentik.events"
# Seconds to wait for the proxy to connect, and again for its answer. The
# policy runs in authentik's worker once per event: keep this short.
TIMEOUT = 2.0
# Actions to forward, e.g. ("model_created", "model_updated",
# "model_deleted", "secret_rotate"); None forwards every event.
ACTIONS = None
# Optional credential for the proxy, e.g. "Authorization". Its value comes
# from AUTH_VALUE_ENV, an environment variable of authentik's worker (kept
# out of authentik's database), or else from AUTH_VALUE (stored in the
# policy, visible to whoever may view policies).
AUTH_HEADER = None
AUTH_VALUE = None
AUTH_VALUE_ENV = None
# -----------------------------------------------------------------------------

import json
import os
import re
from datetime import timezone

MASK = "********************"
HIDDEN = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE", re.I)
ALLOWED = re.compile(r"passing|password_change_date|^auth_method(_args)?$", re.I)


def cleanse(name, value):
    # authentik's cleanse_item(): objects are walked, lists keep their
    # name, other values under a sensitive name are masked.
    if isinstance(value, dict):
        return {k: cleanse(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cleanse(name, v) for v in value]
    if isinstance(name, str) and HIDDEN.search(name) and not ALLOWED.search(name):
        return MASK
    return value


def timestamp(value):
    # DRF's DateTimeField output, as the events API renders it.
    if value is None or isinstance(value, str):
        return value
    text = value.astimezone(timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def token_pk(context):
    for name in ("model", "token", "secret"):
        ref = context.get(name)
        if (
            isinstance(ref, dict)
            and ref.get("app") == "authentik_core"
            and ref.get("model_name") == "token"
            and ref.get("pk")
        ):
            return str(ref["pk"])
    return None


event = request.context.get("event")
if event is None:
    ak_logger.info("ak2vault: no event in the policy request, nothing to forward")
    return False
if ACTIONS is not None and event.action not in ACTIONS:
    return False

try:
    context = event.context if isinstance(event.context, dict) else {}
    event_pk = str(event.pk)
    value = {
        "pk": event_pk,
        "user": event.user,
        "action": event.action,
        "app": event.app,
        "context": cleanse(None, context),
        "client_ip": event.client_ip,
        "created": timestamp(event.created),
        "expires": timestamp(event.expires),
        "brand": event.brand,
    }
    key = token_pk(context) or event_pk
    headers = {
        "Content-Type": "application/vnd.kafka.json.v2+json",
        "Accept": "application/vnd.kafka.v2+json",
    }
    if AUTH_HEADER:
        credential = os.environ.get(AUTH_VALUE_ENV) if AUTH_VALUE_ENV else AUTH_VALUE
        if not credential:
            ak_logger.warning(
                "ak2vault: event not forwarded: no value for the proxy credential",
                event_pk=event_pk,
                action=event.action,
                header=AUTH_HEADER,
                env=AUTH_VALUE_ENV,
            )
            return False
        headers[AUTH_HEADER] = credential
    body = json.dumps({"records": [{"key": key, "value": value}]}, default=str)
except Exception as exc:
    ak_logger.warning(
        "ak2vault: event not forwarded: cannot build the record",
        event_pk=str(getattr(event, "pk", "")),
        error=type(exc).__name__,
    )
    return False

try:
    response = requests.post(
        PROXY_URL.rstrip("/") + "/topics/" + TOPIC,
        data=body.encode("utf-8"),
        headers=headers,
        timeout=TIMEOUT,
    )
except Exception as exc:
    ak_logger.warning(
        "ak2vault: event not forwarded: proxy unreachable or too slow",
        event_pk=event_pk,
        action=event.action,
        topic=TOPIC,
        error=type(exc).__name__,
    )
    return False

try:
    answer = response.json()
except ValueError:
    answer = None
if not isinstance(answer, dict):
    answer = {}
if response.status_code >= 300:
    ak_logger.warning(
        "ak2vault: event not forwarded: proxy refused it",
        event_pk=event_pk,
        action=event.action,
        topic=TOPIC,
        status=response.status_code,
        error_code=answer.get("error_code"),
    )
    return False
for offset in answer.get("offsets") or []:
    if isinstance(offset, dict) and offset.get("error_code") is not None:
        ak_logger.warning(
            "ak2vault: event not forwarded: proxy could not write the record",
            event_pk=event_pk,
            action=event.action,
            topic=TOPIC,
            status=response.status_code,
            error_code=offset.get("error_code"),
        )
        return False
ak_logger.debug(
    "ak2vault: event forwarded", event_pk=event_pk, action=event.action, topic=TOPIC
)
return False
