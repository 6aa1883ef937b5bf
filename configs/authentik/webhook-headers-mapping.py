# ak2vault: webhook header mapping (authentik >= 2025.4) — the REST
# proxy's content type, and optionally its credential.
#
# Set as the transport's header mapping (webhook_mapping_headers). authentik
# sends these headers with the body mapping's JSON; requests then keeps our
# Content-Type instead of application/json, which the REST proxy would
# refuse (415).

# --- Settings ----------------------------------------------------------------
# Optional credential for the proxy, e.g. "Authorization". Its value comes
# from AUTH_VALUE_ENV, an environment variable of authentik's worker (kept
# out of authentik's database), or else from AUTH_VALUE (stored in the
# mapping, visible to whoever may view property mappings).
AUTH_HEADER = None
AUTH_VALUE = None
AUTH_VALUE_ENV = None
# -----------------------------------------------------------------------------

import os

headers = {
    "Content-Type": "application/vnd.kafka.json.v2+json",
    "Accept": "application/vnd.kafka.v2+json",
}
if AUTH_HEADER:
    credential = os.environ.get(AUTH_VALUE_ENV) if AUTH_VALUE_ENV else AUTH_VALUE
    if credential:
        headers[AUTH_HEADER] = credential
    else:
        ak_logger.warning(
            "ak2vault: no value for the proxy credential",
            header=AUTH_HEADER,
            env=AUTH_VALUE_ENV,
        )
return headers
