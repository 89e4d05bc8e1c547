"""Dry run over an uploaded sample corpus: .eml and .mbox, old vs new verdict, bounded."""

from __future__ import annotations

from datetime import date

from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.rules.compile import compile_ruleset
from scanner.rules.load import parse_rules_bytes
from scanner.web.dryrun import CorpusLimits, run_corpus
from tests.web.factories import RULES_YAML, SECRET, Env, make_raw, session_csrf

TODAY = date(2026, 3, 2)
NEW_YAML = RULES_YAML.replace(b'"Heron-77"', b'"Heron-77", "Kestrel-3"').replace(
    b"domains: [acme.example]", b"domains: [acme.example, rival.example]")


def _mbox(*messages: bytes) -> bytes:
    return b"".join(b"From sender@example.co.jp Mon Mar  2 09:00:00 2026\n"
                    + m.replace(b"\r\n", b"\n") + b"\n" for m in messages)


def _corpus() -> list[tuple[str, bytes]]:
    to_rival = make_raw()  # falcon, out of scope now, in scope in the new version
    kestrel = make_raw(subject="hello", body="Kestrel-3 plan", to="x@other.example")
    plain = make_raw(subject="lunch", body="nothing here", to="x@other.example")
    return [("a.eml", to_rival), ("box.mbox", _mbox(kestrel, plain)), ("empty.eml", b"")]


def test_run_corpus_compares_verdicts() -> None:
    """Each sample is judged by both versions; counts say hit, pass, stricter and looser."""
    old = compile_ruleset(parse_rules_bytes(RULES_YAML, "o.yaml"), today=TODAY)
    new = compile_ruleset(parse_rules_bytes(NEW_YAML, "n.yaml"), today=TODAY)
    report = run_corpus(_corpus(), old, new, limits=old_limits(), today=TODAY)
    by_name = {s.name: (s.old, s.new, s.new_rules) for s in report.samples}
    assert by_name == {
        "a.eml": ("hold", "pass", ("falcon",)),
        "box.mbox#1": ("pass", "hold", ("heron",)),
        "box.mbox#2": ("pass", "pass", ()),
    }
    assert report.unreadable == ["empty.eml"]
    assert report.counts() == {"checked": 3, "hit": 2, "would_pass": 2, "changed": 2,
                               "stricter": 1, "looser": 1}


def test_run_corpus_stops_at_message_limit() -> None:
    """Over the message cap the run stops, says so, and still counts what was there."""
    new = compile_ruleset(parse_rules_bytes(NEW_YAML, "n.yaml"), today=TODAY)
    report = run_corpus(_corpus(), None, new, limits=old_limits(), today=TODAY,
                        corpus_limits=CorpusLimits(max_messages=1))
    assert report.stopped_early
    assert (len(report.samples), report.total) == (1, 3)
    assert report.samples[0].old == "-"


def old_limits() -> Limits:
    return DEFAULT_LIMITS


def test_corpus_page_and_api(env: Env) -> None:
    """A rules admin uploads samples and sees per-message verdicts; no subject is shown."""
    env.rules.create_version(NEW_YAML, "n.yaml", author="rules", reason="x", now=env.clock[0],
                             activate=False)
    client = env.client("rules")
    token = _rules_csrf(client)
    files = [("files", (name, data, "application/octet-stream")) for name, data in _corpus()]
    page = client.post("/rules/versions/2/dryrun-corpus", data={"csrf_token": token},
                       files=files)
    assert page.status_code == 200
    assert "box.mbox#1" in page.text
    assert '<dd id="c-changed">2' in page.text
    assert SECRET not in page.text
    assert "lunch" not in page.text
    api = client.post("/api/v1/rules/versions/2/dryrun-corpus", files=files,
                      headers={"X-CSRF-Token": token}).json()
    assert api["counts"]["stricter"] == 1
    reviewer = env.client("rev")
    assert reviewer.post("/api/v1/rules/versions/2/dryrun-corpus", files=files, headers={
        "X-CSRF-Token": session_csrf(reviewer)}).status_code == 403


def _rules_csrf(client: object) -> str:
    from tests.web.factories import csrf_of

    return csrf_of(client.get("/rules").text)  # type: ignore[attr-defined]


def test_limited_admin_cannot_probe_other_customers_terms(env: Env) -> None:
    """For an ACME-only admin, a sample carrying Heron's term is judged by ACME's rules alone:
    the dry run is no oracle for other customers' secrets (the unlimited admin sees the hit)."""
    sample = ("probe.eml", b"From: a@example.co.jp\r\nTo: x@other.example\r\nSubject: s\r\n\r\n"
              b"Heron-77 numbers\r\n")
    files = [("files", (sample[0], sample[1], "message/rfc822"))]
    limited = env.client("acme-admin")
    got = limited.post("/api/v1/rules/versions/1/dryrun-corpus", files=files,
                       headers={"X-CSRF-Token": _rules_csrf(limited)}).json()
    assert [(s["new"], s["new_rules"]) for s in got["samples"]] == [("pass", [])]
    full = env.client("rules")
    got = full.post("/api/v1/rules/versions/1/dryrun-corpus", files=files,
                    headers={"X-CSRF-Token": _rules_csrf(full)}).json()
    assert [s["new_rules"] for s in got["samples"]] == [["heron"]]
