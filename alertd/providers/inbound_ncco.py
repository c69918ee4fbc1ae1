"""Vonage's NCCO (a JSON array of actions) for an inbound call: the dialect
(inbound_voice.py) of ``kind: vonage``.

The answer URL gets the call's uuid, from and to (E.164 without the plus);
each step is a ``talk`` and a ``connect`` with ``eventType: synchronous``, so
that the NCCO its eventUrl answers to a leg that was not answered (timeout,
unanswered, busy, failed, rejected) goes on with the call. A connect rings
one endpoint, so the flow rings a group's numbers one after another. The leg's
other events (started, ringing, answered) ask nothing of the call; its
``completed`` after an answer carries the duration. The voicemail is a
``record`` (beep, ends on silence, #, or the maximum length) whose eventUrl
gets the recording's URL, start and end; Vonage's transcription is not
asked for (its text is fetched later with the application's JWT), so a
voicemail is texted with its link alone.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from .speech import phrases

media_type = "application/json"
signs_url = False  # the JWT covers the body only: step URLs carry a token of the call
rings_at_once = False  # a connect action rings one endpoint
transcribes = False

# a connected leg's end states in the flow's words (Twilio's DialCallStatus)
DIAL_STATUS = {"timeout": "no-answer", "unanswered": "no-answer", "busy": "busy", "failed": "failed",
               "rejected": "failed", "cancelled": "canceled"}
END_ON_SILENCE = 3  # seconds of silence that end a voicemail


def _e164(number) -> str:
    text = str(number or "")
    return "+" + text if text.isdigit() else text


def _seconds_between(start, end) -> str:
    try:
        seconds = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except ValueError:
        return ""
    return str(max(0, round(seconds)))


def params(what: str | None, raw: dict) -> dict | None:
    """Vonage's fields in the flow's words; None for an event that asks nothing of the call."""
    if what is None:  # the answer URL: the call coming in
        return {"CallSid": str(raw.get("uuid") or ""), "From": _e164(raw.get("from")), "To": _e164(raw.get("to"))}
    if what == "event":  # the application's event URL: the inbound leg's own states
        return None
    if what == "dial":  # the connect's eventUrl: the rung leg's states
        status = str(raw.get("status") or "")
        if status == "completed":
            duration = str(raw.get("duration") or "0")
            if not duration.isdigit() or int(duration) <= 0:
                return None  # the end of a leg nobody answered: its own state came before
            return {"DialCallStatus": "completed", "DialCallDuration": duration}
        if status in DIAL_STATUS:
            return {"DialCallStatus": DIAL_STATUS[status]}
        return None  # started, ringing, answered: the leg is still ringing or talking
    if what in ("recorded", "recording"):  # the record action's eventUrl
        return {"RecordingUrl": str(raw.get("recording_url") or ""), "RecordingStatus": "completed",
                "RecordingDuration": _seconds_between(raw.get("start_time"), raw.get("end_time"))}
    return raw


def _talk(text: str, language: str) -> dict:
    return {"action": "talk", "text": text, "language": language}


def _doc(*actions) -> str:
    return orjson.dumps([a for a in actions if a]).decode()


def dial(numbers: list[str], ring: timedelta, action: str, language: str, greeting: str | None = None,
         answered: list[str] | None = None, caller_id: str | None = None) -> str:
    """Connect to ``numbers[0]`` (a connect rings one endpoint) for ``ring``; its states go to
    ``action``, whose answer goes on with the call when it was not answered. The person rung
    sees ``caller_id`` (the number called: Vonage shows only its own numbers)."""
    connect = {"action": "connect", "timeout": int(ring.total_seconds()), "eventType": "synchronous",
               "eventUrl": [action], "eventMethod": "POST",
               "endpoint": [{"type": "phone", "number": numbers[0].lstrip("+")}]}
    if caller_id:
        connect["from"] = caller_id.lstrip("+")
    return _doc(_talk(greeting, language) if greeting else None, connect)


def voicemail(language: str, max_length: timedelta, action: str, recording_callback: str,
              transcribe_callback: str | None, prompt: str | None = None, greeting: str | None = None) -> str:
    """The prompt, a beep and a recording, whose eventUrl is ``action``."""
    record = {"action": "record", "eventUrl": [action], "eventMethod": "POST", "beepStart": True,
              "endOnSilence": END_ON_SILENCE, "endOnKey": "#", "timeOut": int(max_length.total_seconds())}
    return _doc(_talk(greeting, language) if greeting else None,
                _talk(prompt or phrases(language)[0], language), record, _talk(phrases(language)[1], language))


def goodbye(language: str, text: str | None = None, greeting: str | None = None) -> str:
    """Say ``text`` (default: nobody could take the call); the call ends with the NCCO."""
    return _doc(_talk(greeting, language) if greeting else None, _talk(text or phrases(language)[2], language))


def hangup() -> str:
    return "[]"  # nothing more to do: the call ends


def reject() -> str:
    return "[]"


def empty() -> str:
    return ""
