# ak2vault: which events the webhook path forwards (authentik >= 2025.4).
#
# An expression policy bound to the webhook path's notification rule: a
# notification (one POST to the REST proxy) is made for every event it
# passes. Unlike forward-events-policy.py it sends nothing itself.

# --- Settings ----------------------------------------------------------------
# Actions to forward, e.g. ("model_created", "model_updated",
# "model_deleted", "secret_rotate"); None forwards every event.
ACTIONS = None
# -----------------------------------------------------------------------------

event = request.context.get("event")
if event is None:
    return False
return ACTIONS is None or event.action in ACTIONS
