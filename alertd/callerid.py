"""Caller IDs: which ``from`` numbers this account owns, and the default for a recipient.

One rule for the notify API, templates (API and dashboard) and every send:
a ``from`` must be one of ``provider.numbers``; with none configured, Twilio
owns nothing we know of (any ``from`` is refused) while the simulator
accepts any.
"""
from __future__ import annotations

from . import phones

SIMULATOR_FROM = "+15005550006"  # Twilio's own test-credentials "from" number


class CallerId:
    def __init__(self, provider_config):
        self.numbers = list(provider_config.numbers)
        self.kind = provider_config.kind
        self.default = self.numbers[0] if self.numbers else SIMULATOR_FROM

    def owns(self, number: str) -> bool:
        return number in self.numbers if self.numbers else self.kind != "twilio"

    def refusal(self, number: str | None) -> str | None:
        """The 403 message for a ``from`` this account does not own; None when it may be used."""
        if number and not self.owns(number):
            return f"from: caller ID {number} is not one of this account's numbers."
        return None

    def pick(self, to: str) -> str:
        """The default caller ID for ``to``: the account's first number with the same
        country calling code (a local-looking number is answered more often), else its first."""
        return phones.pick_caller_id(self.numbers, to, self.default)
