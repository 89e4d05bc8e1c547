"""Browser tests of the newer flows: release with scope extension, the sender's status link, editing
a rule and a real ``maruhi serve`` relay that then holds, users/tokens, the sample-corpus dry run.

Debian's chromium through Playwright against the app on 127.0.0.1; screenshots of each page go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scanner.notify.links import status_path
from scanner.store.base import Status
from tests.outbox.sink import Sink, free_port
from tests.web.conftest import SHOTS
from tests.web.factories import PASSWORD, Env, make_raw

REPO = Path(__file__).resolve().parents[2]


def _login(page: object, base: str, user: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("header nav")  # type: ignore[attr-defined]


def test_release_with_scope_extension(served: tuple[Env, str], browser: object) -> None:
    """An admin releases a held message and adds the recipient to falcon's scope until a date."""
    env, base = served
    qid = env.hold(received_at=datetime.now(UTC))
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    _login(page, base, "boss")
    page.goto(f"{base}/quarantine/{qid}")
    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    page.fill("form.extend input[name=until]", until)
    page.fill("form.extend input[name=reason]", "partner NDA until year end")
    page.screenshot(path=str(SHOTS / "release-extend.png"), full_page=True)
    page.click("#release-extend")
    page.wait_for_selector("p.ok")
    assert "v2" in page.locator("p.ok").inner_text()
    assert env.store.get(qid).status is Status.RELEASING
    [grant] = env.rules.grants()
    assert (grant.rule_id, grant.value) == ("falcon", "cfo@rival.example")
    page.goto(f"{base}/rules")
    assert "cfo@rival.example" in page.locator("table.grants").inner_text()


def test_sender_status_link_and_release_request(served: tuple[Env, str],
                                                browser: object) -> None:
    """The sender opens the notice's link, asks for release; the reviewer sees the request."""
    env, base = served
    qid = env.hold(received_at=datetime.now(UTC))
    link = base + status_path(env.app.state.ctx.link_key, qid)
    sender = browser.new_page(locale="ja-JP")  # type: ignore[attr-defined]
    sender.goto(link)
    assert "falcon" in sender.locator("dl.kv").inner_text()
    sender.fill("textarea[name=justification]", "先方とNDA締結済みです")
    sender.screenshot(path=str(SHOTS / "sender-status.png"), full_page=True)
    sender.click("form.request button[type=submit]")
    sender.wait_for_selector("p.ok")
    assert env.store.get(qid).status is Status.HELD
    reviewer = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    _login(reviewer, base, "rev")
    assert reviewer.locator("span.requested").count() == 1
    reviewer.goto(f"{base}/quarantine/{qid}")
    assert "先方とNDA締結済みです" in reviewer.locator("section.release-requests").inner_text()


def _send(port: int, n: int) -> int:
    raw = make_raw(subject=f"status {n}", body="the Kestrel-3 plan", to="x@other.example")
    raw = raw.replace(b"<m1@example.co.jp>", f"<relay-{n}@example.co.jp>".encode())
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.test")
        client.mail("tanaka@example.co.jp")
        client.rcpt("x@other.example")
        code, _ = client.data(raw)
    return code


def _serve(data_dir: Path, sink_port: int, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``maruhi serve`` on the web app's data dir: it runs the rule store's active version."""
    port = free_port()
    env = dict(os.environ, MARUHI_UPSTREAM_TLS="none", MARUHI_SCAN_WORKERS="1",
               MARUHI_RELAY_HOSTNAME="maruhi.test", PYTHONPATH=str(REPO))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    # cwd outside the repository: no rules/example-en.yaml fallback is imported over our rules.
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner.cli.main", "serve", "--data-dir", str(data_dir),
         "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{sink_port}",
         "--metrics", "off", "--no-web"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as c:
                if c.noop()[0] == 250:
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError((tmp_path / "serve.log").read_text()[-2000:])
        time.sleep(0.2)


def test_edit_rule_in_form_then_real_relay_holds(served: tuple[Env, str], browser: object,
                                                 tmp_path: Path) -> None:
    """A rules admin adds a term in the form, confirms the diff; the running relay now holds."""
    env, base = served
    sink = Sink().start()
    proc, port = _serve(env.data_dir, sink.port, tmp_path)
    try:
        assert _send(port, 0) == 250
        assert len(sink.received) == 1  # not a secret yet: relayed
        page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
        _login(page, base, "rules")
        page.click("a.edit[href='/rules/edit/heron']")
        page.fill("textarea[name=terms]", "Heron-77\nKestrel-3")
        page.fill("form.rule-edit input[name=reason]", "new project name")
        page.screenshot(path=str(SHOTS / "rule-edit.png"), full_page=True)
        page.click("#check-edit")
        page.wait_for_selector("#activate")
        assert "Kestrel-3" in page.locator("section.diff").inner_text()
        page.screenshot(path=str(SHOTS / "rule-edit-diff.png"), full_page=True)
        page.click("#activate")
        page.wait_for_selector("p.ok")
        # The relay polls the active version (1 s); send until a message is held, not relayed.
        deadline = time.monotonic() + 30
        n = 0
        while not env.store.list(status=Status.HELD):
            assert time.monotonic() < deadline, "the relay never picked up the new version"
            n += 1
            assert _send(port, n) == 250  # relayed (before the swap) or durably held
        [held] = env.store.list(status=Status.HELD)
        assert held.rule_ids == ("heron",)
        assert len(sink.received) == n  # every message before the swap was relayed, not this
    finally:
        proc.terminate()
        proc.wait(60)
        sink.stop()


def test_admin_page_and_corpus_dry_run(served: tuple[Env, str], browser: object,
                                       tmp_path: Path) -> None:
    """An admin creates a token; a dry run over an uploaded .eml shows per-message verdicts."""
    env, base = served
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    _login(page, base, "boss")
    page.goto(f"{base}/admin")
    page.fill("form.token-add input[name=label]", "outlook add-in")
    page.click("form.token-add button[type=submit]")
    page.wait_for_selector("code.secret")
    page.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
    assert env.accounts.list_tokens()[0].label == "outlook add-in"

    source = env.rules.source(1).replace(b"domains: [heron.example]",
                                         b"domains: [heron.example, rival.example]")
    env.rules.create_version(source, "wider.yaml", author="boss", reason="wider",
                             now=env.clock[0], activate=False)
    sample = tmp_path / "sample.eml"
    sample.write_bytes(make_raw(subject="deck", body="Heron-77 deck"))  # held, then in scope
    page.goto(f"{base}/rules/versions/2")
    page.set_input_files("form.corpus input[type=file]", str(sample))
    page.click("#run-corpus")
    page.wait_for_selector("table.samples")
    assert page.locator("#c-changed").inner_text().startswith("1")
    page.screenshot(path=str(SHOTS / "dryrun-corpus.png"), full_page=True)
