"""The one registry of provider kinds: a ``providers:`` entry in, its adapter and callback handler out.

Each kind's module is imported only when an entry names it, so a daemon
with Twilio alone never loads the others' clients (and the CLI none).
"""
from __future__ import annotations

from typing import Any


def adapter(entry, clock) -> tuple[Any, Any]:
    """(the Provider, the object whose ``callback(what, inbound, hooks, prepare)`` answers
    its callbacks, or None for a provider that sends none) for one entry of
    alertd/provider_config.py. ``clock`` has ``timestamp()``: signature ages are read from it."""
    timeout = entry.timeout.total_seconds()
    if entry.kind == "simulator":
        from .simulator import SimulatorProvider  # each kind loads only when an entry names it
        return SimulatorProvider(press=entry.simulate_press), None
    if entry.kind == "twilio":
        # each kind loads only when an entry names it
        from .laml import LamlCallbacks
        from .twilio import TwilioProvider
        twilio = TwilioProvider(entry.account_sid, entry.auth_token, entry.api_base_url, timeout=timeout,
                                max_concurrency=entry.max_concurrency)
        return twilio, LamlCallbacks(entry.auth_token)
    if entry.kind == "signalwire":
        from . import signalwire  # each kind loads only when an entry names it
        made = signalwire.build(entry, timeout)
    elif entry.kind == "telnyx":
        from . import telnyx  # each kind loads only when an entry names it
        made = telnyx.build(entry, timeout, clock)
    elif entry.kind == "vonage":
        from . import vonage  # each kind loads only when an entry names it
        made = vonage.build(entry, timeout, clock)
    else:
        from . import plivo  # each kind loads only when an entry names it
        made = plivo.build(entry, timeout)
    return made, made
