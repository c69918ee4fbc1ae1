"""Providers on PostgreSQL: which provider carried a call, and the provider's own word for a
status beside alertd's, stored in the shared database."""
from __future__ import annotations

import pytest

from fake_vonage import FakeVonage
from provider_steps import notify, row

TO, FROM = "+15551230001", "+15550000004"


@pytest.fixture
def vonage():
    with FakeVonage() as fake:
        yield fake


def test_the_provider_of_a_call_and_its_own_status_word_are_stored_on_postgresql(pg_url, make_daemon, vonage,
                                                                                  tmp_path):
    (tmp_path / "vonage.key").write_text(vonage.private_key_pem)
    d = make_daemon({"database": pg_url, "providers": [{
        "name": "vg", "kind": "vonage", "application_id": vonage.application_id,
        "private_key_file": str(tmp_path / "vonage.key"), "signature_secret": vonage.signature_secret,
        "api_base_url": vonage.base_url, "numbers": [FROM], "timeout": "5s"}]})
    log_id = notify(d, TO)["log_id"]
    call = vonage.wait_for(1, "call")[0]
    assert vonage.event(call.sid, "unanswered")[0] == 200
    got = row(d, log_id)
    assert (got["call_status"], got["provider"]) == ("no-answer", "vg")
    (kept,) = d.run(d.daemon.store.status.history([log_id]))[log_id]
    assert (kept["status"], kept["provider_status"]) == ("no-answer", "unanswered")
