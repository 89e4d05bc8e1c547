"""``maruhi rules check | import-csv | export-csv`` run as the real console script."""

from __future__ import annotations

import codecs
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.rules.csvio import parse_rules_csv
from scanner.rules.load import parse_rules_yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"


def maruhi(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd or REPO,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr
    return result


def test_check_valid_example_prints_summary() -> None:
    """check on a valid file exits 0 and prints the counts of rules, terms and groups."""
    result = maruhi("rules", "check", RULES_DIR / "example-en.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"OK {RULES_DIR / 'example-en.yaml'}: 4 rules, 8 terms, 2 groups"
    )
    assert result.stderr == ""


def test_check_lists_expired_and_soon_expiring_rules(tmp_path: Path) -> None:
    """check names the rules that have expired and those expiring within 14 days."""
    today = dt.date.today()
    path = tmp_path / "r.yaml"
    path.write_text(
        "version: 1\nrules:\n"
        f"  - id: old\n    terms: [x]\n    expires: {today - dt.timedelta(days=1)}\n"
        f"  - id: soon\n    terms: [y]\n    expires: {today + dt.timedelta(days=14)}\n"
        f"  - id: later\n    terms: [z]\n    expires: {today + dt.timedelta(days=15)}\n",
        "utf-8",
    )
    result = maruhi("rules", "check", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"expired: old (on {today - dt.timedelta(days=1)}; no longer applied)",
        f"expires soon: soon (last day {today + dt.timedelta(days=14)}, in 14 days)",
    ]


def test_check_invalid_file_lists_every_problem(tmp_path: Path) -> None:
    """check on an invalid file exits 2 with one file:line:column line per problem."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nrules:\n  - id: a\n    terms: [x]\n    action: pass\n"
        "  - id: a\n    terms: [y]\n    allow: {domains: ['*.acme.example']}\n",
        "utf-8",
    )
    result = maruhi("rules", "check", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:5:13: [rule a] 'pass' is not a rule action: use flag, hold or reject",
        f"{path}:6:9: [rule a] duplicate rule id 'a' (first defined at line 3)",
        f"{path}:8:23: [rule a] invalid domain: wildcards are not needed: "
        "a domain already covers its subdomains",
        "3 problems found; nothing was changed",
    ]


def test_check_csv_in_cp932(tmp_path: Path) -> None:
    """check reads a cp932 CSV and counts its merged rules."""
    path = tmp_path / "rules.csv"
    path.write_bytes(
        "ルールID,用語,動作\r\nfalcon,ファルコン計画,保留\r\nfalcon,価格表,保留\r\n".encode("cp932")
    )
    result = maruhi("rules", "check", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"OK {path}: 1 rule, 2 terms, 0 groups"]


@pytest.mark.parametrize("sub", ["check", "export-csv"])
def test_missing_file_is_one_line(tmp_path: Path, sub: str) -> None:
    """A missing input file is one line on stderr and exit 2, never a traceback."""
    result = maruhi("rules", sub, tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"maruhi rules {sub}: {tmp_path / 'nope.yaml'}: no such file"
    ]


def test_import_csv_writes_yaml(tmp_path: Path) -> None:
    """import-csv turns the template into a YAML file that loads to the same rules."""
    out = tmp_path / "rules.yaml"
    result = maruhi("rules", "import-csv", RULES_DIR / "template.csv", "-o", out)
    assert result.returncode == 0, result.stderr
    spec = parse_rules_yaml(out.read_text("utf-8"), str(out))
    assert spec == parse_rules_csv((RULES_DIR / "template.csv").read_bytes(), "t.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yaml"]  # no temporary file left


def test_import_csv_with_problem_writes_nothing(tmp_path: Path) -> None:
    """import-csv with any problem exits 2, names line and column, and leaves the output alone."""
    src = tmp_path / "in.csv"
    src.write_bytes(codecs.BOM_UTF8 + b"id,term,customer\r\na,x,ACME\r\na,y,Other\r\n")
    out = tmp_path / "rules.yaml"
    out.write_text("version: 1\n", "utf-8")
    result = maruhi("rules", "import-csv", src, "-o", out)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{src}:3:3: [rule a] column 'customer': differs from line 2 of the same rule; rows of "
        "one rule must agree (repeat the same value or leave the cell empty)"
    )
    assert out.read_text("utf-8") == "version: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "rules.yaml"]


def test_import_csv_error_creates_no_file(tmp_path: Path) -> None:
    """A failed import does not create the output file at all."""
    src = tmp_path / "in.csv"
    src.write_bytes(b"id,trem\r\na,x\r\n")
    result = maruhi("rules", "import-csv", src, "-o", tmp_path / "rules.yaml")
    assert result.returncode == 2
    assert not (tmp_path / "rules.yaml").exists()


def test_export_csv_to_stdout_and_file(tmp_path: Path) -> None:
    """export-csv writes BOM + CRLF CSV to stdout, or to -o, and it imports back equal."""
    src = RULES_DIR / "example-ja.yaml"
    piped = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "rules", "export-csv", str(src)],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0
    assert piped.stdout.startswith(codecs.BOM_UTF8 + b"id,customer,owner")
    out = tmp_path / "out.csv"
    result = maruhi("rules", "export-csv", src, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == piped.stdout
    expected = parse_rules_yaml(src.read_text("utf-8"), str(src))
    assert parse_rules_csv(out.read_bytes(), str(out)) == expected


def test_export_csv_of_invalid_yaml_fails(tmp_path: Path) -> None:
    """export-csv of an invalid rules file exits 2 and writes no output."""
    src = tmp_path / "bad.yaml"
    src.write_text("version: 3\n", "utf-8")
    result = maruhi("rules", "export-csv", src, "-o", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{src}:1:10: unsupported version: this Maruhi reads version 1"
    )
    assert not (tmp_path / "out.csv").exists()
