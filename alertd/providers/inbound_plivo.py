"""The Plivo XML of an inbound call: the dialect (inbound_voice.py) of ``kind: plivo``.

The same steps as TwiML in Plivo's words: <Speak> for <Say>, a <Dial> whose
<Number>s ring together and whose action gets DialStatus, a <Record> whose
action gets RecordUrl and RecordingDuration (its callbackUrl the same when the
file is ready; transcriptionUrl the text, with transcriptionType auto), and
<Hangup reason="rejected"/> for a number without an inbound entry. Plivo writes
numbers without the plus (15551230002); the flow reads them in E.164.
"""
from __future__ import annotations

from datetime import timedelta
from xml.sax.saxutils import escape, quoteattr

from .speech import phrases

media_type = "application/xml"
signs_url = True  # the signature covers the URL: the call and step in it
rings_at_once = True
transcribes = True  # transcriptionType auto: English only, charged by Plivo

_XML = '<?xml version="1.0" encoding="UTF-8"?>'
# DialStatus in the flow's words (Twilio's DialCallStatus)
DIAL_STATUS = {"completed": "completed", "busy": "busy", "failed": "failed", "timeout": "no-answer",
               "no-answer": "no-answer", "cancel": "canceled"}


def _e164(number: str) -> str:
    return "+" + number if number.isdigit() else number


def params(what: str | None, raw: dict) -> dict:
    """Plivo's fields in the flow's words."""
    if what is None:  # the answer URL: the call coming in
        return {"CallSid": raw.get("CallUUID", ""), "From": _e164(raw.get("From", "")),
                "To": _e164(raw.get("To", ""))}
    if what == "dial":
        status = raw.get("DialStatus", "")
        return {"DialCallStatus": DIAL_STATUS.get(status, status), "CallStatus": raw.get("CallStatus", ""),
                "DialCallDuration": raw.get("DialBLegDuration", "")}
    if what in ("recorded", "recording"):  # the Record action, or its callbackUrl
        url = raw.get("RecordUrl") or raw.get("record_url") or ""
        return {"RecordingUrl": url, "RecordingStatus": "completed",
                "RecordingDuration": raw.get("RecordingDuration") or raw.get("recording_duration") or ""}
    if what == "transcription":
        text = (raw.get("transcription") or "").strip()
        return {"TranscriptionText": text,
                "TranscriptionStatus": "completed" if text and not raw.get("error") else "failed"}
    return raw


def _speak(text: str, language: str) -> str:
    return f'<Speak voice="WOMAN" language={quoteattr(language)}>{escape(text)}</Speak>'


def _doc(*elements: str) -> str:
    return f"{_XML}<Response>{''.join(elements)}</Response>"


def dial(numbers: list[str], ring: timedelta, action: str, language: str, greeting: str | None = None,
         answered: list[str] | None = None, caller_id: str | None = None) -> str:
    """Ring ``numbers`` together for ``ring``; Plivo posts DialStatus to ``action`` and reads
    what comes next from its answer. The person rung sees the caller's number (Plivo's default);
    ``answered`` is not used: Plivo's action names no member of a group."""
    rung = "".join(f"<Number>{escape(n.lstrip('+'))}</Number>" for n in numbers)
    element = (f'<Dial action={quoteattr(action)} method="POST" redirect="true"'
               f' timeout="{int(ring.total_seconds())}">{rung}</Dial>')
    return _doc(_speak(greeting, language) if greeting else "", element)


def voicemail(language: str, max_length: timedelta, action: str, recording_callback: str,
              transcribe_callback: str | None, prompt: str | None = None, greeting: str | None = None) -> str:
    """The prompt, a beep and a recording; ``transcribe_callback`` asks for an automatic transcription."""
    attrs = (f'action={quoteattr(action)} method="POST" maxLength="{int(max_length.total_seconds())}"'
             f' playBeep="true" redirect="true" callbackUrl={quoteattr(recording_callback)} callbackMethod="POST"')
    if transcribe_callback:
        attrs += f' transcriptionType="auto" transcriptionUrl={quoteattr(transcribe_callback)}' \
                 ' transcriptionMethod="POST"'
    return _doc(_speak(greeting, language) if greeting else "", _speak(prompt or phrases(language)[0], language),
                f"<Record {attrs}/>", _speak(phrases(language)[1], language))


def goodbye(language: str, text: str | None = None, greeting: str | None = None) -> str:
    return _doc(_speak(greeting, language) if greeting else "", _speak(text or phrases(language)[2], language),
                "<Hangup/>")


def hangup() -> str:
    return _doc("<Hangup/>")


def reject() -> str:
    """For a call to a number with no inbound entry: refused before it is answered."""
    return _doc('<Hangup reason="rejected"/>')


def empty() -> str:
    return f"{_XML}<Response/>"
