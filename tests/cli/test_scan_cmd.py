"""The scan contract of DESIGN.md, exercised through the real ``maruhi scan`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

CASES = REPO / "tests" / "cases"
RULES = CASES / "rules.yaml"
TODAY = "2026-11-26"
# Every term of tests/cases/rules.yaml, in the forms that could leak into output.
TERMS = [
    "Project Falcon", "ファルコン計画", "単価 1,280円", "SKU-7781", "Bluebird merger", "Old Secret",
]


def maruhi(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def _case_ids() -> list[str]:
    return sorted(p.stem for p in (CASES / "eml").glob("*.eml"))


@pytest.mark.parametrize("name", _case_ids())
def test_eml_case(name: str) -> None:
    """Each regression message gives exactly its expected contract JSON, with exit 0."""
    spec: dict[str, Any] = json.loads((CASES / "eml" / f"{name}.json").read_text("utf-8"))
    args: list[str | Path] = ["scan", CASES / "eml" / f"{name}.eml", "--rules", RULES, "--json",
                              "--today", TODAY]
    if "sender" in spec:
        args += ["--sender", spec["sender"]]
    for rcpt in spec.get("rcpt", []):
        args += ["--rcpt", rcpt]
    result = maruhi(*args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == spec["expected"]
    for term in TERMS:
        assert term.lower() not in result.stdout.lower()


def test_human_report_has_no_terms() -> None:
    """Without --json the readable report names rules and recipients, never terms."""
    result = maruhi("scan", CASES / "eml" / "many-locations.eml", "--rules", RULES,
                    "--today", TODAY)
    assert result.returncode == 0
    assert "REJECT" in result.stdout
    assert "price-q3" in result.stdout
    for term in TERMS:
        assert term.lower() not in result.stdout.lower()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["scan", "missing.eml", "--rules", str(RULES), "--json"], "cannot read message"),
        (["scan", str(CASES / "eml" / "body-hold.eml"), "--rules", "nope.yaml", "--json"],
         "cannot read rules"),
    ],
)
def test_unusable_input_exits_2(args: list[str], fragment: str) -> None:
    """Missing files give exit 2 and one line on stderr, no traceback."""
    result = maruhi(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_invalid_rules_exit_2_with_location(tmp_path: Path) -> None:
    """An invalid rules file is unusable input: exit 2, file:line named, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    terms: [\"\"]\n    action: hold\n")
    result = maruhi("scan", CASES / "eml" / "body-hold.eml", "--rules", bad, "--json")
    assert result.returncode == 2
    assert f"{bad}:4" in result.stderr
    assert "Traceback" not in result.stderr


def test_headers_supply_envelope_when_no_flags() -> None:
    """Without --sender/--rcpt, recipients come from To, Cc and Bcc."""
    raw = (b"From: a@example.co.jp\r\nTo: x@acme.example\r\nCc: y@other.example\r\n"
           b"Bcc: z@third.example\r\nSubject: s\r\n\r\nProject Falcon\r\n")
    path = REPO / "tests" / "cases" / "eml" / "body-hold.eml"
    assert path.exists()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"maruhi-hdr-{os.getpid()}.eml"
    tmp.write_bytes(raw)
    try:
        result = maruhi("scan", tmp, "--rules", RULES, "--json", "--today", TODAY)
    finally:
        tmp.unlink()
    assert json.loads(result.stdout)["hits"] == [
        {"rule": "falcon", "location": "body",
         "out_of_scope": ["y@other.example", "z@third.example"]}
    ]
