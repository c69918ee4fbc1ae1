"""The simulator plays an inbound call: the flow of calls.py, driven by its own TwiML.

Each answer is parsed as the provider would read it: a <Dial> rings its
<Number>s (the one named in ``answer`` picks up; nobody does with "nobody"),
its action URL says which step comes next, and a <Record> is played as a
message (``message``, also used as the transcription when one is asked for).
"""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from .. import phones
from ..oncall_config import inbound_for
from .calls import InboundCalls


class SimulationError(ValueError):
    pass


class SimulatedCall(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: str | None = Field(None, max_length=32)  # one of the inbound numbers; default the first
    from_: str = Field("+15550001111", alias="from", max_length=32)
    # "first": the first step rung answers; "nobody"; or a contact name or number who answers when rung
    answer: str = Field("first", max_length=100)
    talk_seconds: int = Field(30, ge=1, le=86400)
    message: str = Field("This is a simulated voicemail.", max_length=2000)


def _query(url: str, name: str) -> int:
    return int(parse_qs(urlsplit(url).query)[name][0])


def _picks_up(calls: InboundCalls, answer: str, numbers: list[str], step: int) -> int | None:
    """The index in ``numbers`` of who picks up, or None."""
    if answer == "first":
        return 0 if step == 0 else None
    if answer == "nobody":
        return None
    contact = calls.config.contacts.get(answer)
    number = contact.phone if contact else phones.normalize(answer)
    return numbers.index(number) if number in numbers else None


async def play(calls: InboundCalls, req: SimulatedCall) -> dict:
    """Play one call; returns the call's log id, its outcome and every TwiML document in order."""
    config = calls.config
    if not config.inbound:
        raise SimulationError("inbound: no inbound numbers are configured")
    try:
        to = phones.normalize(req.to or next(iter(config.inbound)))
        caller = phones.normalize(req.from_)
        if inbound_for(config, to) is None:
            raise ValueError(f"to: {to} is not one of the inbound numbers ({', '.join(config.inbound)})")
        if req.answer not in ("first", "nobody") and req.answer not in config.contacts:
            phones.normalize(req.answer)
    except ValueError as exc:
        raise SimulationError(str(exc)) from None
    sid = "CA" + secrets.token_hex(16)
    docs = [await calls.answer(sid, to, caller)]
    call_id = None
    while True:
        root = ET.fromstring(docs[-1])
        dial, record = root.find("Dial"), root.find("Record")
        if dial is not None:
            action = dial.get("action")
            call_id, step = _query(action, "call"), _query(action, "step")
            rung = dial.findall("Number")
            who = _picks_up(calls, req.answer, [n.text for n in rung], step)
            picked = who is not None
            if picked and rung[who].get("statusCallback"):
                await calls.answered(call_id, step, _query(rung[who].get("statusCallback"), "n"))
            params = {"CallSid": sid, "CallStatus": "in-progress",
                      "DialCallStatus": "completed" if picked else "no-answer",
                      "DialCallDuration": str(req.talk_seconds) if picked else "0"}
            docs.append(await calls.dial_result(call_id, step, params))
            continue
        if record is not None:
            call_id = _query(record.get("action"), "call")
            rec = {"CallSid": sid, "RecordingSid": "RE" + secrets.token_hex(16), "RecordingStatus": "completed",
                   "RecordingDuration": str(min(len(req.message) // 12 + 1, 120))}
            rec["RecordingUrl"] = f"{config.server.base_url}/simulator/recordings/{rec['RecordingSid']}"
            docs.append(await calls.recorded(call_id, rec))
            await calls.recording(call_id, rec)
            if record.get("transcribe") == "true":
                await calls.transcription(call_id, {**rec, "TranscriptionStatus": "completed",
                                                    "TranscriptionText": req.message})
        break
    row = await calls.store.reach.call_by_sid(sid)
    return {"log_id": row["log_id"], "status": row["log_status"], "message": row["message"],
            "voicemail_trigger_id": row["voicemail_trigger_id"], "twiml": docs}
