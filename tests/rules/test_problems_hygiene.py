"""Rule problems never quote file content: a misplaced term must not leak into a message."""

from __future__ import annotations

import pytest

from scanner.errors import RuleError
from scanner.rules.csvio import parse_rules_csv
from scanner.rules.load import parse_rules_yaml

TERM = "Project Kestrel"

YAML_CASES = {
    "term-as-domain": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n"
                      f"    allow: {{domains: [{TERM}]}}\n",
    "term-as-key": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n    {TERM}: 1\n",
    "term-as-id": f"version: 1\nrules:\n  - id: {TERM}\n    terms: [x]\n",
    "term-as-action": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n    action: {TERM}\n",
    "term-as-address": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n"
                       f"    allow: {{addresses: [{TERM}]}}\n",
    "term-as-group": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n"
                     f"    allow: {{groups: [{TERM}]}}\n",
    "term-as-expiry": f"version: 1\nrules:\n  - id: a\n    terms: [x]\n    expires: {TERM}\n",
    "term-as-version": f"version: {TERM}\nrules: []\n",
    "term-as-setting": f"version: 1\nsettings:\n  unscannable: {TERM}\n",
    "term-as-group-name": f"version: 1\ngroups:\n  {TERM}: [a@b.example]\n",
}
CSV_CASES = {
    "term-in-action-column": f"id,term,action\na,x,{TERM}\n",
    "term-in-id-column": f"id,term,action\n{TERM},x,hold\n",
    "term-as-header": f"id,{TERM},action\na,x,hold\n",
    "term-in-bool": f"id,term,allow_internal\na,x,{TERM}\n",
    "term-in-domains": f"id,term,allow_domains\na,x,{TERM}\n",
}


@pytest.mark.parametrize("text", YAML_CASES.values(), ids=YAML_CASES.keys())
def test_yaml_problems_do_not_quote_values(text: str) -> None:
    """Every problem is located, and none of them contains the misplaced term."""
    with pytest.raises(RuleError) as info:
        parse_rules_yaml(text, "r.yaml")
    assert info.value.problems
    for problem in info.value.problems:
        assert "kestrel" not in str(problem).lower()
        assert problem.line is not None


@pytest.mark.parametrize("text", CSV_CASES.values(), ids=CSV_CASES.keys())
def test_csv_problems_do_not_quote_values(text: str) -> None:
    """CSV problems name line and column, never the cell's content."""
    with pytest.raises(RuleError) as info:
        parse_rules_csv(text.encode("utf-8"), "r.csv")
    assert info.value.problems
    for problem in info.value.problems:
        assert "kestrel" not in str(problem).lower()
        assert problem.line is not None
