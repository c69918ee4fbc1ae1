"""The flow of an inbound call, and its trace in the trigger log.

``answer`` (the provider's voice webhook) greets the caller and rings the first
step; ``dial_result`` (each dial's action) ends the call when someone
answered, else rings the next step, then offers voicemail when set. Every
answer is made in the dialect of the provider the call came through
(providers/inbound_voice.py), the requests' fields read through it. Each call
is one trigger-log row (source ``inbound``, type ``inbound``) whose status is
ringing, answered, voicemail or missed, and whose message says who called, who
answered and for how long.

A voicemail becomes a trigger (source ``inbound``): an SMS to the first target
(whoever is on call then) with the caller's number, the transcription when
asked for, and a link to listen to the recording (listen.py); each fallback of ``then`` is texted
``escalate_after`` later, until someone acknowledges (reply 1 / ACK). With
``transcribe`` the text waits up to TRANSCRIPTION_WAIT for the transcription;
without one by then it goes with the link alone. Each voicemail is notified
once (dispatch/intake.py, Once), whichever of the provider's requests comes first.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import structlog

from .. import phones
from ..dispatch.followups import build_spec
from ..dispatch.intake import Once
from ..dispatch.notification import notification
from ..oncall_config import InboundNumber, inbound_for
from ..providers import inbound_twiml as twiml
from ..providers.speech import phrases
from . import listen, routing

log = structlog.get_logger("alertd.inbound")
SOURCE = "inbound"
TWILIO = "/twilio/voice"  # the voice webhook of provider: twilio; a providers: entry's is /providers/NAME/voice
TRANSCRIPTION_WAIT = 120.0  # seconds; Twilio transcribes a two-minute message in well under a minute
SMS_TEXT_MAX = 480  # of a transcription: with the rest, an SMS of at most four segments


_UNKNOWN = object()


class InboundCalls:
    """The calls' flow, and a timer of the worker (``run_due`` / ``next_due_at``): voicemails
    whose transcription did not come."""

    def __init__(self, config, store, clock, *, submit, caller_id):
        self.config, self.store, self.clock = config, store, clock
        self.submit, self.caller_id = submit, caller_id
        # when the next voicemail stops waiting for its transcription; the worker's loop
        # asks every turn, the database is asked only after something changed
        self._next_due = _UNKNOWN

    def url(self, base: str, path: str, token=None, **query) -> str:
        """A step's URL under ``base``: the voice webhook's path the call came in on
        (/twilio/voice, or /providers/NAME/voice), so each step is signed the same way.
        ``token(call_id)``, when given, adds the call's token (``t``) for a provider whose
        signature does not cover the URL."""
        if token is not None:
            query["t"] = token(query["call"])
        return f"{self.config.server.base_url}{base}{path}?{urlencode(query)}"

    def _entry(self, call) -> InboundNumber | None:
        return inbound_for(self.config, call["number"])

    # --- the call -------------------------------------------------------------
    async def answer(self, call_sid: str, to: str, caller: str, base: str = TWILIO, dialect=twiml,
                     token=None) -> str:
        """The answer to a call to ``to``: greeting and the first step, whose URLs are under
        ``base`` (the path of the voice webhook that was called; with ``token``'s token of
        the call), in ``dialect`` (alertd/providers/inbound_voice.py: TwiML, Plivo XML or
        Vonage's NCCO)."""
        try:
            number = phones.normalize(to)
        except ValueError:
            number = to
        entry = inbound_for(self.config, number)
        if entry is None or not call_sid:
            log.warning("inbound call to a number without an inbound entry; rejected", to=to)
            return dialect.reject()
        now = self.clock.now()
        steps = await routing.steps(self.config, self.store, entry.targets, now)
        row = notification(number, "inbound", f"Inbound call from {caller or 'an unknown number'}",
                           params={"from": caller}, status="ringing")  # a row of the log, never sent
        call = await self.store.reach.add_call(call_sid, number, caller or "", [[s.label, s.numbers] for s in steps],
                                         now.timestamp(), {"source": SOURCE, "created_at": now.timestamp()}, row)
        log.info("inbound call", call_id=call["id"], log_id=call["log_id"], caller=caller, to=number,
                 steps=[s.label for s in steps])
        return self._at_step(call, entry, call["step"], base, dialect, greeting=entry.greeting, token=token)

    def _at_step(self, call, entry: InboundNumber, step: int, base: str, dialect, greeting: str | None = None,
                 member: int = 0, token=None) -> str:
        """The answer that rings ``step`` (only its ``member``-th number where the dialect
        rings one at a time), or offers voicemail, or says goodbye, after the last step."""
        steps = json.loads(call["steps"])

        def url(path: str, **query) -> str:
            return self.url(base, path, token, call=call["id"], **query)
        if step < len(steps):
            numbers = steps[step][1]
            if not dialect.rings_at_once:
                return dialect.dial([numbers[member]], entry.ring,
                                    url("/dial", step=step, n=member),
                                    entry.language, greeting, None, call["number"])
            answered = [url("/answered", step=step, n=i) for i in range(len(numbers))]
            return dialect.dial(numbers, entry.ring, url("/dial", step=step),
                                entry.language, greeting, answered if len(numbers) > 1 else None, call["number"])
        if entry.voicemail is not None:
            vm = entry.voicemail
            transcribe = vm.transcribe and dialect.transcribes
            return dialect.voicemail(entry.language, vm.max_length, url("/recorded"), url("/recording"),
                                     url("/transcription") if transcribe else None, vm.prompt, greeting)
        return dialect.goodbye(entry.language, greeting=greeting)

    async def dial_result(self, call_id: int, step: int, params: dict, base: str = TWILIO, dialect=twiml,
                          member: int | None = None, token=None) -> str:
        """After a step's dial: end the call, ring the step's next number (``member``: which one
        was rung, where the dialect rings them one at a time), the next step, or offer voicemail."""
        call = await self.store.reach.get_call(call_id)
        entry = self._entry(call) if call is not None else None
        if call is None or entry is None or call["status"] != "ringing":
            return dialect.hangup()
        steps = json.loads(call["steps"])
        if step != call["step"] or step >= len(steps):  # a repeated request for a step already left
            return self._at_step(call, entry, call["step"], base, dialect, token=token)
        one_by_one = not dialect.rings_at_once and member is not None and 0 <= member < len(steps[step][1])
        label = steps[step][0]
        dial_status = params.get("DialCallStatus", "")
        now = self.clock.timestamp()
        caller = call["caller"] or "an unknown number"
        # completed: someone answered and the call is over; answered: the same, as Twilio
        # reports it when the caller hung up first
        if dial_status in ("completed", "answered"):
            duration = _seconds(params.get("DialCallDuration"))
            label, numbers = self._answerer(call, steps[step], member if one_by_one else None)
            await self.store.reach.update_call(call_id, f"Inbound call from {caller}: answered by {label}"
                                    f" ({', '.join(numbers)}), {duration} s",
                                    status="answered", answered_by=label, duration=duration, ended_at=now)
            log.info("inbound call answered", call_id=call_id, answered_by=label, duration=duration)
            return dialect.hangup()
        if dial_status == "canceled" or params.get("CallStatus") == "completed":
            await self.store.reach.update_call(call_id, f"Inbound call from {caller}: hung up while {label} was rung",
                                    status="missed", ended_at=now)
            log.info("inbound caller hung up", call_id=call_id, step=step)
            return dialect.hangup()
        if one_by_one and member + 1 < len(steps[step][1]):
            log.info("inbound step's number unanswered", call_id=call_id, step=step, label=label, member=member,
                     dial_status=dial_status)
            return self._at_step(call, entry, step, base, dialect, member=member + 1, token=token)
        nxt = step + 1
        log.info("inbound step unanswered", call_id=call_id, step=step, label=label, dial_status=dial_status)
        if nxt < len(steps):
            await self.store.reach.update_call(call_id, step=nxt)
        elif entry.voicemail is not None:
            await self.store.reach.update_call(call_id, f"Inbound call from {caller}: nobody answered;"
                                               " voicemail offered", step=nxt)
        else:
            await self.store.reach.update_call(call_id, f"Inbound call from {caller}: nobody answered", step=nxt,
                                    status="missed", ended_at=now)
        return self._at_step(await self.store.reach.get_call(call_id), entry, nxt, base, dialect, token=token)

    async def answered(self, call_id: int, step: int, index: int) -> None:
        """One number of a step that rings several (a group) picked up: remember which."""
        call = await self.store.reach.get_call(call_id)
        if call is None or call["status"] != "ringing" or step != call["step"]:
            return
        label, numbers = json.loads(call["steps"])[step]
        if 0 <= index < len(numbers):
            await self.store.reach.update_call(call_id, answered_by=json.dumps([label, numbers[index]]))

    def _answerer(self, call, step: list, member: int | None = None) -> tuple[str, list[str]]:
        """(who, their numbers) of the step that took the call: the member of a group when known
        (``member``: the one rung alone; else the one an answered callback named)."""
        label, numbers = step
        if member is not None and len(numbers) > 1:
            number = numbers[member]
            name = next((n for n, c in self.config.contacts.items() if c.phone == number), number)
            return f"{label}: {name}", [number]
        if call["answered_by"]:
            label, number = json.loads(call["answered_by"])
            name = next((n for n, c in self.config.contacts.items() if c.phone == number), number)
            return f"{label}: {name}", [number]
        return label, numbers

    # --- the voicemail ----------------------------------------------------------
    async def recorded(self, call_id: int, params: dict, dialect=twiml) -> str:
        """The recording's action: the caller finished the message (or hung up)."""
        await self.recording(call_id, params, dialect)
        call = await self.store.reach.get_call(call_id)
        entry = self._entry(call) if call is not None else None
        if call is not None and call["status"] == "ringing" and not params.get("RecordingUrl"):
            await self.store.reach.update_call(call_id, f"Inbound call from {call['caller'] or 'an unknown number'}:"
                                    " nobody answered; no message left", status="missed",
                                    ended_at=self.clock.timestamp())
        language = entry.language if entry else "en-US"
        return dialect.goodbye(language, phrases(language)[1])

    async def recording(self, call_id: int, params: dict, dialect=twiml) -> None:
        """A recording is ready (the Record action or the recording status callback, whichever comes first)."""
        call = await self.store.reach.get_call(call_id)
        entry = self._entry(call) if call is not None else None
        if call is None or entry is None or entry.voicemail is None or call["recording_url"]:
            return
        url = params.get("RecordingUrl") or ""
        if params.get("RecordingStatus", "completed") != "completed" or not url:
            return
        seconds = _seconds(params.get("RecordingDuration"))
        now = self.clock.timestamp()
        fields = {"status": "voicemail", "recording_url": url, "recording_duration": seconds,
                  "ended_at": call["ended_at"] or now}
        transcribe = entry.voicemail.transcribe and dialect.transcribes
        if transcribe and call["voicemail_state"] is None:
            fields.update(voicemail_state="awaiting", voicemail_due_at=now + TRANSCRIPTION_WAIT)
            self._next_due = _UNKNOWN
        await self.store.reach.update_call(call_id, f"Inbound call from {call['caller'] or 'an unknown number'}:"
                                f" nobody answered; voicemail of {seconds} s {url}", **fields)
        log.info("voicemail recorded", call_id=call_id, seconds=seconds)
        if not transcribe:  # no transcription to wait for
            await self.notify(call_id)

    async def transcription(self, call_id: int, params: dict, dialect=twiml) -> None:
        call = await self.store.reach.get_call(call_id)
        if call is None:
            return
        if params.get("RecordingUrl") and not call["recording_url"]:
            await self.recording(call_id, {**params, "RecordingStatus": "completed"}, dialect)
        text = (params.get("TranscriptionText") or "").strip()
        if params.get("TranscriptionStatus") == "completed" and text:
            await self.store.reach.update_call(call_id, transcription=text)
        await self.notify(call_id)

    async def notify(self, call_id: int) -> list | None:
        """Send the voicemail's trigger, once; None when it was sent before."""
        call = await self.store.reach.get_call(call_id)
        entry = self._entry(call) if call is not None else None
        if call is None or entry is None or entry.voicemail is None or not call["recording_url"]:
            return None
        config = self.config
        now = self.clock.now()
        targets = entry.targets
        first = await routing.resolve(config, self.store, targets[0], now)
        token, listen_hash = listen.new_token()
        message = self.message(call, first.label, listen.link(config, call_id, token))
        base = {"type": "sms", "message": message,
                "params": {"voice": "alice", "repeat": 1, "gather": False, "language": entry.language}}
        after = entry.voicemail.escalate_after.total_seconds()
        steps = []
        for k, name in enumerate(targets[1:], start=1):
            if name in config.rotations:  # whoever is on call when the step runs
                steps.append({"after": k * after, "to": [], "rotations": [name]})
            else:
                steps.append({"after": k * after, "to": (await routing.resolve(config, self.store, name, now)).numbers})
        trigger = {"source": SOURCE, "spec": build_spec(None, steps, base)}
        rows = [notification(n, "sms", message, params=dict(base["params"], **{"from": self.caller_id.pick(n)}))
                for n in first.numbers]
        reach = self.store.reach
        stored = await self.submit(trigger, rows, once=Once(
            lambda tx: reach.claim_voicemail(tx, call_id),
            lambda tx, trigger_id: reach.set_voicemail_trigger(tx, call_id, trigger_id, listen_hash)))
        if not stored:
            return None
        log.info("voicemail notified", call_id=call_id, trigger_id=stored[0].trigger_id, to=first.label,
                 transcribed=bool(call["transcription"]))
        return stored

    @staticmethod
    def message(call, label: str, link: str) -> str:
        text = call["transcription"]
        said = ""
        if text:
            said = f' "{text[:SMS_TEXT_MAX]}{"..." if len(text) > SMS_TEXT_MAX else ""}"'
        return (f"Voicemail for {label} from {call['caller'] or 'an unknown number'}"
                f" ({call['recording_duration'] or 0} s){said}\nListen: {link}\nReply 1 to acknowledge.")

    # --- a timer of the dispatcher's loop: voicemails whose transcription did not come --------
    async def next_due_at(self) -> float | None:
        if self._next_due is _UNKNOWN:
            self._next_due = await self.store.reach.next_voicemail_due()
        return self._next_due

    async def run_due(self) -> int:
        now = self.clock.timestamp()
        next_due = await self.next_due_at()
        if next_due is None or next_due > now:
            return 0
        self._next_due = _UNKNOWN
        due = await self.store.reach.voicemails_due(now)
        sent = 0
        for call in due:
            try:
                stored = await self.notify(call["id"])
            except Exception:  # one voicemail's trouble must not stop the others or the loop
                log.exception("voicemail notify failed; tried again in a minute", call_id=call["id"])
                await self.store.reach.postpone_voicemail(call["id"], self.clock.timestamp() + 60)
                continue
            if stored is None:  # its number's inbound entry is gone: nobody to tell
                await self.store.reach.postpone_voicemail(call["id"], None)
            sent += stored is not None
        return sent


def _seconds(value) -> int:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 9 else 0
