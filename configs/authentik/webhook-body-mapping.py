# ak2vault: webhook body mapping (authentik >= 2025.4) — the event as one
# Kafka REST proxy record.
#
# A notification webhook mapping, set as the transport's body mapping
# (webhook_mapping_body). authentik evaluates it for each notification with
# `notification` (its event is notification.event), `user` (the recipient)
# and `request` in scope, and POSTs what it returns as JSON to the
# transport's webhook URL, {proxy}/topics/{topic}; the header mapping
# (webhook-headers-mapping.py) supplies the REST proxy's content type.
#
# The record is the one forward-events-policy.py sends for the same event:
# key = the token's pk for events about a token (context.model,
# context.token or context.secret), else the event's pk; value = the event
# as the events API renders it, its context cleansed again with
# authentik's own rule. Keep the two files in step (the test
# tests/integration/test_authentik_policy.py compares their records).

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


event = notification.event
if event is None:
    return {"records": []}
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
return {"records": [{"key": token_pk(context) or event_pk, "value": value}]}
