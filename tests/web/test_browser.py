"""Browser tests: Debian's chromium driven by Playwright against the app on 127.0.0.1.

Log in, find a held message, see the highlighted context, release it and see it arrive at an
aiosmtpd upstream; upload a CSV with an error and see its line; upload a fixed one, see the diff,
activate, and a draft now hits. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from scanner.outbox.target import UpstreamTarget
from scanner.outbox.worker import run_outbox_once
from tests.outbox.sink import Sink
from tests.web.conftest import SHOTS
from tests.web.factories import PASSWORD, SECRET, Env, make_raw


def _login(page: object, base: str, user: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_review_and_release_reaches_upstream(served: tuple[Env, str], browser: object) -> None:
    """A reviewer finds the held message, sees the marked term, releases it; it is delivered."""
    env, base = served
    hostile = ('<p>Zephyr-9 deal</p><script>document.title="pwned"</script>'
               '<img src="https://tracker.example/p.gif">')
    qid = env.hold(make_raw(html=hostile), received_at=datetime.now(UTC))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    _login(page, base, "rev")
    page.wait_for_url(f"{base}/quarantine")
    page.screenshot(path=str(SHOTS / "quarantine-list.png"), full_page=True)
    page.click(f"a[href='/quarantine/{qid}'] >> nth=0")
    assert page.locator("p.context mark").first.inner_text() == SECRET
    body = page.frame_locator("iframe.body")
    assert "Zephyr-9 deal" in body.locator("body").inner_text()
    page.screenshot(path=str(SHOTS / "message-view.png"), full_page=True)
    page.fill("form.decide input[name=reason]", "customer confirmed NDA")
    page.click("form.decide button[value=release]")
    assert page.locator("p.ok").is_visible()
    assert all(u.startswith(base) for u in requested), "a remote URL was fetched"
    assert page.title() != "pwned"

    sink = Sink().start()
    try:
        target = UpstreamTarget(host="127.0.0.1", port=sink.port, tls="none", timeout=10)
        result: list[int] = []
        # Playwright's sync API owns this thread's event loop: the worker runs in its own.
        worker = threading.Thread(target=lambda: result.append(asyncio.run(run_outbox_once(
            env.store, target, now_fn=lambda: datetime.now(UTC), worker_id="test"))))
        worker.start()
        worker.join(30)
        assert result
        assert result[0] >= 1
        assert any(m.data == env.store.raw(qid) and m.rcpt_tos == list(
            env.store.get(qid).recipients) for m in sink.received)
    finally:
        sink.stop()


def test_rules_upload_error_then_fix_diff_activate(served: tuple[Env, str],
                                                   browser: object, tmp_path: Path) -> None:
    """A CSV error shows its line; the fixed file shows a diff and becomes active."""
    env, base = served
    SHOTS.mkdir(parents=True, exist_ok=True)
    header = "id,customer,terms,allow_domains,action\r\n"
    bad = tmp_path / "bad.csv"
    bad.write_bytes((header + "kite,Kite KK,Kite-5,kite.example,hold\r\n"
                     "kite2,Kite KK,Kite-6,kite.example,explode\r\n").encode("cp932"))
    good = tmp_path / "good.csv"
    good.write_bytes((header + "kite,Kite KK,Kite-5,kite.example,hold\r\n").encode("utf-8-sig"))
    page = browser.new_page(locale="ja-JP")  # type: ignore[attr-defined]
    _login(page, base, "rules")
    page.wait_for_url(f"{base}/rules")
    page.screenshot(path=str(SHOTS / "rules.png"), full_page=True)
    page.set_input_files("input[type=file]", str(bad))
    page.fill("form.upload input[name=reason]", "新しい顧客")
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("td.line")
    assert page.locator("td.line").first.inner_text() == "3"
    page.screenshot(path=str(SHOTS / "rules-problems.png"), full_page=True)
    page.goto(f"{base}/rules")
    page.set_input_files("input[type=file]", str(good))
    page.fill("form.upload input[name=reason]", "新しい顧客")
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("#activate")
    assert "kite" in page.locator("section.diff").inner_text()
    page.screenshot(path=str(SHOTS / "rules-diff.png"), full_page=True)
    page.click("#activate")
    page.wait_for_selector("p.ok")
    active = env.rules.active_version()
    assert active is not None
    assert active.filename == "good.csv"
    compiled = env.app.state.ctx.active.get()
    assert "kite" in [r.id for r in compiled.rules]
