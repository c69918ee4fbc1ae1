"""The voicemail's listening link: alertd fetches the recording for the person it texted.

Twilio's recording URLs need the account's SID and auth token (accounts opened
since August 2023 cannot turn that off), which the on-call person does not
have. So the text carries ``{public_url}/voicemail/{call}?t=TOKEN`` instead:
the token is random, stored as a SHA-256 hash, and in the query string, which
the request log never records. alertd then fetches the MP3 with the account's
credentials, only from the provider's own API host, and streams it on (a
SignalWire space's recordings likewise, with the project's id and API token).
"""
from __future__ import annotations

import base64
import hashlib
import io
import secrets
import wave
from typing import AsyncIterator

import aiohttp

from ..config import Config

CHUNK = 64 * 1024
SIMULATED = "/simulator/recordings/"


class RecordingUnavailable(Exception):
    """The provider would not hand the recording over (or it is not at its API host)."""


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


def _login(config: Config, url: str) -> tuple[str, str] | None:
    """(user, password) of the provider whose API host serves ``url``: a Twilio
    account's SID and auth token, or a SignalWire project's id and API token."""
    hosts = [(config.provider.api_base_url, config.provider.account_sid, config.provider.auth_token)]
    for e in config.providers:
        if e.kind == "twilio":
            hosts.append((e.api_base_url, e.account_sid, e.auth_token))
        elif e.kind == "signalwire":
            hosts.append((e.api_base_url, e.project_id, e.api_token))
    for base, user, password in hosts:
        if base and user and url.startswith(base.rstrip("/") + "/"):
            return user, password
    return None


async def open_recording(config: Config, url: str) -> tuple[str, AsyncIterator[bytes]]:
    """(content type, the audio in chunks). Raises RecordingUnavailable."""
    if url.startswith(config.server.base_url + SIMULATED):
        async def once():
            yield _silence()
        return "audio/wav", once()
    login = _login(config, url)
    if login is None:  # the credentials go to the provider's API host and nowhere else
        raise RecordingUnavailable("the recording is not at the API host of a Twilio or SignalWire provider")
    auth = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30))
    try:
        resp = await session.get(url + ".mp3", headers={"Authorization": f"Basic {auth}"})
    except (aiohttp.ClientError, TimeoutError) as exc:
        await session.close()
        raise RecordingUnavailable(f"{type(exc).__name__}: {exc}") from None
    if resp.status != 200:
        resp.release()
        await session.close()
        raise RecordingUnavailable(f"the provider answered {resp.status}")

    async def chunks():
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                yield chunk
        finally:
            resp.release()
            await session.close()
    return resp.headers.get("Content-Type", "audio/mpeg"), chunks()
