"""Every route of the review app with roles enforced, over the real stores."""

from __future__ import annotations

import base64
import json

import pytest

from scanner.store.base import Status
from tests.web.factories import SECRET, Env, login, make_raw, session_csrf

QID = "0" * 26  # shape-valid id that does not exist

# (method, path, role -> expected status) for read routes; {qid} is a real held message.
READ_ROUTES = [
    ("GET", "/quarantine", {"rev": 200, "aud": 200, "boss": 200, "rules": 403}),
    ("GET", "/quarantine/{qid}", {"rev": 200, "aud": 200, "rules": 403}),
    ("GET", "/quarantine/{qid}/body", {"rev": 200, "aud": 403, "rules": 403}),
    ("GET", "/quarantine/{qid}/raw", {"rev": 200, "aud": 403, "rules": 403}),
    ("GET", "/api/v1/quarantine", {"rev": 200, "aud": 200, "rules": 403}),
    ("GET", "/api/v1/quarantine/{qid}", {"rev": 200, "aud": 200, "rules": 403}),
    ("GET", "/rules", {"rules": 200, "acme-admin": 200, "boss": 200, "rev": 403, "aud": 403}),
    ("GET", "/rules/history", {"rules": 200, "aud": 200, "rev": 403}),
    ("GET", "/rules/versions/1", {"rules": 200, "aud": 403, "rev": 403}),
    ("GET", "/api/v1/rules/versions", {"rules": 200, "aud": 200, "rev": 403}),
    ("GET", "/api/v1/rules/versions/1/diff", {"rules": 200, "rev": 403}),
    ("GET", "/api/v1/rules/expiring", {"rules": 200, "rev": 403}),
    ("GET", "/audit", {"aud": 200, "boss": 200, "rev": 403, "rules": 403}),
    ("GET", "/audit.csv", {"aud": 200, "rev": 403}),
    ("GET", "/api/v1/audit", {"aud": 200, "rev": 403}),
    ("GET", "/ledger?customer=ACME+Corp", {"aud": 200, "rev": 403, "rules": 403}),
    ("GET", "/ledger.csv?customer=ACME+Corp", {"aud": 200, "rev": 403}),
    ("GET", "/api/v1/ledger?customer=ACME+Corp", {"aud": 200, "rev": 403}),
]


@pytest.mark.parametrize(("method", "path", "expected"), READ_ROUTES)
def test_read_routes_enforce_roles(env: Env, method: str, path: str,
                                   expected: dict[str, int]) -> None:
    """Each role gets exactly the status the route allows it."""
    qid = env.hold()
    for user, status in expected.items():
        client = env.client(user)
        response = client.request(method, path.format(qid=qid), follow_redirects=False)
        assert response.status_code == status, (user, path)


@pytest.mark.parametrize("path", ["/quarantine", "/rules", "/audit", "/ledger"])
def test_pages_redirect_to_login(env: Env, path: str) -> None:
    """Without a session, pages redirect to the log-in form and the API says 401."""
    client = env.client()
    assert client.get(path, follow_redirects=False).headers["location"] == "/login"
    assert client.get("/api/v1/quarantine").status_code == 401


def test_reviewer_sees_highlighted_context_and_why(env: Env) -> None:
    """The message view marks the term in context and says why a recipient is out of scope."""
    qid = env.hold()
    page = env.client("rev").get(f"/quarantine/{qid}").text
    assert f"<mark>{SECRET}</mark>" in page
    assert "rival.example is not allowed" in page
    assert "tanaka@example.co.jp" in page  # the rule owner
    assert "2026-03-10" in page  # expiry


def test_auditor_sees_no_content(env: Env) -> None:
    """An auditor sees the record but neither context nor body."""
    qid = env.hold()
    page = env.client("aud").get(f"/quarantine/{qid}").text
    assert "<mark>" not in page
    assert f"/quarantine/{qid}/body" not in page
    data = env.client("aud").get(f"/api/v1/quarantine/{qid}").json()
    assert all(h["context"] == [] for h in data["hits"])
    # The subject carries the secret in this fixture: no page or API an auditor reads shows it.
    listing = env.client("aud").get("/quarantine").text
    listing_api = env.client("aud").get("/api/v1/quarantine").json()
    for text in (page, listing, json.dumps(data), json.dumps(listing_api)):
        assert SECRET not in text
    assert listing_api["items"][0]["subject"] is None
    # ...and a subject search cannot be used as an oracle.
    auditor = env.client("aud")
    hits = auditor.post("/api/v1/quarantine/search", json={"subject": "nomatch-zz"},
                        headers={"X-CSRF-Token": session_csrf(auditor)}).json()
    assert len(hits["items"]) == len(listing_api["items"])
    # A reviewer does see it (the fixture really does put the secret in the subject).
    assert SECRET in env.client("rev").get(f"/quarantine/{qid}").text


