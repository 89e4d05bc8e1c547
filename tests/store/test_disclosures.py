"""The disclosure records behind the ledger: what relayed mail carried which secrets, to whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from scanner.model import Action, Envelope, Hit, Verdict
from scanner.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _verdict(*rules: str, action: Action = Action.PASS) -> Verdict:
    hits = tuple(Hit(r, "body", ("x@out.example",) if action is Action.FLAG else (), action)
                 for r in rules)
    return Verdict(action, hits, (), "sha256:v1")


def test_disclosures_filter_by_rule_newest_first(tmp_path: Path) -> None:
    """Records come back for the rules asked, newest first, with envelope and hits intact."""
    store = SqliteStore(tmp_path)
    try:
        env = Envelope("a@example.co.jp", ("b@acme.example", "x@out.example"))
        store.record_disclosure(env, _verdict("falcon"), at=T0, message_id="<1@x>")
        store.record_disclosure(env, _verdict("falcon", "price", action=Action.FLAG),
                                at=T0 + timedelta(minutes=1), message_id=None)
        store.record_disclosure(env, _verdict("other"), at=T0 + timedelta(minutes=2),
                                message_id="<3@x>")
        got = store.disclosures(rule_ids=["falcon", "price"])
        assert [(d.action, d.message_id, [h.rule_id for h in d.hits]) for d in got] == [
            (Action.FLAG, None, ["falcon", "price"]),
            (Action.PASS, "<1@x>", ["falcon"]),
        ]
        assert got[0].recipients == env.recipients
        assert got[0].hits[0].out_of_scope == ("x@out.example",)
        assert store.disclosures(rule_ids=[]) == []
    finally:
        store.close()


def test_disclosures_survive_reopen(tmp_path: Path) -> None:
    """A record is committed: a new store on the same directory reads it back."""
    store = SqliteStore(tmp_path)
    store.record_disclosure(Envelope("a@x.example", ("b@y.example",)), _verdict("falcon"),
                            at=T0, message_id="<1@x>")
    store.close()
    again = SqliteStore(tmp_path)
    try:
        assert [d.message_id for d in again.disclosures(rule_ids=["falcon"])] == ["<1@x>"]
    finally:
        again.close()
