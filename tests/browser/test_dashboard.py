"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

No browser download: Playwright launches /usr/bin/chromium by its path. The
tests skip, saying why, when either is missing. Screenshots of the main pages
at desktop (1280 px) and phone (390 px) widths go to tests/browser/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from alertd.ui import auth
from alertd.dispatch.notification import Notification
from conftest import sync

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).parent / "screenshots"
DOCS = Path(__file__).parents[2] / "docs"
PASSWORD = "correct horse battery"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (Debian) to run the browser tests",
                allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed"
                                      " (pip install playwright; no `playwright install` needed)")


@pytest.fixture
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def site(make_daemon, tmp_path, browser):
    """A daemon with a user and a broken rule file, and a logged-in page (1280 px)."""
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "broken.yaml").write_text("rules:\n  - id: door\n    tmeplate: nope\n")
    (tmp_path / "rules" / "server.yaml").write_text(
        "rules:\n  - id: server-down\n    source:\n      webhook: server\n"
        "    notify:\n      to: [manager]\n      message: Server down\n      action_type: sms\n")
    (tmp_path / "rules" / "z-backup.yaml").write_text(  # after server.yaml: a dry run starts on the first rule
        "rules:\n  - id: nightly-backup-of-the-main-database\n    source:\n      heartbeat: {every: 1h, slug: nightly}\n"
        "    notify:\n      to: [manager]\n      message: Backup late\n")
    d = make_daemon({"provider": {"simulate_press": True}})
    d.daemon.provider.delay = 1.5  # slow enough to see the row before the press of 1
    d.run(d.daemon.store.users.add("ops", auth.hash_password(PASSWORD), time.time()))
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # a context: room for a second tab
    page = context.new_page()
    page.goto(d.url("/ui/"))
    assert page.url.endswith("/ui/login")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/ui/")
    yield d, page
    context.close()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        # no sideways scrolling on a phone
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_notification_appears_live_and_turns_acknowledged_when_1_is_pressed(site):
    d, page = site
    page.locator("#live", has_text="Live:").wait_for(timeout=10000)  # the event stream opened
    r = d.notify({"to": "+15551234567", "message": "Server room too hot", "gather": True, "source": "sensor"})
    log_id = r.json()["calls"][0]["log_id"]
    row = page.locator(f"#log-{log_id}")
    row.wait_for(timeout=2500)  # within 2 s of the poll, without a reload
    assert "Server room too hot" in row.inner_text()
    assert "acknowledged" not in row.locator(".badge").inner_text()
    # the page's Content-Security-Policy forbids eval, so no wait_for_function: a retrying locator
    page.locator(f"#log-{log_id} .badge", has_text="acknowledged").wait_for(timeout=8000)
    assert "+15551234567" in page.locator(f"#log-{log_id} .ack").inner_text()
    # a refused number and a text, for a screenshot that shows more than one kind of row
    now = time.time()
    failed = d.run(d.daemon.store.logs.create_trigger({"created_at": now, "source": "timeclock"}, [
        Notification(to="+15550001111", type="call", message="Alert: No staff have clocked in.", params={},
                     status="failed", error={"code": 21211, "message": "The 'To' number is not valid."})], now))
    d.notify({"to": "+15551234569", "message": "Order 1042 shipped", "action_type": "sms", "source": "shop"})
    page.locator(f"#log-{failed[0].log_id}").wait_for(timeout=2500)
    assert "invalid 'To' number" in page.locator(f"#log-{failed[0].log_id}").inner_text()
    page.wait_for_timeout(600)
    shoot(page, "trigger-log")
    if os.environ.get("ALERTD_UPDATE_SCREENSHOT"):  # the README's picture, refreshed on purpose only
        shutil.copy(SHOTS / "trigger-log-1280.png", DOCS / "trigger-log.png")
    page.click(f"#log-{log_id} a:has-text('Story')")
    page.wait_for_url("**/triggers/*")
    story = page.locator("main").inner_text()
    assert "Pressed 1 / acknowledged" in story and "+15551234567" in story and "Call" in story
    assert re.search(r"Call callbacks\s+ringing \d\d:\d\d:\d\d,?\s+in-progress \d\d:\d\d:\d\d", story), story
    shoot(page, "trigger-story")


def test_acknowledge_button_acknowledges_the_trigger(site):
    d, page = site
    d.daemon.provider.press = False
    log_id = d.notify({"to": "+15551234568", "message": "Door open", "gather": True}).json()["calls"][0]["log_id"]
    page.locator(f"#log-{log_id} button:has-text('Acknowledge')").wait_for(timeout=2500)
    page.locator(f"#log-{log_id} button:has-text('Acknowledge')").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # keyboard-usable
    assert "dashboard:ops" in page.locator(f"#log-{log_id} .ack").inner_text()
    assert d.run(d.daemon.store.logs.get(log_id))["acknowledged_by"] == "dashboard:ops"


