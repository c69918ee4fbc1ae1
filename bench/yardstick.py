"""The yardstick for bench/notify.py: the least a notify endpoint must do.

A bare Starlette endpoint that reads the JSON body, inserts one SQLite row
(WAL, synchronous=NORMAL, as alertd's store) and makes one aiohttp POST to the
fake provider's Calls.json, then answers with the sid. Served by uvicorn with
uvloop + httptools, which is what alertd's uvicorn picks when they are installed.

Two options add, one at a time or together, what alertd keeps on its path whatever
else is cut (bench/floor.py measures them): ``--twilio-library`` makes the call
through the official twilio library by the same calls alertd makes (its client, API
domain and 2010-04-01 version: alertd/providers/twilio.py; the form is the yardstick's
own), over the HTTP layer alertd gives it
(alertd/providers/twilio_http.py), instead of a bare POST; ``--outcome`` writes the
provider's answer to the row after the call, a second write, as a durable outbox
records what a send did.

With ``--database postgresql://...`` the row goes into PostgreSQL instead, with the
driver alertd's PostgreSQL backend uses (asyncpg, a pool of 10).

    python bench/yardstick.py --port P --provider URL --account-sid AC.. --auth-token T --database PATH|URL
        [--twilio-library] [--outcome]
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sqlite3
import time

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class SQLiteLog:
    def __init__(self, database: str):
        self.conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, created_at REAL, to_number TEXT,"
                          " message TEXT, call_sid TEXT)")

    async def open(self) -> None:
        pass

    async def insert(self, to: str, message: str) -> int:
        return self.conn.execute("INSERT INTO logs (created_at, to_number, message) VALUES (?, ?, ?)",
                                 (time.time(), to, message)).lastrowid

    async def outcome(self, log_id: int, sid: str) -> None:
        self.conn.execute("UPDATE logs SET call_sid = ? WHERE id = ?", (sid, log_id))

    async def close(self) -> None:
        self.conn.close()


class PostgresLog:
    def __init__(self, url: str):
        self.url = url

    async def open(self) -> None:
        import asyncpg
        self.pool = await asyncpg.create_pool(self.url, min_size=10, max_size=10)
        await self.pool.execute("CREATE TABLE IF NOT EXISTS yardstick_logs (id BIGSERIAL PRIMARY KEY,"
                                " created_at DOUBLE PRECISION, to_number TEXT, message TEXT, call_sid TEXT)")

    async def insert(self, to: str, message: str) -> int:
        return await self.pool.fetchval("INSERT INTO yardstick_logs (created_at, to_number, message)"
                                        " VALUES ($1, $2, $3) RETURNING id", time.time(), to, message)

    async def outcome(self, log_id: int, sid: str) -> None:
        await self.pool.execute("UPDATE yardstick_logs SET call_sid = $1 WHERE id = $2", sid, log_id)

    async def close(self) -> None:
        await self.pool.close()


def create_app(provider: str, account_sid: str, auth_token: str, database: str, *, twilio_library: bool = False,
               outcome: bool = False) -> Starlette:
    db = PostgresLog(database) if database.startswith(("postgresql://", "postgres://")) else SQLiteLog(database)
    url = f"{provider.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Calls.json"
    auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    state: dict = {}

    async def notify(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        to, message = body["to"], body["message"]
        log_id = await db.insert(to, message)
        form = {"To": to, "From": "+15557654321", "Twiml": f"<Response><Say>{message}</Say></Response>",
                "StatusCallback": f"http://127.0.0.1/twilio/status?log_id={log_id}"}
        if twilio_library:
            call = await state["api"].create_async("POST", f"/Accounts/{account_sid}/Calls.json", data=form,
                                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                                            "Accept": "application/json"})
            sid = call.get("sid")
        else:
            async with state["session"].post(url, data=form, headers={"Authorization": auth}) as resp:
                sid = (await resp.json())["sid"]
        if outcome:
            await db.outcome(log_id, sid)
        return JSONResponse({"ok": True, "calls": [{"to": to, "type": "call", "call_sid": sid,
                                                    "status": "initiated", "log_id": log_id}]})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["session"] = aiohttp.ClientSession()
        if twilio_library:
            from twilio.base.domain import Domain
            from twilio.base.version import Version
            from twilio.rest import Client

            # alertd's own HTTP layer under the library: its cheapest use, as alertd runs it
            from alertd.providers.twilio_http import HttpClient
            state["client"] = Client(account_sid, auth_token, http_client=HttpClient(10.0, 10))
            state["api"] = Version(Domain(state["client"], provider.rstrip("/")), "2010-04-01")
        await db.open()
        try:
            yield
        finally:
            await state["session"].close()
            if twilio_library:
                await state["client"].http_client.close()
            await db.close()

    return Starlette(routes=[Route("/api/v1/calls/notify", notify, methods=["POST"]),
                             Route("/healthz", healthz)], lifespan=lifespan)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--provider", required=True)
    p.add_argument("--account-sid", required=True)
    p.add_argument("--auth-token", required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--twilio-library", action="store_true",
                   help="call through the official twilio library's async client, not a bare aiohttp POST")
    p.add_argument("--outcome", action="store_true", help="write the provider's sid to the row after the call")
    a = p.parse_args()
    app = create_app(a.provider, a.account_sid, a.auth_token, a.database, twilio_library=a.twilio_library,
                     outcome=a.outcome)
    uvicorn.run(app, host="127.0.0.1", port=a.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", server_header=False)


if __name__ == "__main__":
    main()
