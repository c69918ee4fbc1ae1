"""Live call routing: a call to one of the provider's numbers rings whoever is on call.

- ``routing``: who is rung, in order, resolved when the call comes in.
- ``providers/inbound_voice.py``: the answers to the provider, in the dialect
  of its kind: TwiML (``inbound_twiml``: Twilio, SignalWire's LaML, Telnyx's
  TeXML), Plivo XML (``inbound_plivo``), Vonage's NCCO (``inbound_ncco``).
- ``calls``: the flow (answer, each step's result, the voicemail) and its trace
  in the trigger log; a voicemail becomes a trigger.
- ``listen``: the voicemail's listening link, fetched with the account's credentials.
- ``simulate``: the simulator plays an inbound call through the same flow.

The HTTP side (signed webhooks) is api/inbound.py.
"""
