"""Steps the provider tests share: a notify through the API, and a log row as the API shows it."""
from __future__ import annotations


def notify(d, to: str, expect: int = 200, **body) -> dict:
    """The first row of a notify (``action_type``, ``gather``... as the API takes them)."""
    r = d.notify({"to": to, "message": "Server room too hot.", **body})
    assert r.status_code == expect, r.text
    return r.json()["calls"][0]


def row(d, log_id: int) -> dict:
    return d.api.get(d.url(f"/api/v1/calls/logs/{log_id}"), timeout=10).json()["log"]


def final_status_acted_on_once(d, log_id: int, deliver) -> None:
    """``deliver()`` sends the call's final 'no-answer' callback (a provider retries a delivery,
    and a captured one can be replayed): three deliveries keep one status and place one retry."""
    for _ in range(3):
        status, text = deliver()
        assert status == 200, text
    kept = d.run(d.daemon.store.status.history([log_id]))[log_id]
    assert [(k["status"], k["channel"]) for k in kept] == [("no-answer", "call")]
    trigger_id = row(d, log_id)["trigger_id"]
    retries = [f for f in d.run(d.daemon.store.followups.of_trigger(trigger_id)) if f["kind"] == "retry"]
    assert len(retries) == 1
