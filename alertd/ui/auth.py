"""Dashboard logins: scrypt password hashes, sessions, CSRF tokens, a growing delay after failures.

Passwords are chosen by people, so unlike API keys (256 random bits, SHA-256
is enough) they are stretched with scrypt, which is memory-hard: guessing
costs an attacker 16 MiB of memory per try, not just CPU.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_COOKIE = "alertd_session"
LOGIN_CSRF_COOKIE = "alertd_login_csrf"
SESSION_SECONDS = 14 * 24 * 3600  # the on-call engineer stays logged in on the phone for two weeks


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(digest) // 2)
    return hmac.compare_digest(got.hex(), digest)


# checked against when the user does not exist, so an unknown name takes as long as a wrong password:
# check_password runs scrypt with these parameters and salt whatever the digest, so random bytes do
# (no password matches them), and the daemon's start-up does not spend a scrypt (~0.1 s) making one
_DUMMY_HASH = (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${secrets.token_bytes(16).hex()}"
               f"${secrets.token_bytes(32).hex()}")


def hash_session(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginThrottle:
    """A delay after each failed login that grows with the failures from that
    client address: base, 2*base, ... up to ``cap`` seconds.

    The delay is served on the failed attempt itself, and the attempts of one
    address are taken one at a time, so an address guesses at most once per
    delay, whatever names it tries. Keyed by address, not by user name: guesses
    from elsewhere never queue in front of the owner, and one wrong password
    of the owner's costs a second before the right one. A success resets the
    address. At most ``hashing`` password checks run at once (scrypt's CPU and
    memory), whoever sends them.
    """

    def __init__(self, base: float = 1.0, cap: float = 10.0, *, hashing: int = 2, max_clients: int = 10_000):
        self.base, self.cap, self.max_clients = base, cap, max_clients
        self.failures: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.hashing = asyncio.Semaphore(hashing)

    def lock(self, client: str) -> asyncio.Lock:
        if len(self._locks) > self.max_clients:  # addresses are many: do not grow without bound
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        return self._locks.setdefault(client, asyncio.Lock())

    async def failed(self, client: str) -> float:
        count = min(self.failures.pop(client, 0) + 1, 1000)
        self.failures[client] = count  # re-inserted: the dict stays oldest-failure first
        while len(self.failures) > self.max_clients:  # forget the stalest, never the one at hand
            del self.failures[next(iter(self.failures))]
        delay = min(self.base * count, self.cap)
        await asyncio.sleep(delay)
        return delay

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)


def verify(password: str, stored: str | None) -> bool:
    ok = check_password(password, stored or _DUMMY_HASH)
    return ok and stored is not None


def new_token() -> str:
    return secrets.token_urlsafe(32)
