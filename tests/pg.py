"""A throwaway PostgreSQL for the tests and the benches.

``PgServer.start()`` runs Debian's server binaries (/usr/lib/postgresql/N/bin):
``initdb`` into a temporary folder, ``postgres`` on a free loopback port with
its unix socket in that folder, gone again at ``stop()``. initdb refuses to
run as root, so as root the server runs as the ``postgres`` user that Debian's
package creates. With ``ALERTD_TEST_POSTGRES_URL`` set, that server is used
instead (each test still gets its own database, dropped at the end).

Each test gets a fresh database: ``CREATE DATABASE ... TEMPLATE``, which copies
a few pages instead of running the migrations again.
"""
from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HOW_TO_RUN = ("PostgreSQL tests skipped: no PostgreSQL here; install Debian's 'postgresql' package"
              " (apt-get install postgresql) or set ALERTD_TEST_POSTGRES_URL=postgresql://user:pass@host/db")

# Settings for a server whose data may be lost: a test never needs its data to survive a
# power cut, and fsync is most of what a commit costs. The benches ask for durable commits.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class Unavailable(Exception):
    """No PostgreSQL to test against; the message says how to get one."""


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class PgServer:
    """One PostgreSQL server: a local throwaway cluster, or the one a URL names."""

    def __init__(self, url: str | None = None, settings: dict[str, str] | None = None):
        self.external_url = url
        self.settings = {**FAST, **(settings or {})}
        self.folder: Path | None = None
        self.port = 0
        self.url = url or ""
        self._databases: list[str] = []

    # --- the local cluster ------------------------------------------------------------
    def start(self) -> "PgServer":
        if self.external_url:
            return self
        bindir = server_binaries()
        if bindir is None:
            raise Unavailable(HOW_TO_RUN)
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="alertd-pg-"))
        os.chmod(self.folder, 0o755)
        (self.folder / "data").mkdir(mode=0o700)
        self._own(self.folder)
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "alertd",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        self.port = free_port()
        self._pg_ctl("start")
        self.url = f"postgresql://alertd@127.0.0.1:{self.port}/postgres"
        return self

    def stop(self) -> None:
        if self.external_url:
            for name in self._databases:
                self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        if self.folder is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def restart(self) -> None:
        """Stop the server (every connection drops) and start it again on the same port."""
        if self.external_url:
            raise Unavailable("restarting needs the local throwaway cluster (ALERTD_TEST_POSTGRES_URL is set)")
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        self._pg_ctl("start")

    def halt(self) -> None:
        """Stop the server and leave it down until ``resume()``."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = " ".join([f"-p {self.port}", f"-k {self.folder}", "-c listen_addresses=127.0.0.1",
                            "-c max_connections=300", *(f"-c {k}={v}" for k, v in self.settings.items())])
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", action)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder, timeout=120)
        if check and done.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
            for child in path.rglob("*"):
                shutil.chown(child, "postgres", "postgres")

    # --- databases ----------------------------------------------------------------
    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server."""
        import asyncpg

        async def run():
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        asyncio.run(run())

    def create_database(self, template: str = "template0") -> str:
        """A new empty database copied from ``template``; returns its URL."""
        name = "alertd_" + uuid.uuid4().hex[:12]
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._databases.append(name)
        return with_database(self.url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._databases:
            self._databases.remove(name)


def start_server(settings: dict[str, str] | None = None) -> PgServer:
    """The server to test against: ALERTD_TEST_POSTGRES_URL's, or a local throwaway one.
    Raises Unavailable (with how to get one) when there is neither."""
    return PgServer(os.environ.get("ALERTD_TEST_POSTGRES_URL") or None, settings).start()

