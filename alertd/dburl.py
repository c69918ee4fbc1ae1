"""Which database a config's ``database:`` names: a SQLite file or a PostgreSQL URL.

A URL may carry a password (after ``${VAR}`` substitution): ``redact`` is the only
form that goes into logs, errors and answers.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")


def is_postgres(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEMES)


def check(url: str) -> str:
    """``url`` if it names a PostgreSQL database; raises ValueError saying what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"not a valid PostgreSQL URL ({exc}); write it like"
                         " postgresql://alertd:${PGPASSWORD}@db.example.com:5432/alertd") from None
    return url


def redact(url: str) -> str:
    """The URL without its password: safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))
