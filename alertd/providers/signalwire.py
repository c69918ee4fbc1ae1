"""SignalWire through its Compatibility (LaML) API: Twilio's REST shape at
https://SPACE.signalwire.com/api/laml/2010-04-01/Accounts/PROJECT_ID/...

The twilio library speaks that shape already, pointed at the space's
/api/laml base (SignalWire's own Python SDK wraps the same library), so this
adapter is the Twilio one with SignalWire's credentials; callbacks are signed
with the project's signing key in X-SignalWire-Signature (Twilio's algorithm;
X-Twilio-Signature accepted as its alias).
"""
from __future__ import annotations

from .laml import LamlCallbacks
from .twilio import TwilioProvider

HEADERS = ("x-signalwire-signature", "x-twilio-signature")


class SignalWireProvider(TwilioProvider, LamlCallbacks):
    twilio_hosts = False  # a TWILIO_REGION in the environment must not rename the space's host

    def __init__(self, project_id: str, api_token: str, signing_key: str, api_base_url: str, *,
                 timeout: float = 10.0, max_concurrency: int = 10):
        TwilioProvider.__init__(self, project_id, api_token, api_base_url.rstrip("/") + "/api/laml",
                                timeout=timeout, max_concurrency=max_concurrency)
        LamlCallbacks.__init__(self, signing_key, HEADERS)
        self.configured = bool(project_id and api_token and signing_key)


def build(entry, timeout: float) -> SignalWireProvider:
    return SignalWireProvider(entry.project_id, entry.api_token, entry.signing_key, entry.api_base_url,
                              timeout=timeout, max_concurrency=entry.max_concurrency)