def test_list_filters_and_paging(env: Env) -> None:
    """Filters narrow the list; keyset paging walks all rows exactly once."""
    from datetime import timedelta

    from tests.web.factories import NOW

    ids = [env.hold(received_at=NOW - timedelta(minutes=i)) for i in range(7)]
    env.hold(make_raw(subject="Heron-77 deck", body="Heron-77"),
             recipients=("x@other.example",), received_at=NOW - timedelta(days=3))
    client = env.client("rev")
    seen, cursor = [], None
    while True:
        url = "/api/v1/quarantine?limit=3&rule=falcon" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    heron = client.get("/api/v1/quarantine?customer=Heron+KK").json()["items"]
    assert len(heron) == 1
    assert heron[0]["rules"] == ["heron"]
    assert client.get("/api/v1/quarantine?domain=other.example").json()["items"][0]["id"] \
        == heron[0]["id"]
    token = session_csrf(client)
    found = client.post("/api/v1/quarantine/search", json={"subject": "deck", "status": "all"},
                        headers={"X-CSRF-Token": token}).json()["items"]
    assert len(found) == 1
    assert client.get("/api/v1/quarantine?until=2026-02-20").json()["items"] == []
    assert len(client.get("/api/v1/quarantine?sender=tanaka").json()["items"]) == 8


