"""The sender's status link: one message only, no content shown, requests recorded for review."""

from __future__ import annotations

import pytest

from scanner.notify.links import status_path
from scanner.store.base import Status
from tests.web.factories import SECRET, Env


def _path(env: Env, qid: str) -> str:
    return status_path(env.app.state.ctx.link_key, qid)


def _ask(env: Env, qid: str, justification: str = "customer signed the NDA yesterday") -> object:
    client = env.client()
    client.get(_path(env, qid))
    token = client.cookies.get("maruhi_status_csrf")  # the page's form carries the same value
    return client.post(_path(env, qid), data={"justification": justification,
                                              "csrf_token": token}, follow_redirects=False)


def test_status_page_shows_metadata_never_content(env: Env) -> None:
    """Status, rule ids and out-of-scope recipients are shown; subject and term are not."""
    qid = env.hold()
    response = env.client().get(_path(env, qid))
    assert response.status_code == 200
    assert "falcon" in response.text
    assert "cfo@rival.example" in response.text
    assert SECRET not in response.text
    assert "price" not in response.text  # the subject
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # wrong token
    lambda p: p.replace("/status/0", "/status/1", 1) if "/status/0" in p else p + "x",
    lambda p: p.rsplit("/", 1)[0] + "/",
    lambda p: "/status/../../etc/passwd/x",
])
def test_wrong_token_or_id_is_not_found(env: Env, mangle: object) -> None:
    """Any change to the link answers 404, like an unknown message."""
    qid = env.hold()
    path = mangle(_path(env, qid))  # type: ignore[operator]
    assert env.client().get(path).status_code == 404


def test_token_of_one_message_does_not_open_another(env: Env) -> None:
    """A link's token is bound to its own message id."""
    first, second = env.hold(), env.hold()
    token = _path(env, first).rsplit("/", 1)[1]
    assert env.client().get(f"/status/{second}/{token}").status_code == 404


def test_request_is_recorded_audited_and_shown_to_reviewers(env: Env) -> None:
    """A request needs no log-in, is audited without its text, and reviewers see it."""
    qid = env.hold()
    response = _ask(env, qid)
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert env.store.get(qid).status is Status.HELD  # a request, never a release
    [event] = [e for e in env.store.audit(object_id=qid) if e.action == "release_request"]
    assert event.actor == "sender:tanaka@example.co.jp"
    assert "NDA" not in repr(event.details)
    page = env.client("rev").get(f"/quarantine/{qid}").text
    assert "customer signed the NDA yesterday" in page
    assert "release requested" in env.client("rev").get("/quarantine").text
    listed = env.client("rev").get("/api/v1/quarantine").json()["items"][0]
    assert listed["release_requests"] == 1
    auditor_view = env.client("aud").get(f"/quarantine/{qid}").text
    assert "customer signed the NDA yesterday" not in auditor_view
    assert env.client("aud").get(f"/api/v1/quarantine/{qid}").json()["release_requests"] == 1


def test_request_needs_form_token_and_justification(env: Env) -> None:
    """Without the double-submit token, or with an empty justification, nothing is recorded."""
    qid = env.hold()
    client = env.client()
    r = client.post(_path(env, qid), data={"justification": "x", "csrf_token": "forged"})
    assert r.status_code == 403
    assert _ask(env, qid, "   ").status_code == 422  # type: ignore[attr-defined]
    assert env.app.state.ctx.requests.for_message(qid) == []


def test_requests_are_capped_and_refused_after_decision(env: Env) -> None:
    """At most five requests per message; none once the message is decided."""
    qid = env.hold()
    for _ in range(5):
        assert _ask(env, qid).status_code == 303  # type: ignore[attr-defined]
    assert _ask(env, qid).status_code == 429  # type: ignore[attr-defined]
    other = env.hold()
    env.store.reject(other, by="rev", reason="no", now=env.clock[0])
    assert "rejected" in env.client().get(_path(env, other)).text
    assert _ask(env, other).status_code == 409  # type: ignore[attr-defined]
