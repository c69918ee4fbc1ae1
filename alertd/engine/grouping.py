"""Rule grouping: one notification for the events of a group that arrive within group_wait.

    group_by: [labels.alertname]
    group_wait: 30s

A rule with ``group_by`` does not send each event that would notify; it adds
it to the open group of (rule, the event's group_by values, firing or
resolved), stored in SQLite before the webhook is answered. The first event
opens the group and sets its time: ``group_wait`` later the dispatcher loop
sends one notification for all of them (within about a second, and once at
start for a group that fell due while the daemon was down). Events that
arrive while a group is being sent open the next one.

For alertmanager/grafana rules and polls only flips that notify are grouped:
the state machine decides per alert first, so an alert Alertmanager re-sends
every 5 minutes still notifies once. Cooldowns, windows and dedup keys apply
per event, as without grouping.

The notification is the rule evaluated on the group's first event, at the
time it arrived, with ``group = {"count", "events"}`` in the template
context. A template that does not use ``group`` gets the count and the first
few distinct messages: "50 alerts: CPU high on a; CPU high on b; ...". A
group of one is sent as a plain notification (``group`` is None).

Sent exactly once across a stop: the trigger records its group id, so a group
found 'sending' at start whose trigger exists is only marked sent.

This module is the pure part (keys, the grouped message); the stored groups
and their sending are alertd/dispatch/groups.py.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Mapping

from ..rules.models import Rule
from .evaluate import MAX_MESSAGE, Decision
from .templating import uses_variable

NAMED = 3  # messages named in a grouped notification whose template does not use `group`
SCAN = 20  # events looked at to find them


def path_value(event: Any, path: str) -> Any:
    """``labels.alertname`` of an event; None when any step is missing."""
    value = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def group_key(rule: Rule, event: Any, resolved: bool) -> str:
    values = [path_value(event, p) for p in rule.group_by]
    return json.dumps({"by": values, "resolved": resolved}, sort_keys=True, default=str)


def name_the_first_few(rule: Rule, decision: Decision, events: list, at: datetime, resolved: bool, *,
                       evaluate: Callable[..., Decision], templates: Mapping[str, Any]) -> None:
    """"50 alerts: A; B; C; ..." instead of "50 alerts: A" when the template does not use `group`.
    ``evaluate(rule, event, at, resolved=, preview=)``: the engine's, with the config's names."""
    named = templates.get(rule.notify.template or "")
    source = rule.notify.message if rule.notify.message is not None else (named.message if named else None)
    if decision.message is None or source is None or uses_variable(source, "group"):
        return
    texts: list[str] = []
    for _, event in events[:SCAN]:
        text = evaluate(rule, event, at, resolved=resolved, preview=True).message
        if text and text not in texts:
            texts.append(text)
            if len(texts) > NAMED:
                break
    if not texts:
        return
    more = len(texts) > NAMED or len(events) > SCAN
    message = f"{len(events)} alerts: " + "; ".join(texts[:NAMED]) + ("; ..." if more else "")
    message = message[:MAX_MESSAGE]
    for step in decision.escalate:  # steps without a message of their own inherit it
        if step.message == decision.message:
            step.message = message
    decision.message = message
