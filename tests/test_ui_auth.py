"""Dashboard logins over a real socket: users, sessions, CSRF, the failed-login delay, API separation.
The tests of users and sessions kept in the database run on SQLite and on PostgreSQL; the login delay
is kept in memory, so its (slow) tests run once."""
from __future__ import annotations

import io
import re
import time

import requests

from alertd import cli
from alertd.ui import auth
from conftest import both_backends, sync

PASSWORD = "correct horse battery"


def add_user(d, name="ops", password=PASSWORD):
    d.run(d.daemon.store.users.add(name, auth.hash_password(password), time.time()))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(d, name="ops", password=PASSWORD) -> tuple[requests.Session, requests.Response]:
    s = requests.Session()
    page = s.get(d.url("/ui/login"), timeout=5)
    r = s.post(d.url("/ui/login"), data={"username": name, "password": password, "csrf": csrf_of(page.text)},
               timeout=30)
    return s, r


def test_password_hash_is_scrypt_with_a_salt_and_checks():
    h = auth.hash_password("secret-pass")
    assert h.startswith("scrypt$16384$8$1$") and h != auth.hash_password("secret-pass")
    assert auth.check_password("secret-pass", h) and not auth.check_password("secret-pas", h)


@both_backends
def test_users_add_reads_the_password_from_stdin(make_daemon, monkeypatch, capsys):
    d = make_daemon()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "alice", "--password-stdin", "-c", str(d.config_path)]) == 0
    assert "user 'alice' added" in capsys.readouterr().out
    row = d.run(d.daemon.store.users.get("alice"))
    assert row["password_hash"].startswith("scrypt$") and PASSWORD not in row["password_hash"]
    s, r = login(d, "alice")
    assert r.url.endswith("/ui/") and "Trigger log" in r.text


def test_users_add_refuses_a_short_password(make_daemon, monkeypatch):
    d = make_daemon()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "add", "bob", "--password-stdin", "-c", str(d.config_path)]) == 1


