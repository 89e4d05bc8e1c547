"""Every real message in CPython's email test data scans with exit 0 and valid contract JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test.test_email  # the CPython test package ships real messages in data/

from scanner.cli.main import main
from tests.conftest import REPO

DATA = Path(test.test_email.__file__).parent / "data"
MESSAGES = sorted(DATA.glob("msg_*.txt")) if DATA.is_dir() else []


@pytest.mark.skipif(not MESSAGES, reason="this Python installation ships no email test data")
@pytest.mark.parametrize("path", MESSAGES, ids=[p.name for p in MESSAGES])
def test_cpython_message_scans(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The message scans without error and prints the contract's JSON shape."""
    code = main(["scan", str(path), "--rules", str(REPO / "tests/cases/rules.yaml"), "--json",
                 "--today", "2026-11-26"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert set(doc) == {"verdict", "hits", "unscannable"}
    assert doc["verdict"] in {"pass", "flag", "hold", "reject"}
