"""The TwiML of an inbound call (alertd/inbound), built with the twilio library's TwiML builder.

Every answer alertd gives to an inbound call through a provider that reads
TwiML-compatible XML (Twilio; SignalWire's LaML, Telnyx's TeXML) is made here:
one dialect of inbound_voice.py, as inbound_plivo.py (Plivo XML) and
inbound_ncco.py (Vonage's NCCO) are. It lives with the providers because only
they import the twilio library.
"""
from __future__ import annotations

from datetime import timedelta

from twilio.twiml.voice_response import Dial, VoiceResponse

from .speech import phrases, voice_for

# how the flow reads the answers (alertd/providers/inbound_voice.py): a document per request
media_type = "application/xml"
signs_url = True  # the signature covers the URL: the call and step in it
rings_at_once = True  # a <Dial> rings all of a step's <Number>s together
transcribes = True


def params(what: str | None, raw: dict) -> dict:
    """The request's fields in the flow's words: TwiML's own (CallSid, DialCallStatus, RecordingUrl...)."""
    return raw


def _say(response: VoiceResponse, text: str, language: str) -> None:
    response.say(text, voice=voice_for("alice", language), language=language)


def dial(numbers: list[str], ring: timedelta, action: str, language: str, greeting: str | None = None,
         answered: list[str] | None = None, caller_id: str | None = None) -> str:
    """Ring ``numbers`` at once for ``ring``; the provider posts the outcome to ``action``,
    and, when given, to ``answered[i]`` when ``numbers[i]`` picks up (so a group's log names who did).
    ``caller_id`` (the number called) is not used: the person rung sees who is calling.

    answerOnBridge: the caller hears ringing, not a connected silence, until someone answers."""
    response = VoiceResponse()
    if greeting:
        _say(response, greeting, language)
    element = Dial(timeout=int(ring.total_seconds()), action=action, method="POST", answer_on_bridge=True)
    for i, number in enumerate(numbers):
        if answered:
            element.number(number, status_callback=answered[i], status_callback_event="answered",
                           status_callback_method="POST")
        else:
            element.number(number)
    response.append(element)
    return str(response)


def voicemail(language: str, max_length: timedelta, action: str, recording_callback: str,
              transcribe_callback: str | None, prompt: str | None = None, greeting: str | None = None) -> str:
    """The prompt, a beep and a recording; ``transcribe_callback`` asks for a transcription."""
    response = VoiceResponse()
    if greeting:
        _say(response, greeting, language)
    _say(response, prompt or phrases(language)[0], language)
    kwargs = {}
    if transcribe_callback:
        kwargs = {"transcribe": True, "transcribe_callback": transcribe_callback}
    response.record(max_length=int(max_length.total_seconds()), play_beep=True, action=action, method="POST",
                    recording_status_callback=recording_callback, recording_status_callback_event="completed",
                    recording_status_callback_method="POST", **kwargs)
    _say(response, phrases(language)[1], language)  # played only when the recording ends without the action
    return str(response)


def goodbye(language: str, text: str | None = None, greeting: str | None = None) -> str:
    """Say ``text`` (default: nobody could take the call) and hang up."""
    response = VoiceResponse()
    if greeting:
        _say(response, greeting, language)
    _say(response, text or phrases(language)[2], language)
    response.hangup()
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty() -> str:
    """The answer to a request that asks nothing of the call."""
    return str(VoiceResponse())


def reject() -> str:
    """For a call to a number with no inbound entry: refused before it is answered (no charge)."""
    response = VoiceResponse()
    response.reject()
    return str(response)