def test_release_is_audited_idempotent_and_needs_reason(env: Env) -> None:
    """A release needs a reason, is audited with it, and a second click changes nothing."""
    qid = env.hold()
    client = env.client("rev")
    token = session_csrf(client)
    r = client.post(f"/quarantine/{qid}/decide", data={"decision": "release", "reason": " ",
                                                       "csrf_token": token})
    assert r.status_code == 422
    assert env.store.get(qid).status is Status.HELD
    for _ in range(2):
        r = client.post(f"/quarantine/{qid}/decide",
                        data={"decision": "release", "reason": "customer NDA signed",
                              "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
    assert env.store.get(qid).status is Status.RELEASING
    delivers = [i for i in env.store.outbox(quarantine_id=qid) if i.kind.value == "deliver"]
    assert len(delivers) == 1
    events = [e for e in env.store.audit(object_id=qid) if e.action == "release"]
    assert len(events) == 1
    assert events[0].actor == "rev"


def test_auditor_cannot_decide(env: Env) -> None:
    """An auditor's release is refused and changes nothing."""
    qid = env.hold()
    client = env.client("aud")
    token = session_csrf(client)
    r = client.post(f"/quarantine/{qid}/decide",
                    data={"decision": "release", "reason": "x", "csrf_token": token})
    assert r.status_code == 403
    assert env.store.get(qid).status is Status.HELD


def test_bulk_reject_via_api_with_token(env: Env) -> None:
    """An API token may bulk-reject without CSRF; each message is rejected once."""
    ids = [env.hold(), env.hold()]
    secret, _ = env.accounts.create_token("rev", "bot", now=env.clock[0])
    client = env.client()
    r = client.post("/api/v1/quarantine:bulk", json={"ids": ids, "decision": "reject",
                                                     "reason": "policy"},
                    headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200
    assert [d["status"] for d in r.json()["decisions"]] == ["rejected", "rejected"]


def test_upload_with_error_shows_line_and_stores_nothing(env: Env) -> None:
    """A CSV with a bad action shows its line and creates no version."""
    client = env.client("rules")
    token = session_csrf(client)
    csv = ("id,terms,action\r\nkite,Kite,hold\r\nbad,Bad,explode\r\n").encode("utf-8-sig")
    before = len(env.rules.history())
    r = client.post("/rules/upload", data={"reason": "new", "csrf_token": token},
                    files={"file": ("rules.csv", csv, "text/csv")})
    assert r.status_code == 422
    assert '<td class="line">3</td>' in r.text
    assert len(env.rules.history()) == before


def test_upload_diff_activate_and_rollback(env: Env) -> None:
    """A valid upload shows its diff; activation and rollback switch the active version."""
    client = env.client("rules")
    token = session_csrf(client)
    new = env.rules.source(1).replace(b'"Heron-77"', b'"Heron-77", "Heron-88"')
    r = client.post("/rules/upload", data={"reason": "add term", "csrf_token": token},
                    files={"file": ("rules.yaml", new, "application/yaml")},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Heron-88" in page
    assert "heron" in page
    r = client.post("/rules/versions/2/activate", data={"reason": "go", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    assert env.rules.active_version().id == 2
    client.post("/rules/versions/1/activate", data={"reason": "back", "csrf_token": token})
    assert env.rules.active_version().id == 1  # type: ignore[union-attr]
    actions = [e.action for e in env.store.audit()]
    assert {"rules_upload", "rules_activate", "rules_rollback"} <= set(actions)
    assert all(b"Heron-88" not in repr(e.details).encode() for e in env.store.audit())


def test_limited_rules_admin_cannot_touch_other_customers(env: Env) -> None:
    """A rules admin limited to ACME may change falcon but not heron."""
    client = env.client("acme-admin")
    token = session_csrf(client)
    src = env.rules.source(1)
    r = client.post("/rules/upload", data={"reason": "x", "csrf_token": token},
                    files={"file": ("r.yaml", src.replace(b"Heron-77", b"Heron-78"), "x")})
    assert r.status_code == 403
    assert "heron" in r.text
    r = client.post("/rules/upload", data={"reason": "x", "csrf_token": token},
                    files={"file": ("r.yaml", src.replace(b"Zephyr-9", b"Zephyr-10"), "x")},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "heron" not in client.get("/rules").text


def test_limited_rules_admin_never_reads_other_customers_terms(env: Env) -> None:
    """A version that changes heron's terms shows ACME's admin a count, never the new term."""
    src = env.rules.source(1).replace(b"Heron-77", b"KingfisherSecret")
    env.rules.create_version(src, "r.yaml", author="rules", reason="x", now=env.clock[0],
                             activate=False)
    page = env.client("acme-admin").get("/rules/versions/2")
    assert page.status_code == 200
    assert "KingfisherSecret" not in page.text
    assert "Heron-77" not in page.text
    assert "1 change(s)" in page.text
    assert "KingfisherSecret" in env.client("rules").get("/rules/versions/2").text


def test_dry_run_counts_held_messages(env: Env) -> None:
    """A version without falcon's term would pass the held message."""
    env.hold()
    client = env.client("rules")
    token = session_csrf(client)
    src = env.rules.source(1).replace(b'terms: ["Zephyr-9", ', b"terms: [")
    env.rules.create_version(src, "r.yaml", author="rules", reason="x", now=env.clock[0],
                             activate=False)
    r = client.post("/api/v1/rules/versions/2/dryrun", headers={"X-CSRF-Token": token})
    assert r.json() == {"checked": 1, "would_pass": 1, "would_change": 0, "unchanged": 0}


def test_expiring_soon_lists_rules_within_14_days(env: Env) -> None:
    """falcon expires in 8 days and is listed; heron has no expiry."""
    rules = env.client("rules").get("/api/v1/rules/expiring").json()["rules"]
    assert [r["id"] for r in rules] == ["falcon"]


def test_check_api_returns_scan_contract(env: Env) -> None:
    """The check API answers with the contract JSON, for raw MIME and for parts."""
    secret, _ = env.accounts.create_token("rev", "addin", now=env.clock[0])
    client = env.client()
    auth = {"Authorization": f"Bearer {secret}"}
    raw = base64.b64encode(make_raw()).decode()
    r = client.post("/api/v1/check", headers=auth, json={
        "sender": "tanaka@example.co.jp", "recipients": ["cfo@rival.example"], "raw": raw})
    assert r.json() == {"verdict": "hold", "hits": [
        {"rule": "falcon", "location": "header:subject", "out_of_scope": ["cfo@rival.example"]},
        {"rule": "falcon", "location": "body", "out_of_scope": ["cfo@rival.example"]}],
        "unscannable": []}
    r = client.post("/api/v1/check", headers=auth, json={
        "sender": "a@example.co.jp", "recipients": ["b@acme.example"], "subject": "hi",
        "body": "nothing", "attachments": [{"name": "n.txt", "content_base64": base64.b64encode(
            SECRET.encode()).decode()}]})
    assert r.json()["verdict"] == "pass"
    assert r.json()["hits"] == [{"rule": "falcon", "location": "attachment:n.txt",
                                 "out_of_scope": []}]
    assert SECRET not in r.text


def test_openapi_document_served(env: Env) -> None:
    """The OpenAPI document lists the API and none of the HTML pages."""
    doc = env.client().get("/api/v1/openapi.json").json()
    assert "/api/v1/check" in doc["paths"]
    assert "/quarantine" not in doc["paths"]


def test_audit_csv_neutralises_formulas(env: Env) -> None:
    """CSV cells starting with = are prefixed so spreadsheets do not evaluate them."""
    env.store.append_audit(actor="=HYPERLINK(1)", action="x", object_id=None, details={},
                           now=env.clock[0])
    text = env.client("aud").get("/audit.csv").text
    assert "'=HYPERLINK(1)" in text


def test_ledger_lists_customer_disclosures(env: Env) -> None:
    """The ledger shows which ACME secrets went to whom, in and out of scope."""
    env.hold()
    entries = env.client("aud").get("/api/v1/ledger?customer=ACME+Corp").json()["entries"]
    assert entries[0]["out_of_scope"] == ["cfo@rival.example"]
    assert entries[0]["in_scope"] == ["buyer@acme.example"]


def test_ledger_includes_relayed_disclosures(env: Env) -> None:
    """Mail the relay delivered in scope appears as 'passed', next to held mail."""
    from datetime import timedelta

    from scanner.model import Action, Envelope, Hit, Verdict
    from tests.web.factories import NOW

    env.hold()
    verdict = Verdict(Action.PASS, (Hit("falcon", "body", (), Action.HOLD),), (), "v1")
    env.store.record_disclosure(Envelope("tanaka@example.co.jp", ("buyer@acme.example",)),
                                verdict, at=NOW + timedelta(hours=1), message_id="<p@x>")
    entries = env.client("aud").get("/api/v1/ledger?customer=ACME+Corp").json()["entries"]
    rows = [(e["outcome"], e["in_scope"], e["out_of_scope"]) for e in entries]
    assert rows[0] == ("passed", ["buyer@acme.example"], [])  # newest first
    assert set(map(str, rows[1:])) == {str(("held", ["buyer@acme.example"],
                                            ["cfo@rival.example"]))}
    csv_text = env.client("aud").get("/ledger.csv?customer=ACME+Corp").text
    assert "passed" in csv_text


def test_language_follows_browser_and_switch(env: Env) -> None:
    """Accept-Language picks Japanese; the switch cookie overrides it."""
    client = env.client()
    assert "ログイン" in client.get("/login", headers={"Accept-Language": "ja,en;q=0.5"}).text
    client.get("/lang/en?next=/login")
    assert "Log in" in client.get("/login", headers={"Accept-Language": "ja"}).text


def test_login_is_audited(env: Env) -> None:
    """Successful and failed log-ins are audit events; unknown names are not recorded."""
    client = env.client()
    login(client, "rev", "wrong password!")
    login(client, "my-secret-password-typed-as-name", "x")
    login(client, "rev")
    events = [(e.actor, e.action) for e in env.store.audit()]
    assert ("rev", "login_failed") in events
    assert ("rev", "login") in events
    assert ("unknown", "login_failed") in events
    assert all("my-secret" not in repr(e) for e in env.store.audit())


def test_poller_incidents_are_listed_and_not_decidable(env: Env) -> None:
    """A 'sent' incident shows under its own status filter, with no release/reject form."""
    from scanner.model import Action, Envelope, Hit, Verdict
    from tests.web.factories import NOW

    verdict = Verdict(Action.HOLD, (Hit("falcon", "body", ("cfo@rival.example",), Action.HOLD),),
                      (), "v1")
    qid = env.store.record_incident(
        make_raw(), Envelope("tanaka@example.co.jp", ("cfo@rival.example",)), verdict,
        received_at=NOW, source="imap", mailbox="tanaka@example.co.jp", folder="Sent",
        item_id="1", message_id="<i@x>", dedupe_key="k1")
    items = env.client("rev").get("/api/v1/quarantine", params={"status": "sent"}).json()["items"]
    assert [(i["id"], i["status"]) for i in items] == [(qid, "sent")]
    page = env.client("rev").get(f"/quarantine/{qid}").text
    assert f'action="/quarantine/{qid}/decide"' not in page
    held_id = env.hold()  # a held message does get the decision form
    assert f'action="/quarantine/{held_id}/decide"' in env.client("rev").get(
        f"/quarantine/{held_id}").text
    held = env.client("rev").get("/api/v1/quarantine").json()["items"]
    assert qid not in [i["id"] for i in held]


def test_subject_search_text_never_appears_in_a_url(env: Env) -> None:
    """The search form posts the subject; the list URL carries only an opaque token that
    another user cannot use."""
    qid = env.hold()
    client = env.client("rev")
    token = session_csrf(client)
    r = client.post("/quarantine/search", data={"subject": SECRET, "status": "held",
                                                "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert SECRET not in location
    assert "subject" not in location
    assert "q=" in location
    page = client.get(location).text
    assert f"/quarantine/{qid}" in page
    links = [a for a in page.split('href="')[1:] if a.startswith("/quarantine?")]
    assert SECRET not in "".join(links)
    # The same token in another reviewer's session selects nothing.
    other = env.client("boss")
    other_page = other.get(location).text
    assert f'value="{SECRET}"' not in other_page
