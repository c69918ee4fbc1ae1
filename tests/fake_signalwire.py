"""A fake SignalWire space: the Compatibility (LaML) API is Twilio's REST shape
under /api/laml, with the project id and API token as credentials; callbacks
are signed with the project's signing key in X-SignalWire-Signature."""
from __future__ import annotations

from twilio.request_validator import RequestValidator

from fake_twilio import FakeTwilio


class FakeSignalWire(FakeTwilio):
    PREFIX = "/api/laml"
    SIGNATURE_HEADER = "X-SignalWire-Signature"

    def __init__(self, project_id: str = "8f0a1c2e-0000-4000-8000-000000000000", api_token: str = "PT-token",
                 signing_key: str = "PSK_signing_key_test"):
        super().__init__(account_sid=project_id, auth_token=api_token)
        self.signing_key = signing_key
        self.validator = RequestValidator(signing_key)  # SignalWire signs with the signing key, not the token
