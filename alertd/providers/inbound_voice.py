"""The seam between the one flow of an inbound call (alertd/inbound/calls.py) and
each provider's way of answering it: a *dialect*, chosen by the provider's kind.

A dialect is a module that has:

- ``media_type``: what its answers are (XML, or JSON for Vonage's NCCO);
- ``signs_url``: whether the provider's signature covers the URL (so the call
  and step in a step's URL); if not, each step's URL carries a token of the call;
- ``rings_at_once``: whether one dial rings all of a step's numbers together
  (TwiML, Plivo XML); if not (an NCCO connects to one endpoint), the flow rings
  them one after another, each for the entry's ``ring``;
- ``transcribes``: whether a voicemail's transcription arrives in a callback;
- ``params(what, raw)``: a request's fields in the flow's words (TwiML's: CallSid,
  From, To, DialCallStatus, DialCallDuration, CallStatus, RecordingUrl,
  RecordingDuration, RecordingStatus, TranscriptionText, TranscriptionStatus),
  or None for a request that asks nothing of the call (answered with ``empty()``);
- the answers: ``dial``, ``voicemail``, ``goodbye``, ``hangup``, ``reject``, ``empty``.
"""
from __future__ import annotations

from types import ModuleType

TWIML_KINDS = ("twilio", "signalwire", "telnyx", "simulator")  # TwiML itself, LaML, TeXML
KINDS = (*TWIML_KINDS, "plivo", "vonage")  # every kind whose numbers route inbound calls


def dialect(kind: str) -> ModuleType | None:
    """The dialect inbound calls through a provider of ``kind`` are answered in; None: none."""
    # each dialect loads only when a provider of its kind answers a call
    if kind in TWIML_KINDS:
        from . import inbound_twiml  # each dialect loads only when a call comes in through its kind
        return inbound_twiml
    if kind == "plivo":
        from . import inbound_plivo  # each dialect loads only when a call comes in through its kind
        return inbound_plivo
    if kind == "vonage":
        from . import inbound_ncco  # each dialect loads only when a call comes in through its kind
        return inbound_ncco
    return None
