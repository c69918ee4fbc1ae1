"""One rule against one event: match, recipients, message, timing, errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from alertd.engine.evaluate import evaluate
from alertd.rules.models import Rule, Template
from alertd.rules.ruleset import RuleSet

CONTACTS = {"manager": "+15551230001", "owner": "+15551230002", "tech": "+15551230003"}
GROUPS = {"oncall": ["manager", "owner"], "everyone": ["oncall", "tech", "+1 (555) 123-0009", "ops"]}
ROTATIONS = ("ops",)
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)  # Tuesday 11:00 in New York


def make(**kw) -> tuple[Rule, RuleSet]:
    raw = {"id": "r1", "source": {"webhook": "hook"}, "notify": {"to": ["manager"], "message": "hi"}}
    notify = kw.pop("notify", {})
    raw.update(kw)
    raw["notify"] = {**raw["notify"], **notify}
    rule = Rule.model_validate(raw)
    templates = {"no_staff": Template.model_validate({
        "message": "No staff at {{ event.body.location }}.", "action_type": "both", "repeat": 2, "gather": True,
    })}
    return rule, RuleSet.build([(rule, "rules/r.yaml")], templates, "America/New_York")


def run(rule_and_set, event, now=NOW, **kw):
    rule, rs = rule_and_set
    return evaluate(rule, event, now, contacts=CONTACTS, groups=GROUPS, ruleset=rs, rotations=ROTATIONS, **kw)


def test_when_on_missing_data_does_not_match_and_is_not_an_error():
    rule = make(when="event.body.count == 0")
    d = run(rule, {})
    assert (d.when_held, d.matched, d.notify, d.errors) == (False, False, False, [])
    d = run(make(when="event.temperature > 30"), {"other": 1})
    assert (d.matched, d.errors) == (False, [])
    assert run(rule, {"body": {"count": 0}}).matched


def test_when_that_fails_for_another_reason_is_reported():
    d = run(make(when="event.temperature > 30"), {"temperature": "hot"})
    assert not d.matched
    assert d.errors == ["when failed to evaluate: TypeError: '>' not supported between instances of 'str' and 'int'"]


def test_outside_the_active_window_when_holds_but_nothing_is_sent():
    d = run(make(active={"from": "18:00", "until": "07:00"}), {})
    assert (d.when_held, d.active, d.matched, d.notify) == (True, False, False, False)
    assert d.recipients == [] and d.message is None


def test_recipients_merge_contacts_groups_numbers_and_templates_in_order():
    rule = make(notify={"to": ["oncall", "owner", "5551230004", "{{ event.customer.phone }}", "everyone",
                               "{{ event.team }}", "+15551230004"], "to_names_from_event": True})
    d = run(rule, {"customer": {"phone": "(555) 123-0005"}, "team": "tech"})
    assert d.errors == []
    assert d.recipients == ["+15551230001", "+15551230002", "+15551230004", "+15551230005",
                            "+15551230003", "+15551230009"]
    assert d.rotations == ["ops"]
    assert d.sendable


def test_to_rendering_to_no_valid_number_is_an_error_not_an_exception():
    d = run(make(notify={"to": ["{{ event.customer.phone }}"]}), {"customer": {"phone": "call me"}})
    assert d.recipients == []
    assert d.errors == [
        "notify.to: 'call me' (from '{{ event.customer.phone }}') is not a phone number; a name is looked up"
        " only when the rule writes it (to_names_from_event: true lifts this)",
        "notify.to: no valid recipient",
    ]
    assert not d.sendable
    d = run(make(notify={"to": ["{{ event.customer.phone }}"]}), {"customer": {"phone": "555"}})
    assert d.errors[0] == "notify.to: '555' (from '{{ event.customer.phone }}') is not a valid phone number"
    d = run(make(notify={"to": ["manager", "{{ event.customer.phone }}"]}), {})
    assert d.recipients == ["+15551230001"] and d.sendable
    assert d.errors == ["notify.to: '{{ event.customer.phone }}' rendered empty"]


def test_missing_key_renders_empty_and_null_renders_empty():
    d = run(make(notify={"message": "Door {{ event.door.name }} at {{ event.site }}"}), {"site": None})
    assert d.message == "Door  at" and d.errors == []


def test_render_failure_is_reported_not_raised():
    d = run(make(notify={"message": "{{ event.count + 1 }} alerts"}), {})
    assert d.message is None and not d.sendable
    assert d.errors == ["notify.message failed to render: missing data: 'dict object' has no attribute 'count'"]
    d = run(make(notify={"message": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}), {})
    assert d.message is None
    assert d.errors[0].startswith("notify.message failed to render: SecurityError:")


def test_named_template_with_overrides_and_defaults():
    d = run(make(notify={"template": "no_staff", "message": None, "repeat": 3}), {"body": {"location": "Main St"}})
    assert d.message == "No staff at Main St."
    assert (d.action_type, d.repeat, d.gather, d.voice) == ("both", 3, True, "alice")
    d = run(make(notify={"template": "no_staff", "message": "Override {{ rule.id }}"}), {})
    assert d.message == "Override r1" and d.action_type == "both"
    d = run(make(), {})
    assert (d.action_type, d.voice, d.repeat, d.gather, d.template_id) == ("call", "alice", 1, False, None)


def test_api_template_id_leaves_unset_fields_to_the_template():
    d = run(make(notify={"template": "tpl_a3f8b2c1d4e5", "message": None, "voice": "woman"}), {})
    assert d.template_id == "tpl_a3f8b2c1d4e5" and d.message is None
    assert (d.voice, d.action_type, d.repeat) == ("woman", None, None)
    assert d.sendable and d.errors == []


def test_delay_sets_send_at_after_now():
    d = run(make(notify={"delay": "1h"}), {})
    assert d.send_at == NOW + timedelta(hours=1)
    # an hour is an hour of real time, also across the DST change
    d = run(make(notify={"delay": "1h"}), {}, now=datetime(2026, 3, 8, 1, 30, tzinfo=ZoneInfo("America/New_York")))
    assert d.send_at == datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc)  # 03:30 EDT
    assert run(make(), {}).send_at is None


def test_at_without_offset_is_in_the_rules_timezone():
    rule = make(notify={"at": "{{ event.appointment_at }}"}, active={"timezone": "America/Chicago"})
    d = run(rule, {"appointment_at": "2026-03-11T08:00:00"})
    assert d.send_at == datetime(2026, 3, 11, 8, 0, tzinfo=ZoneInfo("America/Chicago"))
    d = run(rule, {"appointment_at": "2026-03-11T08:00:00Z"})
    assert d.send_at == datetime(2026, 3, 11, 8, 0, tzinfo=timezone.utc)
    d = run(rule, {"appointment_at": "tomorrow"})
    assert d.send_at is None
    assert d.errors == ["notify.at rendered 'tomorrow', which is not an ISO-8601 time such as 2026-03-08T09:00"]


def test_at_defaults_to_the_config_timezone():
    d = run(make(notify={"at": "2026-03-08T02:30"}), {})
    # 02:30 does not exist in New York that day; fold=0 reads it with the EST offset
    assert d.send_at == datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc)


def test_context_has_rule_now_in_rule_timezone_and_resolved():
    rule = make(notify={"message": "{{ rule.id }} {{ now.strftime('%H:%M %Z') }} {{ 'ok' if resolved else 'bad' }}"})
    d = run(rule, {}, resolved=True)
    assert d.message == "r1 11:00 EDT ok"


def test_resolved_notice_is_rendered_even_when_the_condition_no_longer_holds():
    rule = make(when="event.status != 200", repeat_every=None, notify_resolved=True,
                source={"poll": {"url": "http://x/health", "every": "30s"}},
                notify={"message": "{{ 'Back up' if resolved else 'Down' }}"})
    d = run(rule, {"status": 200}, resolved=True)
    assert not d.when_held and d.notify and d.message == "Back up"


def test_dedup_key_default_rendered_and_fingerprint():
    assert run(make(), {}).dedup_key == "r1"
    assert run(make(dedup_key="{{ event.host }}"), {"host": "db1"}).dedup_key == "db1"
    assert run(make(dedup_key="{{ event.host }}"), {}).dedup_key == "r1"
    am = make(source={"webhook": "am", "format": "alertmanager"})
    assert run(am, {"fingerprint": "abc123", "status": "firing"}).dedup_key == "abc123"


def test_group_of_several_is_prefixed_with_the_count_unless_the_message_uses_group():
    group = {"count": 50, "events": [{}] * 50}
    assert run(make(notify={"message": "Disk full"}), {}, group=group).message == "50 alerts: Disk full"
    assert run(make(notify={"message": "{{ group.count }} disks full"}), {}, group=group).message == "50 disks full"
    assert run(make(notify={"message": "Disk full"}), {}, group={"count": 1, "events": [{}]}).message == "Disk full"


def test_escalation_steps_inherit_unset_fields():
    rule = make(notify={"action_type": "call", "gather": True, "retry": {"times": 2, "every": "2m"},
                        "escalate": [{"after": "5m", "to": ["tech"]},
                                     {"after": "10m", "to": "oncall", "action_type": "both", "message": "Still {{ rule.id }}"}]})
    d = run(rule, {})
    first, second = d.escalate
    assert (first.after, first.recipients, first.message, first.action_type, first.gather) == (
        timedelta(minutes=5), ["+15551230003"], "hi", "call", True)
    assert first.retry.times == 2
    assert (second.recipients, second.message, second.action_type) == (
        ["+15551230001", "+15551230002"], "Still r1", "both")


def test_preview_fills_the_notification_even_when_not_matched():
    d = run(make(when="event.x == 1"), {}, preview=True)
    assert not d.notify and d.message == "hi" and d.recipients == ["+15551230001"]


def test_from_is_normalised():
    assert run(make(notify={"from": "5557654321"}), {}).from_ == "+15557654321"
