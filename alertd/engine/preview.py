"""A dry run of one rule on a sample event: what ``alertd test-rule`` prints and the
dashboard's rules page shows. Pure: it evaluates, it never sends or stores."""
from __future__ import annotations

import json
from datetime import datetime

from ..rules.schedule import next_fire_times
from .evaluate import evaluate


def read_event(text: str) -> object:
    """A sample event from JSON text ({} when empty). Raises ValueError("not JSON: ...")."""
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise ValueError("not JSON: an integer has more than 4300 digits") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None


def dry_run(rule, event: object, now: datetime, *, names, ruleset, resolved: bool = False) -> tuple[list[str], bool]:
    """(the report's lines, True when the rule could send without errors). ``now`` is aware.
    ``names``: contacts, groups and rotations (alertd/directory.py's Directory)."""
    d = evaluate(rule, event, now, contacts=names.contacts, groups=names.groups, ruleset=ruleset,
                 rotations=names.rotations, resolved=resolved, preview=True)
    lines = [
        f"rule:        {rule.id} ({ruleset.files.get(rule.id)})",
        f"when:        {'holds' if d.when_held else 'does not hold'}" + (f"  ({rule.when})" if rule.when else ""),
        f"active now:  {'yes' if d.active else 'no (outside the active window)'}",
        f"would send:  {'yes' if d.notify and d.sendable else 'no'}",
        f"dedup key:   {d.dedup_key}",
        f"to:          {', '.join(d.recipients + d.rotations) or '-'}",
        f"action type: {d.action_type}" + (f"  (template {d.template_id})" if d.template_id else ""),
        f"voice:       {d.voice}, repeat {d.repeat}, gather {'yes' if d.gather else 'no'}"
        + (f", language {d.language}" if d.language else ""),
        f"message:     {d.message}",
        f"send at:     {d.send_at.isoformat() if d.send_at else 'at once'}",
    ]
    lines += [f"escalate[{k}]: after {st.after}, to {', '.join(st.recipients + st.rotations)}"
              for k, st in enumerate(d.escalate)]
    if rule.source.poll is not None or rule.source.schedule is not None:
        runs = ", ".join(t.isoformat() for t in next_fire_times(rule, ruleset.timezone_of(rule), now))
        lines.append(f"next runs:   {runs}")
    lines += [f"error:       {e}" for e in d.errors]
    return lines, not d.errors
