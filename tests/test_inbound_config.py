"""inbound: and notify_shift: in config.yaml: what is accepted, and errors naming file:line: key."""
from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from alertd import config as config_mod
from test_config_rotations import HEAD as ROTATIONS_HEAD

# the rotations test's contacts, group and rotations: key, with a provider and one rotation
HEAD = """\
provider:
  kind: simulator
  numbers: ["+15557654321", "+15557650000"]
""" + ROTATIONS_HEAD + """\
  ops:
    members: [alice, bob]
    shift: 1w
    start: 2026-01-05T09:00
"""


def load(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + text)
    return config_mod.load(path)[0]


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(config_mod.ConfigError) as exc:
        load(tmp_path, text)
    return [p.replace(str(tmp_path) + "/", "") for p in exc.value.problems]


def test_the_issue_example_is_accepted_with_its_defaults(tmp_path):
    cfg = load(tmp_path, textwrap.dedent("""\
        inbound:
          "+15557654321":
            rotation: ops
            greeting: "You have reached the on-call engineer for Acme. Connecting you now."
            ring: 20s
            then: [bob, team, "+15551239999"]
            voicemail: true
            language: en-US
          "(555) 765-0000": {to: [alice, bob]}
        """))
    entry = cfg.inbound["+15557654321"]
    assert entry.targets == ["ops", "bob", "team", "+15551239999"]
    assert entry.ring == timedelta(seconds=20)
    assert entry.voicemail.transcribe is False and entry.voicemail.escalate_after == timedelta(minutes=10)
    assert cfg.inbound["(555) 765-0000"].targets == ["alice", "bob"]
    assert cfg.inbound["(555) 765-0000"].voicemail is None


def test_notify_shift_is_read_with_its_defaults(tmp_path):
    cfg = load(tmp_path, "  nights:\n    members: [bob]\n    shift: 12h\n    start: 2026-01-05T21:00\n"
                         "    notify_shift: {}\n")
    assert cfg.rotations["nights"].notify_shift.before == timedelta(hours=1)
    assert cfg.rotations["nights"].notify_shift.action_type == "sms"
    assert cfg.rotations["ops"].notify_shift is None


@pytest.mark.parametrize("text, expected", [
    ('inbound:\n  "+15550001234": {rotation: ops}\n',
     ["config.yaml:16: inbound.+15550001234: +15550001234 is not one of the provider's numbers"
      " (provider.numbers: +15557654321, +15557650000)"]),
    ('inbound:\n  "call me": {rotation: ops}\n',
     ["config.yaml:16: inbound.call me: Invalid phone number format: 'call me'"]),
    ('inbound:\n  "+15557654321": {rotation: opps}\n',
     ["config.yaml:16: inbound.+15557654321.rotation: unknown rotation 'opps'"]),
    ('inbound:\n  "+15557654321": {group: ops}\n',
     ["config.yaml:16: inbound.+15557654321.group: unknown group 'ops'"]),
    ('inbound:\n  "+15557654321":\n    rotation: ops\n    then: [bob, manger]\n',
     ["config.yaml:18: inbound.+15557654321.then[1]: unknown name 'manger' (a contact, group or rotation,"
      " or a number like +15551230001)"]),
    ('inbound:\n  "+15557654321": {rotation: ops, contact: bob}\n',
     ["config.yaml:16: inbound.+15557654321: give exactly one of rotation, contact, group or to (a list);"
      " got rotation, contact"]),
    ('inbound:\n  "+15557654321": {greeting: hello}\n',
     ["config.yaml:16: inbound.+15557654321: give exactly one of rotation, contact, group or to (a list)"]),
    ('inbound:\n  "+15557654321":\n    rotation: ops\n    ring: 2s\n',
     ["config.yaml:18: inbound.+15557654321.ring: must be from 5s to 10m (write it like 20s)"]),
    ('inbound:\n  "+15557654321":\n    rotation: ops\n    language: english\n',
     ["config.yaml:18: inbound.+15557654321.language: 'english' is not a language tag like en-US"]),
    ('inbound:\n  "+15557654321":\n    rotation: ops\n    voicemail: {transcribe: yes, max_len: 1m}\n',
     ["config.yaml:18: unknown key 'max_len' in inbound.+15557654321.voicemail"]),
    ('inbound:\n  "+15557654321":\n    rotation: ops\n    rign: 20s\n',
     ["config.yaml:18: unknown key 'rign' in inbound.+15557654321"]),
    ("    notify_shift: {before: 30s}\n",
     ["config.yaml:15: rotations.ops.notify_shift.before: must be from 1m to 1w (write it like 1h)"]),
    ("    notify_shift: {before: 1h, action_type: fax}\n",
     ["config.yaml:15: rotations.ops.notify_shift.action_type: Input should be 'sms', 'call' or 'both'"]),
])
def test_a_broken_inbound_or_notify_shift_is_an_error_naming_file_line_and_key(tmp_path, text, expected):
    assert problems(tmp_path, text) == expected


def test_an_inbound_number_only_plivo_or_vonage_owns_is_accepted(tmp_path):
    providers = ('providers:\n  - {name: pl, kind: plivo, auth_id: MA1, auth_token: tok, numbers: ["+15557654321"]}\n'
                 '  - {name: vg, kind: vonage, application_id: app, private_key: "-----BEGIN PRIVATE KEY-----",'
                 ' signature_secret: s, numbers: ["+15557650000"]}\n')
    path = tmp_path / "config.yaml"
    inbound = 'inbound:\n  "+15557654321": {rotation: ops}\n  "+15557650000": {rotation: ops}\n'
    path.write_text(HEAD.replace(HEAD[:HEAD.index(ROTATIONS_HEAD)], providers) + inbound)
    cfg = config_mod.load(path)[0]
    assert sorted(cfg.inbound) == ["+15557650000", "+15557654321"]


def test_the_check_and_the_webhooks_agree_on_which_kinds_route_inbound_calls():
    """`alertd check` (a leaf, oncall_config) and /providers/NAME/voice (the dialects) list the same kinds,
    and every kind a providers: entry can have is one of them."""
    import typing

    from alertd.oncall_config import INBOUND_KINDS
    from alertd.provider_config import ProviderEntry
    from alertd.providers import inbound_voice
    assert sorted(INBOUND_KINDS) == sorted(inbound_voice.KINDS)
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0]
             for m in typing.get_args(typing.get_args(ProviderEntry)[0])}
    assert kinds <= set(INBOUND_KINDS)
    assert all(inbound_voice.dialect(k) is not None for k in INBOUND_KINDS)
