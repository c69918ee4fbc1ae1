"""Webhook payloads -> events.

``generic``: one event, the JSON body (or form fields) merged with the query
parameters; the body wins on a clash and ``key`` (an API key) is never part of
it. ``alertmanager`` (webhook payload version 4) and ``grafana`` (Grafana
Alerting's contact-point webhook): one event per alert, each with a
``fingerprint`` that the engine deduplicates on.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

FORMATS = ("generic", "alertmanager", "grafana")


class PayloadError(ValueError):
    """The body does not have the shape the webhook's format expects."""


def generic_event(body: Any, query: dict[str, str]) -> dict:
    event = {k: v for k, v in query.items() if k != "key"}
    if isinstance(body, dict):
        event.update(body)
    elif body is not None:
        event["body"] = body  # a JSON list or scalar: keep it reachable
    return event


def _fingerprint(alert: dict) -> str:
    if alert.get("fingerprint"):
        return str(alert["fingerprint"])
    labels = alert.get("labels") or {}
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def alert_events(body: Any, fmt: str) -> list[dict]:
    """One event per alert, each with status 'firing' or 'resolved' and a fingerprint."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise PayloadError(f"an {fmt} payload needs an 'alerts' list")
    common = {k: body.get(k) for k in ("receiver", "groupLabels", "commonLabels", "commonAnnotations",
                                       "externalURL", "groupKey", "title", "message", "orgId")
              if k in body}
    events = []
    for i, alert in enumerate(body["alerts"]):
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{i}] is not an object")
        status = str(alert.get("status") or body.get("status") or "firing").lower()
        if status not in ("firing", "resolved"):
            status = "firing"
        events.append({**common, **alert, "status": status, "fingerprint": _fingerprint(alert),
                       "labels": alert.get("labels") or {}, "annotations": alert.get("annotations") or {}})
    return events


def events_from(fmt: str, body: Any, query: dict[str, str]) -> list[dict]:
    if fmt == "generic":
        return [generic_event(body, query)]
    return alert_events(body, fmt)
