"""Steps the provider tests share: a notify through the API, and a log row as the API shows it."""
from __future__ import annotations


def notify(d, to: str, expect: int = 200, **body) -> dict:
    """The first row of a notify (``action_type``, ``gather``... as the API takes them)."""
    r = d.notify({"to": to, "message": "Server room too hot.", **body})
    assert r.status_code == expect, r.text
    return r.json()["calls"][0]


def row(d, log_id: int) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]