def test_create_a_key_see_it_once_and_revoke_it(site):
    d, page = site
    page.click("nav >> text=API keys")
    page.fill("input[name=name]", "zapier")
    page.click("button:has-text('Create a key')")
    key = page.locator("#new-key").inner_text()
    assert key.startswith("ak_live_")
    page.click("#copy-key")
    assert d.api.get(d.url("/api/v1/calls/logs"), headers={"Authorization": f"Bearer {key}"}).status_code == 200
    shoot(page, "keys")
    page.goto(d.url("/ui/keys"))
    assert page.locator("#new-key").count() == 0 and key not in page.content()
    assert "zapier" in page.locator("#keys").inner_text()
    page.click("button:has-text('Revoke zapier')")
    assert "revoked" in page.locator("#keys tr:has-text('zapier')").inner_text()
    assert d.api.get(d.url("/api/v1/calls/logs"), headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_add_and_end_a_silence(site):
    d, page = site
    page.click("nav >> text=silences")
    page.select_option("select[name=matcher]", "source")
    page.fill("input[name=value]", "timeclock")
    page.fill("input[name=duration]", "2h")
    page.fill("input[name=reason]", "maintenance")
    page.click("button:has-text('Add the silence')")
    table = page.locator("#silences")
    assert "source = timeclock" in table.inner_text() and "dashboard:ops" in table.inner_text()
    shoot(page, "silences")
    page.click("#silences button:has-text('End')")
    assert "timeclock" not in page.locator("#silences").inner_text()


def test_a_broken_rule_file_shows_its_error(site):
    d, page = site
    page.click("nav >> text=Rules")
    errors = page.locator(".errors").inner_text()
    assert "broken.yaml:3" in errors and "tmeplate" in errors
    assert "server-down" in page.locator("#rules").inner_text()  # the good file still loads
    d.api.post(d.url("/hooks/server"), json={"x": 1})
    page.reload()
    assert "never" not in page.locator("#rules tr:has-text('server-down')").inner_text()
    assert page.locator(".errors li").first.evaluate("e => getComputedStyle(e).color") == "rgb(176, 0, 32)"
    shoot(page, "rules")


def test_trigger_log_with_1000_rows_weight_and_load_time(site):
    d, page = site
    now = time.time()
    rows = [Notification(to=f"+1555{i:07d}", type="call", message=f"Alert number {i}: no staff clocked in",
                         params={}, status="failed", error={"code": 21211, "message": "invalid"}) for i in range(1000)]
    d.run(d.daemon.store.logs.create_trigger({"created_at": now, "source": "bench"}, rows, now))
    page.goto("about:blank")
    started = time.monotonic()
    page.goto(d.url("/ui/?limit=1000"), wait_until="load")
    load_s = time.monotonic() - started
    assert page.locator("table.log tbody tr").count() == 1000
    entries = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
        performance.getEntriesByType('resource')).filter(e => !e.name.includes('/events'))
        .map(e => ({name: e.name, transfer: e.transferSize, body: e.decodedBodySize, dur: e.duration}))""")
    total = sum(e["transfer"] for e in entries)
    # CSS and JS came from the cache here: a first visit also fetches them (uncompressed)
    cold = entries[0]["transfer"] + sum(e["body"] for e in entries[1:])
    report = {"rows": 1000, "bytes_transferred": total, "first_visit_bytes": cold, "load_seconds": round(load_s, 3),
              "navigation_ms": round(entries[0]["dur"], 1), "entries": entries}
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / "page-weight.json").write_text(json.dumps(report, indent=1))
    print("trigger log, 1,000 rows:", total, "bytes (first visit", cold, "),", round(load_s, 3), "s")
    assert total > 0 and load_s < 5


def test_send_a_test_from_a_new_template_and_watch_it_live(site):
    d, log_page = site
    log_page.locator("#live", has_text="Live:").wait_for(timeout=10000)  # the event stream opened
    page = log_page.context.new_page()  # the same login, a second tab
    page.goto(d.url("/ui/"))
    page.click("nav >> text=Templates")
    form = page.locator("form[aria-labelledby=new]")
    form.get_by_label("Name").fill("server-room")
    form.get_by_label("Message").fill("Server room too hot: check the air conditioning.")
    form.get_by_label("Send as").select_option("call")
    form.get_by_label("Ask to press 1").check()
    form.get_by_role("button", name="Create the template").click()
    row = page.locator("#templates tr:has-text('server-room')")
    template_id = row.get_attribute("id")
    assert template_id.startswith("tpl_") and "press 1" in row.inner_text()
    assert [t["template_id"] for t in d.api.get(d.url("/api/v1/calls/templates")).json()["templates"]] == \
        [template_id]
    row.get_by_label("Number for a test of server-room").fill("555 123 4570")
    row.get_by_role("button", name="Send a test").click()
    assert "Test sent to +15551234570" in page.locator("#test-sent").inner_text()
    shoot(page, "templates")
    # the trigger log in the first tab: the row arrives, then turns acknowledged when 1 is pressed
    live = log_page.locator("#log tbody tr:has-text('Server room too hot: check')")
    live.wait_for(timeout=2500)
    assert "dashboard-test" in live.inner_text() and "acknowledged" not in live.locator(".badge").inner_text()
    log_id = live.get_attribute("data-id")
    log_page.locator(f"#log-{log_id} .badge", has_text="acknowledged").wait_for(timeout=8000)
    assert "+15551234570" in log_page.locator(f"#log-{log_id} .ack").inner_text()
    page.close()


def test_at_a_glance_draws_the_charts_and_fits_a_phone(site):
    d, page = site
    d.daemon.provider.press = False
    now = time.time()
    for k, (status, ack) in enumerate([("initiated", 40), ("initiated", 200), ("failed", None), ("silenced", None),
                                       ("initiated", None), ("initiated", 75)] * 3):
        at = now - k * 5400  # spread over the last day
        (row,) = d.run(d.daemon.store.logs.create_trigger({"created_at": at, "source": "sensor"}, [
            Notification(to="+15551230001", type="call", message="x", params={}, status=status)], at))
        if ack:
            d.run(d.daemon.store.logs.acknowledge(row.log_id, at + ack, by="+15551230001"))
    page.click("nav >> text=At a glance")
    page.wait_for_url("**/ui/glance")
    assert page.locator("#chart-hours rect.seg").count() >= 10 and page.locator("#chart-days rect.seg").count() >= 3
    assert "acknowledged" in page.locator("#ack-summary").inner_text()
    # a bar says what it shows in words (its title), not by colour
    assert ": " in page.locator("#chart-days g.bar title").last.text_content()
    summary = page.locator("details.numbers summary").first
    summary.focus()
    page.keyboard.press("Enter")  # the numbers behind the chart open from the keyboard
    assert page.locator("details.numbers").first.evaluate("e => e.open")
    shoot(page, "glance")


def test_every_page_fits_390_px_and_every_field_has_a_label(site):
    d, page = site
    d.notify({"to": "+15551234567", "message": "A long message " * 20, "source": "a-rather-long-source-name"})
    d.api.post(d.url("/api/v1/calls/templates"), json={"name": "door", "message": "Door open " * 30})
    template_id = d.api.get(d.url("/api/v1/calls/templates")).json()["templates"][0]["template_id"]
    page.set_viewport_size({"width": 390, "height": 800})
    unlabeled = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"""
    for path in ("/ui/", "/ui/triggers/1", "/ui/glance", "/ui/templates", f"/ui/templates/{template_id}",
                 "/ui/keys", "/ui/silences", "/ui/rules?rule=server-down", "/ui/heartbeats",
                 "/ui/heartbeats/nightly-backup-of-the-main-database"):
        page.goto(d.url(path))
        for details in page.locator("details").all():
            details.evaluate("e => e.open = true")  # the tables behind the charts too
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        assert page.evaluate(unlabeled) == [], path
    page.goto(d.url("/ui/rules?rule=server-down"))
    page.get_by_label("Sample event (JSON)").fill('{"a": 1}')
    page.get_by_role("button", name="Dry run").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.clear_cookies()
    page.goto(d.url("/ui/login"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 and page.evaluate(unlabeled) == []


def test_a_dry_run_by_keyboard_alone(site):
    d, page = site
    page.goto(d.url("/ui/rules"))
    page.locator("select[name=rule]").focus()
    page.keyboard.press("Tab")  # to the event
    page.keyboard.type('{"temp": 34}')
    page.keyboard.press("Tab")  # to "as the resolved notification"
    page.keyboard.press("Tab")  # to the button
    with page.expect_navigation():
        page.keyboard.press("Enter")
    result = page.locator("#dry-result").inner_text()
    assert "rule:        server-down (rules/server.yaml)" in result and "would send:  yes" in result
    assert "to:          +15551230001" in result and "message:     Server down" in result
    assert d.daemon.provider.sent == []
    shoot(page, "rules-dry-run")
