"""The voicemail's listening link: alertd fetches the recording for the person it texted.

Twilio's recording URLs need the account's SID and auth token (accounts opened
since August 2023 cannot turn that off), which the on-call person does not
have. So the text carries ``{public_url}/voicemail/{call}?t=TOKEN`` instead:
the token is random, stored as a SHA-256 hash, and in the query string, which
the request log never records. alertd then fetches the recording and streams
it on. Credentials go only to the provider's own hosts (AUTH, OWN_HOSTS):

- Twilio, SignalWire: the account's (project's) id and token, at its API host;
- Plivo: the auth id and token, at its API host or media.plivo.com;
- Vonage: the application's JWT, at its API host or Vonage's (api.nexmo.com,
  api-REGION.vonage.com...);
- Telnyx: none, ever: a TeXML recording URL is pre-signed and expires about
  10 minutes after the call; past that the link answers 502.

Any other http(s) URL is fetched without credentials: it reached alertd only
through a callback whose signature was checked. A redirect to another origin
drops the Authorization header (aiohttp does so).
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import time
import urllib.parse
import wave
from typing import AsyncIterator, Callable

from ..config import Config
from ..providers import ProviderError

CHUNK = 64 * 1024
SIMULATED = "/simulator/recordings/"


TELNYX_EXPIRY = "a Telnyx recording's link expires about 10 minutes after the call"


class RecordingUnavailable(Exception):
    """The provider would not hand the recording over. ``hint``: a likely reason, for the listener."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def new_token() -> tuple[str, str]:
    """(token, its hash)."""
    token = secrets.token_urlsafe(18)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link(config: Config, call_id: int, token: str) -> str:
    return f"{config.server.base_url}/voicemail/{call_id}?t={token}"


def _silence() -> bytes:
    """A second of silence: what the simulator's 'recordings' sound like."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    return out.getvalue()


def _basic(user: str, password: str) -> dict | None:
    if not (user and password):
        return None
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _vonage(entry) -> dict | None:
    if not (entry.application_id and entry.private_key):
        return None
    # loaded only for a Vonage recording, as the registry loads each kind only when an entry names it
    from ..providers import vonage
    try:
        token = vonage.application_jwt(entry.application_id, vonage.private_key(entry.private_key), time.time())
    except ProviderError:
        return None
    return {"Authorization": f"Bearer {token}"}


# kind -> the entry's credentials as request headers (None: not configured). Telnyx is
# absent on purpose: its recording URLs are pre-signed and its API key goes to its API only.
AUTH: dict[str, Callable[[object], dict | None]] = {
    "twilio": lambda e: _basic(e.account_sid, e.auth_token),
    "signalwire": lambda e: _basic(e.project_id, e.api_token),
    "plivo": lambda e: _basic(e.auth_id, e.auth_token),
    "vonage": _vonage,
}
# kind -> the provider's own hosts besides the entry's api_base_url (https only)
OWN_HOSTS = {
    "plivo": re.compile(r"(api|media)\.plivo\.com"),
    "vonage": re.compile(r"api(-[a-z0-9]+)?\.(nexmo|vonage)\.com"),
}
MP3 = {"twilio", "signalwire"}  # whose RecordingUrl has no extension: ".mp3" asks for the MP3


def _serves(entry, url: str) -> bool:
    base = getattr(entry, "api_base_url", "") or ""
    if base and url.startswith(base.rstrip("/") + "/"):
        return True
    parts = urllib.parse.urlsplit(url)
    own = OWN_HOSTS.get(entry.kind)
    return bool(own and parts.scheme == "https" and own.fullmatch(parts.hostname or ""))


def _requests(config: Config, url: str) -> list[tuple[str, dict]]:
    """(URL, headers) to try in turn: with the credentials of each provider entry whose own
    host serves ``url``; when none does, ``url`` alone, without credentials."""
    entries = list(config.providers)
    if config.provider.kind == "twilio" and config.provider.account_sid:  # the older `provider:`
        entries.append(config.provider)
    served = [e for e in entries if e.kind in AUTH and _serves(e, url)]
    if not served:
        return [(url, {})]
    tries = []
    for entry in served:
        headers = AUTH[entry.kind](entry)
        if headers is not None and (url, headers) not in [(u.removesuffix(".mp3"), h) for u, h in tries]:
            tries.append((url + ".mp3" if entry.kind in MP3 else url, headers))
    return tries


async def open_recording(config: Config, url: str) -> tuple[str, AsyncIterator[bytes]]:
    """(content type, the audio in chunks). Raises RecordingUnavailable."""
    if url.startswith(config.server.base_url + SIMULATED):
        async def once():
            yield _silence()
        return "audio/wav", once()
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise RecordingUnavailable("the recording's URL is not http(s)")
    tries = _requests(config, url)
    if not tries:
        raise RecordingUnavailable("the provider whose host serves the recording has no credentials configured")
    import aiohttp  # here, not at the top: a daemon that never makes an outgoing HTTP request never loads aiohttp (8 MiB)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30))
    why = ""
    for target, headers in tries:
        try:
            resp = await session.get(target, headers=headers)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            continue
        if resp.status == 200:
            break
        resp.release()
        why = f"the provider answered {resp.status}"
    else:
        await session.close()
        telnyx = not tries[-1][1] and any(e.kind == "telnyx" for e in config.providers)
        raise RecordingUnavailable(why, TELNYX_EXPIRY if telnyx else "")

    async def chunks():
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                yield chunk
        finally:
            resp.release()
            await session.close()
    return resp.headers.get("Content-Type", "audio/mpeg"), chunks()
