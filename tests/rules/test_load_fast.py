"""The libyaml fast path of the YAML reader agrees exactly with the located round-trip path."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import RuleError
from scanner.rules.load import _NO_FAST, _fast_document, _YamlReader, parse_rules_yaml
from tests.conftest import REPO

FILES = [REPO / "rules" / "example-en.yaml", REPO / "rules" / "example-ja.yaml",
         REPO / "tests" / "cases" / "rules.yaml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fast_and_round_trip_give_the_same_spec(path: Path) -> None:
    """Both readers produce equal specs, rule source lines included."""
    text = path.read_text("utf-8")
    doc = _fast_document(text)
    assert doc is not _NO_FAST, "ruamel.yaml.clib is a dependency; the fast path must be on"
    fast = _YamlReader(str(path)).read_document(doc)
    slow = _YamlReader(str(path)).read(text)
    assert fast == slow
    assert [r.line for r in fast.rules] == [r.line for r in slow.rules]
    assert all(r.line for r in fast.rules)


def test_problems_are_still_located() -> None:
    """A file with a problem is re-read with positions: the problem names line and column."""
    text = "version: 1\nrules:\n  - id: a\n    terms: [x]\n    action: hold\n    colour: red\n"
    with pytest.raises(RuleError) as info:
        parse_rules_yaml(text, "f.yaml")
    assert [(p.line, p.column) for p in info.value.problems] == [(6, 5)]


def test_timestamps_stay_text_on_the_fast_path() -> None:
    """An expiry written as a YAML timestamp reaches validation as text on both paths."""
    text = "version: 1\nrules:\n  - id: a\n    terms: [x]\n    expires: 2027-01-05\n"
    spec = parse_rules_yaml(text, "f.yaml")
    assert str(spec.rules[0].expires) == "2027-01-05"
