"""Security of the review app: CSRF, session fixation, throttling, XSS, traversal, hostile HTML."""

from __future__ import annotations

import pytest

from scanner.store.base import Status
from scanner.web.message import safe_body_html
from scanner.web.security import SESSION_COOKIE
from tests.web.factories import PASSWORD, Env, csrf_of, login, make_raw, session_csrf


def test_post_without_csrf_token_is_refused(env: Env) -> None:
    """A cookie-authenticated decision without (or with a wrong) CSRF token changes nothing."""
    qid = env.hold()
    client = env.client("rev")
    for data in ({"decision": "release", "reason": "x"},
                 {"decision": "release", "reason": "x", "csrf_token": "forged"}):
        assert client.post(f"/quarantine/{qid}/decide", data=data).status_code == 403
    r = client.post(f"/api/v1/quarantine/{qid}/release", json={"reason": "x"})
    assert r.status_code == 403
    assert env.store.get(qid).status is Status.HELD


def test_cross_origin_post_is_refused(env: Env) -> None:
    """A right token from a foreign Origin is still refused."""
    qid = env.hold()
    client = env.client("rev")
    token = session_csrf(client)
    r = client.post(f"/quarantine/{qid}/decide", headers={"Origin": "https://evil.example"},
                    data={"decision": "release", "reason": "x", "csrf_token": token})
    assert r.status_code == 403
    assert env.store.get(qid).status is Status.HELD


def test_login_form_needs_its_token(env: Env) -> None:
    """A log-in POST without the form's double-submit token is refused (login CSRF)."""
    client = env.client()
    r = client.post("/login", data={"username": "rev", "password": "x" * 20})
    assert r.status_code == 403


def test_session_fixation_planted_id_is_replaced(env: Env) -> None:
    """A session id the browser brought is never kept: log-in issues a fresh one."""
    attacker = env.client()
    login(attacker, "aud")
    planted = attacker.cookies[SESSION_COOKIE]
    victim = env.client()
    form_token = csrf_of(victim.get("/login").text)
    victim.cookies.set(SESSION_COOKIE, planted)
    response = victim.post("/login", data={"username": "rev", "password": PASSWORD,
                                           "csrf_token": form_token}, follow_redirects=False)
    issued = response.cookies[SESSION_COOKIE]
    assert issued
    assert issued != planted
    # and the planted session is dead, so the attacker holds nothing of the victim's
    assert attacker.get("/quarantine", follow_redirects=False).status_code == 303


def test_cookie_flags(env: Env) -> None:
    """The session cookie is Secure, HttpOnly and SameSite=Strict."""
    r = login(env.client(), "rev")
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_logout_ends_session_server_side(env: Env) -> None:
    """After log-out the old session id no longer works even if replayed."""
    client = env.client("rev")
    sid = client.cookies[SESSION_COOKIE]
    client.post("/logout", data={"csrf_token": session_csrf(client)})
    replay = env.client()
    replay.cookies.set(SESSION_COOKIE, sid)
    assert replay.get("/quarantine", follow_redirects=False).status_code == 303


def test_idle_timeout(env: Env) -> None:
    """A session unused for longer than the idle timeout is logged out."""
    from datetime import timedelta

    client = env.client("rev")
    env.clock[0] += timedelta(minutes=31)
    assert client.get("/quarantine", follow_redirects=False).status_code == 303


def test_login_rate_limit(env: Env) -> None:
    """After five failures even the right password is refused for a while."""
    client = env.client()
    for _ in range(5):
        assert login(client, "rev", "wrong password!!").status_code == 401
    assert login(client, "rev").status_code == 429
    assert ("rev", "login_throttled") in [(e.actor, e.action) for e in env.store.audit()]


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def test_stored_xss_is_escaped_everywhere(env: Env) -> None:
    """A hostile subject, body and attachment name appear only escaped in list and view."""
    raw = make_raw(subject=f"Zephyr-9 {HOSTILE}", body=f"Zephyr-9 {HOSTILE}",
                   attachment_name="<svg onload=alert(3)>.txt")
    qid = env.hold(raw)
    client = env.client("rev")
    for page in (client.get("/quarantine").text, client.get(f"/quarantine/{qid}").text):
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "<svg onload" not in page
    assert "&lt;script&gt;" in client.get(f"/quarantine/{qid}").text


def test_html_body_never_runs_scripts_or_loads_remote(env: Env) -> None:
    """The body view strips scripts, handlers, remote images and styles, under a sandbox CSP."""
    html = ('<p onclick="x()">Zephyr-9</p><script>alert(1)</script>'
            '<img src="https://tracker.example/p.gif"><a href="https://evil.example">l</a>'
            '<style>body{background:url(https://evil.example/x)}</style>'
            '<iframe src="https://evil.example"></iframe><form action="https://evil.example">')
    qid = env.hold(make_raw(html=html))
    r = env.client("rev").get(f"/quarantine/{qid}/body")
    assert "sandbox" in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    for bad in ("<script", "onclick", "tracker.example", "evil.example", "<iframe", "<form"):
        assert bad not in r.text
    assert "Zephyr-9" in r.text


@pytest.mark.parametrize("html", [
    '<a href="javascript:alert(1)">x</a>', '<div style="background:url(//e.example)">x</div>',
    "<svg><script>alert(1)</script></svg>", '<math><mi xlink:href="data:x">',
])
def test_sanitiser_table(html: str) -> None:
    """Known vectors lose every active or loading part."""
    out = safe_body_html(html)
    for bad in ("javascript", "url(", "<script", "xlink", "<svg"):
        assert bad not in out


@pytest.mark.parametrize("bad_id", ["..%2F..%2Fetc%2Fpasswd", "../../maruhi.sqlite3",
                                    "01ABCDEFGHJKMNPQRSTVWXYZ0/", "x" * 26, "%00"])
def test_path_traversal_ids_are_404(env: Env, bad_id: str) -> None:
    """Ids that are not of the store's shape never reach the store or the file system."""
    client = env.client("rev")
    for suffix in ("", "/raw", "/body"):
        assert client.get(f"/quarantine/{bad_id}{suffix}").status_code == 404


def test_security_headers(env: Env) -> None:
    """Pages forbid framing, foreign scripts and caching."""
    r = env.client("rev").get("/quarantine")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"


def test_open_redirect_refused(env: Env) -> None:
    """The language switch only redirects to our own paths."""
    client = env.client()
    for target in ("https://evil.example", "//evil.example", "/\\evil.example"):
        r = client.get(f"/lang/ja?next={target}", follow_redirects=False)
        assert r.headers["location"] == "/"


def test_api_errors_do_not_echo_input(env: Env) -> None:
    """A malformed check request names fields, never the draft text."""
    secret, _ = env.accounts.create_token("rev", "x", now=env.clock[0])
    r = env.client().post("/api/v1/check", headers={"Authorization": f"Bearer {secret}"},
                          json={"sender": "a@b", "recipients": "Zephyr-9 not a list"})
    assert r.status_code == 422
    assert "Zephyr-9" not in r.text


def test_csrf_token_differs_per_session(env: Env) -> None:
    """Two sessions of the same user get different CSRF tokens."""
    a, b = env.client("rev"), env.client("rev")
    assert csrf_of(a.get("/quarantine").text) != csrf_of(b.get("/quarantine").text)
