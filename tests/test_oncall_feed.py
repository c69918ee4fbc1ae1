"""Calendar feeds: GET /api/v1/oncall/{rotation}.ics parsed by the icalendar library,
with an override inside the window and the spring DST change; tokens made, listed and
revoked by the CLI, stored hashed and never logged; alertd oncall NAME --weeks N.
Every test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest
import requests

from alertd.clock import FakeClock
from conftest import both_backends

NY = ZoneInfo("America/New_York")
ROTATIONS = {"daily": {"members": ["oncall_primary", "oncall_secondary"], "shift": "1d", "start": "2026-01-05T09:00"},
             "weekly": {"members": ["oncall_secondary"], "shift": "1w", "start": "2026-01-05T09:00"}}
NOW = datetime(2026, 3, 5, 17, 0, tzinfo=timezone.utc)  # Thursday 12:00 EST, three days before DST starts

pytestmark = both_backends


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def alertd(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args, "-c", str(d.config_path)],
                          capture_output=True, text=True, timeout=60)


def new_feed(d, rotation: str = "daily") -> str:
    done = alertd(d, "oncall", "feed", rotation)
    assert done.returncode == 0, done.stderr
    (url,) = done.stdout.splitlines()
    return url


@pytest.fixture
def d(make_daemon):
    d = make_daemon({"rotations": ROTATIONS}, clock=FakeClock(NOW))
    # the manager covers the afternoon of Tuesday 10 March (after the change to EDT)
    d.run(d.daemon.store.overrides.add("daily", "manager", ny(2026, 3, 10, 12).timestamp(),
              ny(2026, 3, 10, 20).timestamp(), NOW.timestamp()))
    return d


def events(body: bytes) -> list[icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    assert cal["VERSION"] == "2.0" and "PRODID" in cal
    return list(cal.walk("VEVENT"))


def span(e) -> tuple[datetime, datetime, str]:
    return e["DTSTART"].dt, e["DTEND"].dt, str(e["SUMMARY"])


def test_the_feed_is_the_next_8_weeks_of_shifts_with_the_override_and_the_dst_change(d):
    r = requests.get(new_feed(d), timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "text/calendar; charset=utf-8"
    evs = events(r.content)
    spans = [span(e) for e in evs]
    # the shifts follow one another without a gap, from the one in progress to past the 8 weeks
    assert spans[0][:2] == (ny(2026, 3, 5, 9), ny(2026, 3, 6, 9))
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert spans[-1][0] < NOW + timedelta(weeks=8) <= spans[-1][1]
    assert len({str(e["UID"]) for e in evs}) == len(evs)
    assert all(e["DTSTAMP"].dt == NOW and str(e["TRANSP"]) == "TRANSPARENT" for e in evs)
    # 09:00 local on either side of the spring change: 14:00 UTC, then 13:00 UTC
    by_start = {s: (end, who) for s, end, who in spans}
    assert by_start[datetime(2026, 3, 7, 14, tzinfo=timezone.utc)][0] == datetime(2026, 3, 8, 13, tzinfo=timezone.utc)
    assert by_start[datetime(2026, 3, 8, 13, tzinfo=timezone.utc)][0] == datetime(2026, 3, 9, 13, tzinfo=timezone.utc)
    # the override cuts the scheduled shift in three, each with the right person
    tuesday = [s for s in spans if ny(2026, 3, 10, 9) <= s[0] < ny(2026, 3, 11, 9)]
    assert tuesday == [
        (ny(2026, 3, 10, 9), ny(2026, 3, 10, 12), "oncall_primary on call for daily"),
        (ny(2026, 3, 10, 12), ny(2026, 3, 10, 20), "manager on call for daily (override)"),
        (ny(2026, 3, 10, 20), ny(2026, 3, 11, 9), "oncall_primary on call for daily"),
    ]
    override = next(e for e in evs if "override" in str(e["SUMMARY"]))
    assert str(override["DESCRIPTION"]) == "manager (+15551230001), override"


def test_a_token_reads_its_own_rotation_only_and_stops_when_revoked(d):
    url = new_feed(d)
    other = new_feed(d, "weekly")
    assert requests.get(url, timeout=10).status_code == 200
    token = url.partition("token=")[2]
    changed = token[:-1] + ("y" if token.endswith("x") else "x")  # one in 64 tokens ends in x already
    for wrong in (url.replace(token, changed), url.partition("?")[0],
                  other.replace("/weekly.ics", "/daily.ics"), url.replace("/daily.ics", "/nosuch.ics")):
        r = requests.get(wrong, timeout=10)
        assert r.status_code == 404 and r.json()["ok"] is False
    listing = alertd(d, "oncall", "feed", "--list")
    assert listing.returncode == 0 and token not in listing.stdout
    lines = listing.stdout.splitlines()
    assert lines[1].split()[:3] == ["1", "daily", token[:8] + "..."] and lines[1].endswith(" -")
    done = alertd(d, "oncall", "feed", "--revoke", "1")
    assert (done.returncode, done.stdout) == (0, "revoked feed 1\n")
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(other, timeout=10).status_code == 200
    assert alertd(d, "oncall", "feed", "--revoke", "1").returncode == 1
    assert alertd(d, "oncall", "feed", "nosuch").stderr.startswith("unknown rotation 'nosuch'")


def test_the_token_is_stored_as_a_hash_and_never_logged(make_daemon, structlog_output):
    d = make_daemon({"rotations": ROTATIONS}, clock=FakeClock(NOW))
    url = new_feed(d)
    token = url.partition("token=")[2]
    assert requests.get(url, timeout=10).status_code == 200
    assert requests.get(url + "x", timeout=10).status_code == 404
    row = d.run(d.daemon.store.reach.find_feed("daily", hashlib.sha256(token.encode()).hexdigest()))
    assert row is not None
    assert token not in [str(v) for v in tuple(row)]
    logged = structlog_output.getvalue()
    assert '"path": "/api/v1/oncall/daily.ics"' in logged or '"path":"/api/v1/oncall/daily.ics"' in logged
    assert token not in logged and token[4:] not in logged


def test_alertd_oncall_weeks_prints_the_feeds_shifts(d):
    feed = [span(e) for e in events(requests.get(new_feed(d), timeout=10).content)]
    done = alertd(d, "oncall", "daily", "--weeks", "1", "--at", "2026-03-05T12:00")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "daily  (shifts of the next 1 week)",
        "  2026-03-05 09:00 EST - 2026-03-06 09:00 EST  oncall_secondary  +15551230003",
        "  2026-03-06 09:00 EST - 2026-03-07 09:00 EST  oncall_primary  +15551230002",
    ]
    assert "  2026-03-10 12:00 EDT - 2026-03-10 20:00 EDT  manager  +15551230001  (override)" in lines
    fmt = "%Y-%m-%d %H:%M %Z"
    from_feed = [(f"{s.astimezone(NY):{fmt}}", f"{e.astimezone(NY):{fmt}}", who.split()[0], "override" in who)
                 for s, e, who in feed if s < NOW + timedelta(weeks=1)]
    printed = [m.groups() for m in (re.match(r"^  (.+?) - (.+?)  (\S+)  \+\d+(  \(override\))?$", x)
                                    for x in lines[1:])]
    assert [(a, b, who, bool(ov)) for a, b, who, ov in printed] == from_feed