@both_backends
def test_pages_need_a_login_and_the_cookie_is_httponly_strict(make_daemon):
    d = make_daemon()
    add_user(d)
    r = requests.get(d.url("/ui/"), timeout=5, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    s, r = login(d)
    cookie = r.history[0].headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    ((stored,),) = d.query("SELECT session_hash FROM ui_sessions")
    assert s.cookies["alertd_session"] not in stored  # only the hash is kept


def test_session_is_secure_when_public_url_is_https(make_daemon):
    d = make_daemon({"server": {"public_url": "https://alerts.example.com"}})
    add_user(d)
    page = requests.get(d.url("/ui/login"), timeout=5)
    assert "Secure" in page.headers["set-cookie"]
    # requests keeps Secure cookies from plain http: hand it over by hand
    r = requests.post(d.url("/ui/login"), data={"username": "ops", "password": PASSWORD, "csrf": csrf_of(page.text)},
                      headers={"Cookie": f"alertd_login_csrf={csrf_of(page.text)}"}, timeout=10,
                      allow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


@both_backends
def test_a_post_without_the_csrf_token_is_refused(make_daemon):
    d = make_daemon()
    add_user(d)
    s, _ = login(d)
    r = s.post(d.url("/ui/keys"), data={"name": "x"}, timeout=5)
    assert r.status_code == 403
    r = s.post(d.url("/ui/keys"), data={"name": "x", "csrf": "wrong"}, timeout=5)
    assert r.status_code == 403
    page = s.get(d.url("/ui/keys"), timeout=5)
    r = s.post(d.url("/ui/keys"), data={"name": "x", "csrf": csrf_of(page.text)}, timeout=5)
    assert r.status_code == 200 and "ak_live_" in r.text


def test_login_form_needs_its_csrf_cookie(make_daemon):
    d = make_daemon()
    add_user(d)
    r = requests.post(d.url("/ui/login"), data={"username": "ops", "password": PASSWORD, "csrf": "x"}, timeout=5)
    assert r.status_code == 403


def test_failed_logins_wait_longer_each_time_but_the_right_password_still_works(make_daemon):
    d = make_daemon()
    add_user(d)
    started = time.monotonic()
    _, r = login(d, password="wrong")
    first = time.monotonic() - started
    assert "Wrong user name or password" in r.text and 0.9 < first < 3
    started = time.monotonic()
    login(d, password="wrong again")
    assert time.monotonic() - started >= 1.9
    started = time.monotonic()
    s, r = login(d)
    assert r.url.endswith("/ui/") and time.monotonic() - started < 1.5


@both_backends
def test_logout_ends_the_session(make_daemon):
    d = make_daemon()
    add_user(d)
    s, r = login(d)
    s.post(d.url("/ui/logout"), data={"csrf": csrf_of(r.text)}, timeout=5)
    assert s.get(d.url("/ui/"), timeout=5, allow_redirects=False).status_code == 303
    assert d.query("SELECT COUNT(*) FROM ui_sessions") == [(0,)]


@both_backends
def test_api_keys_and_sessions_do_not_cross(make_daemon):
    d = make_daemon()
    add_user(d)
    assert d.api.get(d.url("/ui/"), timeout=5, allow_redirects=False).status_code == 303
    s, _ = login(d)
    assert s.get(d.url("/api/v1/calls/logs"), timeout=5).status_code == 401


def test_the_dashboard_can_be_turned_off(make_daemon):
    d = make_daemon({"ui": {"enabled": False}})
    assert requests.get(d.url("/ui/login"), timeout=5).status_code == 404


def test_guesses_from_another_address_never_queue_in_front_of_the_owner(make_daemon):
    """Wrong passwords for the owner's name sent in parallel from elsewhere (the
    reverse proxy on this host passes the address in X-Forwarded-For) delay only
    their sender: the owner logs in at once."""
    import concurrent.futures

    d = make_daemon()
    add_user(d)

    def guess(k: int) -> float:
        s = requests.Session()
        s.headers["X-Forwarded-For"] = "203.0.113.7"
        page = s.get(d.url("/ui/login"), timeout=5)
        started = time.monotonic()
        s.post(d.url("/ui/login"), data={"username": "ops", "password": f"guess {k}", "csrf": csrf_of(page.text)},
               timeout=60)
        return time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        guesses = [pool.submit(guess, k) for k in range(4)]
        # the guesses hold their address's turn: the first has failed and serves its delay
        d.wait_until(lambda: d.daemon.app.state.login_throttle.failures.get("203.0.113.7", 0) >= 1,
                     what="the first guess to fail")
        started = time.monotonic()
        s, r = login(d)
        owner = time.monotonic() - started
        waits = sorted(g.result() for g in guesses)
    assert r.url.endswith("/ui/") and owner < 1.5, owner
    assert waits[-1] >= 1 + 2 + 3 + 4 - 0.5  # one address guesses one at a time, each waiting longer


def test_the_throttle_forgets_the_stalest_addresses_not_the_one_at_hand():
    import asyncio

    throttle = auth.LoginThrottle(base=0.0, max_clients=3)

    async def go():
        for _ in range(5):
            await throttle.failed("198.51.100.1")
        for k in range(10):
            await throttle.failed(f"192.0.2.{k}")
            await throttle.failed("198.51.100.1")
    asyncio.run(go())
    assert throttle.failures["198.51.100.1"] == 15 and len(throttle.failures) == 3


def test_a_csrf_value_that_is_not_ascii_is_refused_not_a_crash(make_daemon):
    d = make_daemon()
    add_user(d)
    s, _ = login(d)
    r = s.post(d.url("/ui/keys"), data={"name": "x", "csrf": "é"}, timeout=10)
    assert r.status_code == 403
    page = requests.get(d.url("/ui/login"), timeout=5)
    r = requests.post(d.url("/ui/login"), data={"username": "ops", "password": PASSWORD, "csrf": "é"},
                      cookies=page.cookies, timeout=10)
    assert r.status_code == 403


def test_pages_forbid_inline_script_framing_and_sniffing(make_daemon):
    d = make_daemon()
    add_user(d)
    s, r = login(d)
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
