"""providers: and routing: in config.yaml: a list of providers, `provider:` as a list of one,
errors naming the provider and the key at their line, secrets from files and ${VAR}."""
from __future__ import annotations

import textwrap

import pytest

from alertd import cli, config as config_mod

FULL = """\
server: {public_url: "https://alertd.example.com"}
providers:
  - {name: main, kind: twilio, account_sid: AC1, auth_token: tok, numbers: ["+15550000001"]}
  - {name: sw, kind: signalwire, project_id: p1, api_token: t, signing_key: k,
     api_base_url: "https://space.signalwire.com", numbers: ["+15550000002"]}
  - {name: tx, kind: telnyx, api_key: "${TX_KEY}", public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", application_id: app,
     numbers: ["+15550000003"]}
  - {name: vg, kind: vonage, application_id: app, private_key_file: ./vonage.key, signature_secret: s,
     numbers: ["+445550000004"]}
  - {name: pl, kind: plivo, auth_id: MA1, auth_token: tok, numbers: ["+15550000005"]}
  - {name: sim, kind: simulator}
routing:
  call: [main, tx]
  sms: [tx, main]
  by_prefix: {"+44": [vg, main], "+4420": [pl]}
"""


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(write(tmp_path, text))
    return [p.replace(str(tmp_path) + "/", "") for p in exc.value.problems]


def test_a_list_of_providers_loads_with_secrets_from_files_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("TX_KEY", "KEY-from-env")
    (tmp_path / "vonage.key").write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    config, warnings = config_mod.load(write(tmp_path, FULL))
    assert [(p.name, p.kind) for p in config.providers] == [
        ("main", "twilio"), ("sw", "signalwire"), ("tx", "telnyx"), ("vg", "vonage"), ("pl", "plivo"),
        ("sim", "simulator")]
    assert config.providers[2].api_key == "KEY-from-env"
    assert config.providers[3].private_key.startswith("-----BEGIN PRIVATE KEY-----")
    # the one-provider view that older code asks: every provider's numbers
    assert "+445550000004" in config.provider.numbers and "+15550000001" in config.provider.numbers
    assert warnings == []


def test_routing_takes_the_longest_prefix_then_the_channel_list_then_list_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TX_KEY", "k")
    (tmp_path / "vonage.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    config, _ = config_mod.load(write(tmp_path, FULL))
    names = [p.name for p in config.providers]
    r = config.routing
    assert r.order(names, "call", "+442071234567") == ["pl"]
    assert r.order(names, "sms", "+447700900123") == ["vg", "main"]
    assert r.order(names, "call", "+15551230001") == ["main", "tx"]
    assert r.order(names, "sms", "+15551230001") == ["tx", "main"]
    config.routing.call = None
    assert r.order(names, "call", "+15551230001") == names


def test_the_single_provider_key_is_a_list_of_one_named_after_its_kind(tmp_path):
    config, _ = config_mod.load(write(tmp_path, """\
        provider: {kind: twilio, account_sid: AC1, auth_token: tok, numbers: ["+15550000001"]}
        server: {public_url: "https://alertd.example.com"}
    """))
    assert [(p.name, p.kind, p.auth_token) for p in config.providers] == [("twilio", "twilio", "tok")]
    config, _ = config_mod.load(write(tmp_path, "timezone: UTC\n"))
    assert [(p.name, p.kind) for p in config.providers] == [("simulator", "simulator")]


@pytest.mark.parametrize("text, expected", [
    ("""\
        providers:
          - {name: main, kind: twilio, account_sid: AC1, auth_token: tok}
          - {name: tx, kind: telnyx}
     """, "config.yaml:3: providers[1]: provider 'tx' (telnyx): missing api_key (or api_key_file), public_key,"
          " application_id"),
    ("""\
        providers:
          - name: tx
            kind: telnyx
            api_key: k
            application_id: a
            public_key: not-a-key
     """, "config.yaml:6: providers[0].public_key: must be the base64 Ed25519 public key from the Telnyx portal"
          " (32 bytes)"),
    ("""\
        providers:
          - {name: vg, kind: vonage, application_id: a, signature_secret: s, private_key: "abc"}
     """, "config.yaml:2: providers[0]: provider 'vg' (vonage): private_key: not a PEM private key (the file the"
          " Vonage dashboard gave, -----BEGIN PRIVATE KEY-----)"),
    ("""\
        providers:
          - {name: vg, kind: vonage, application_id: a, signature_secret: s}
     """, "config.yaml:2: providers[0]: provider 'vg' (vonage): missing private_key (or private_key_file)"),
    ("""\
        providers:
          - name: pl
            kind: plivo
            auth_id: MA1
            auth_token: tok
            auth_tokn: typo
     """, "config.yaml:6: unknown key 'auth_tokn' in providers[0]"),
    ("""\
        providers:
          - {name: pl, kind: plivo, auth_id: MA1, auth_token: tok}
        routing:
          call: [pl, twillio]
     """, "config.yaml:4: routing.call[1]: unknown provider 'twillio' (providers are: pl)"),
    ("""\
        providers:
          - {name: a, kind: simulator}
          - {name: a, kind: simulator}
     """, "config.yaml:3: providers[1].name: 'a' is already provider 1"),
    ("""\
        providers:
          - {name: a, kind: nexmo}
     """, "config.yaml:2: providers[0]: Input tag 'nexmo' found using 'kind' does not match any of the"
          " expected tags: 'twilio', 'signalwire', 'telnyx', 'vonage', 'plivo', 'simulator'"),
    ("""\
        provider: {kind: simulator}
        providers:
          - {name: a, kind: simulator}
     """, "config.yaml:1: set provider (one) or providers (a list), not both"),
])
def test_bad_provider_config_names_the_line_the_provider_and_the_key(tmp_path, text, expected):
    assert expected in problems(tmp_path, text)


def test_check_names_a_provider_with_a_missing_key(tmp_path, capsys):
    path = write(tmp_path, """\
        providers:
          - {name: pl, kind: plivo, auth_id: MA1}
    """)
    assert cli.main(["check", "-c", str(path)]) != 0
    out = capsys.readouterr()
    assert "provider 'pl' (plivo): missing auth_token (or auth_token_file)" in out.out + out.err
