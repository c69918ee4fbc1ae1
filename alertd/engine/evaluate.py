"""One rule against one event: does it notify, whom, with what, and when.

``evaluate`` is pure: no I/O, no clock, no exceptions for bad data. Anything
that goes wrong with the event or a template (a render failure, a ``to`` that
renders to no valid number, an ``at`` that is not a time) is a line in
``Decision.errors``; upstream writes each as a 'failed' trigger-log row with
the rule id, so nothing is dropped silently and nothing crashes the daemon.

Templates and ``when`` see ``event``, ``rule`` (id, description), ``now``
(aware, in the rule's timezone), ``resolved`` and ``group``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Collection, Mapping
from zoneinfo import ZoneInfo

from alertd.engine.recipients import Recipients
from alertd.engine.templating import RenderError, evaluate_condition, render, uses_variable
from alertd.engine.windows import is_active
from alertd.phones import normalize
from alertd.rules.models import Retry, Rule
from alertd.rules.types import TPL_ID
from alertd.rules.ruleset import RuleSet

MAX_MESSAGE = 4000  # the API's limit; a longer rendered message is cut, not refused


@dataclass
class Step:
    """An escalation step, resolved: inherited fields are filled in."""

    after: timedelta
    recipients: list[str]
    rotations: list[str]
    message: str | None
    action_type: str | None
    voice: str | None
    language: str | None
    repeat: int | None
    gather: bool | None
    retry: Retry | None


@dataclass
class Decision:
    """The outcome of evaluating one rule on one event.

    - ``when_held``: the ``when`` expression holds (missing data: it does not).
    - ``active``: ``now`` is inside the rule's active window.
    - ``matched``: both. For stateful sources, feed ``when_held`` to
      ``state.step`` as ``firing`` and ``active`` as ``can_notify``.
    - ``notify``: a notification is asked for: ``matched``, or, when called
      with ``resolved=True``, ``active`` (the caller decided from the state
      machine that a resolved notice is due, whatever ``when`` says now).
    - Notification fields (``recipients`` ... ``escalate``) are filled only
      when ``notify`` (or ``preview``). ``recipients`` are E.164, merged in
      order; ``rotations`` are rotation names to resolve at send time.
    - ``template_id``: an API template (``tpl_...``) to apply at send time;
      when set, fields left None take the template's value, else the API
      default. Without it, defaults are already filled (call, alice, 1, no
      gather).
    - ``send_at``: None to send now, else an aware datetime in UTC (it may be
      in the past: send at once).
    - ``errors``: readable sentences; see ``sendable``.
    """

    rule_id: str
    when_held: bool
    active: bool
    resolved: bool
    dedup_key: str
    notify: bool = False
    recipients: list[str] = field(default_factory=list)
    rotations: list[str] = field(default_factory=list)
    message: str | None = None
    template_id: str | None = None
    action_type: str | None = None
    voice: str | None = None
    repeat: int | None = None
    gather: bool | None = None
    language: str | None = None
    from_: str | None = None
    source: str | None = None
    send_at: datetime | None = None
    retry: Retry | None = None
    escalate: list[Step] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.when_held and self.active

    @property
    def sendable(self) -> bool:
        """A notification is asked for and can go to someone with something to say.

        It may still carry errors (one of three recipients was bad): send to
        the others and log each error as a failed row.
        """
        has_text = self.message is not None or self.template_id is not None
        return self.notify and bool(self.recipients or self.rotations) and has_text


def _context(rule: Rule, event: Any, local_now: datetime, resolved: bool, group: Any) -> dict[str, Any]:
    return {
        "event": event,
        "rule": {"id": rule.id, "description": rule.description},
        "now": local_now,
        "resolved": resolved,
        "group": group,
    }


def _dedup_key(rule: Rule, event: Any, ctx: dict[str, Any], errors: list[str]) -> str:
    if rule.dedup_key is None:
        # Alertmanager and Grafana name each alert by fingerprint; keying on it
        # keeps one alert's firing/resolved state apart from another's.
        if rule.source.stateful and rule.source.webhook and isinstance(event, Mapping):
            fingerprint = event.get("fingerprint")
            if isinstance(fingerprint, str) and fingerprint:
                return fingerprint
        return rule.id
    try:
        return render(rule.dedup_key, ctx).strip() or rule.id
    except RenderError as exc:
        errors.append(f"dedup_key failed to render: {exc.message}")
        return rule.id


def _send_at(rule: Rule, ctx: dict[str, Any], now: datetime, tz: ZoneInfo, errors: list[str]) -> datetime | None:
    notify = rule.notify
    if notify.delay is not None:
        # in UTC: aware arithmetic in a zoneinfo zone is wall-clock arithmetic,
        # so "1h" across a DST change would otherwise be 0 or 2 real hours
        return now.astimezone(timezone.utc) + notify.delay
    if notify.at is None:
        return None
    try:
        text = render(notify.at, ctx).strip()
    except RenderError as exc:
        errors.append(f"notify.at failed to render: {exc.message}")
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        errors.append(f"notify.at rendered {text!r}, which is not an ISO-8601 time such as 2026-03-08T09:00")
        return None
    # A time without an offset is in the rule's timezone; for a time that
    # falls in a DST gap or fold, zoneinfo's fold=0 picks the offset in force
    # before the change. Returned in UTC: a datetime left in a gap compares
    # unequal to every other (PEP 495), which would trip up the caller.
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(timezone.utc)


def _message(source: str | None, ctx: dict[str, Any], group: Any, key: str, errors: list[str]) -> str | None:
    if source is None:
        return None
    try:
        text = render(source, ctx).strip()
    except RenderError as exc:
        errors.append(f"{key} failed to render: {exc.message}")
        return None
    if not text:
        errors.append(f"{key} rendered empty")
        return None
    count = group.get("count") if isinstance(group, Mapping) else None
    if isinstance(count, int) and count > 1 and not uses_variable(source, "group"):
        text = f"{count} alerts: {text}"
    return text[:MAX_MESSAGE]


def evaluate(
    rule: Rule,
    event: Any,
    now: datetime,
    *,
    contacts: Mapping[str, str],
    groups: Mapping[str, list[str]],
    ruleset: RuleSet,
    rotations: Collection[str] = (),
    resolved: bool = False,
    group: Mapping[str, Any] | None = None,
    preview: bool = False,
) -> Decision:
    """Evaluate ``rule`` on ``event`` at ``now`` (aware). Never raises for bad data.

    ``preview=True`` fills the notification fields even when the rule would
    not notify (for ``alertd test-rule``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    tz_name = ruleset.timezone_of(rule)
    tz = ZoneInfo(tz_name)
    ctx = _context(rule, event, now.astimezone(tz), resolved, group)
    errors: list[str] = []

    active = is_active(rule.active, now, tz_name)
    try:
        when_held = evaluate_condition(rule.when, ctx)
    except RenderError as exc:
        errors.append(f"when failed to evaluate: {exc.message}")
        when_held = False
    decision = Decision(
        rule_id=rule.id,
        when_held=when_held,
        active=active,
        resolved=resolved,
        dedup_key=_dedup_key(rule, event, ctx, errors),
        errors=errors,
    )
    decision.notify = active and (resolved or when_held)
    if decision.notify or preview:
        _fill(decision, rule, ctx, now, tz, group, ruleset, Recipients(contacts, groups, rotations))
    return decision


def _fill(d: Decision, rule: Rule, ctx: dict, now: datetime, tz: ZoneInfo, group: Any, ruleset: RuleSet, people: Recipients) -> None:
    notify = rule.notify
    named = None
    if notify.template is not None:
        if TPL_ID.fullmatch(notify.template):
            d.template_id = notify.template
        else:
            named = ruleset.templates.get(notify.template)
            if named is None:
                d.errors.append(f"unknown template '{notify.template}' in notify.template")

    def pick(name: str, default: Any) -> Any:
        value = getattr(notify, name)
        if value is None and named is not None:
            value = getattr(named, name)
        # with an API template, None means "the template's value" at send time
        return default if value is None and d.template_id is None else value

    d.recipients, d.rotations = people.resolve(notify.to, ctx, "notify.to", d.errors,
                                               names_from_event=notify.to_names_from_event)
    if not d.recipients and not d.rotations:
        d.errors.append("notify.to: no valid recipient")
    source = notify.message if notify.message is not None else (named.message if named else None)
    key = "notify.message" if notify.message is not None else f"template '{notify.template}'"
    d.message = _message(source, ctx, group, key, d.errors)
    d.action_type = pick("action_type", "call")
    d.voice = pick("voice", "alice")
    d.repeat = pick("repeat", 1)
    d.gather = pick("gather", False)
    d.language = pick("language", None)
    d.from_ = pick("from_", None)
    if d.from_ is not None:
        try:
            d.from_ = normalize(d.from_)
        except ValueError:
            d.errors.append(f"notify.from: '{d.from_}' is not a valid phone number")
            d.from_ = None
    d.source = named.source if named is not None else None
    d.retry = notify.retry
    d.send_at = _send_at(rule, ctx, now, tz, d.errors)
    for k, step in enumerate(notify.escalate):
        key = f"notify.escalate[{k}]"
        numbers, rots = people.resolve(step.to, ctx, f"{key}.to", d.errors, names_from_event=step.to_names_from_event)
        d.escalate.append(Step(
            after=step.after,
            recipients=numbers,
            rotations=rots,
            message=_message(step.message, ctx, group, f"{key}.message", d.errors) if step.message else d.message,
            action_type=step.action_type or d.action_type,
            voice=step.voice or d.voice,
            language=step.language or d.language,
            repeat=step.repeat or d.repeat,
            gather=d.gather if step.gather is None else step.gather,
            retry=step.retry or d.retry,
        ))
