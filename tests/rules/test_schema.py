"""The JSON Schema in rules/ accepts every example and rejects what the loader rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scanner.errors import RuleError
from scanner.rules.load import _yaml, parse_rules_yaml
from tests.rules.test_load import DESIGN_EXAMPLE, INVALID

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
SCHEMA = json.loads((RULES_DIR / "maruhi-rules.schema.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)

# What a schema cannot say: YAML that does not parse, and checks across the file.
LOADER_ONLY = {
    "yaml-syntax",
    "yaml-unclosed-flow",
    "duplicate-key",
    "duplicate-id",
    "unknown-group",
}


def as_json(text: str) -> Any:
    """The YAML document as JSON data; the loader's own YAML keeps dates as text, like JSON."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return {str(k): convert(v) for k, v in node.items()}
        if isinstance(node, list):
            return [convert(v) for v in node]
        if isinstance(node, str):
            return str(node)
        return node

    return convert(_yaml().load(text))


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema file is itself a valid draft 2020-12 schema."""
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", ["example-en.yaml", "example-ja.yaml"])
def test_examples_validate_against_schema_and_loader(name: str) -> None:
    """Each example rule set is valid for both the schema and the loader."""
    text = (RULES_DIR / name).read_text("utf-8")
    assert list(VALIDATOR.iter_errors(as_json(text))) == []
    assert len(parse_rules_yaml(text, name).rules) == 4


def test_example_globs_are_covered() -> None:
    """Every YAML file in rules/ is one of the examples tested here (a new one needs a test)."""
    assert sorted(p.name for p in RULES_DIR.glob("*.yaml")) == [
        "example-en.yaml",
        "example-ja.yaml",
    ]


def test_design_example_is_valid_for_schema() -> None:
    """The rules file shown in DESIGN.md is valid for the schema."""
    assert list(VALIDATOR.iter_errors(as_json(DESIGN_EXAMPLE))) == []


@pytest.mark.parametrize(
    "text",
    [pytest.param(row[1], id=row[0]) for row in INVALID if row[0] not in LOADER_ONLY],
)
def test_schema_and_loader_agree_on_invalid_files(text: str) -> None:
    """Each invalid file of the loader's table is also invalid for the schema."""
    with pytest.raises(RuleError):
        parse_rules_yaml(text, "r.yaml")
    assert list(VALIDATOR.iter_errors(as_json(text))) != []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(row[1], id=row[0])
        for row in INVALID
        if row[0] in {"duplicate-id", "unknown-group"}
    ],
)
def test_cross_checks_are_loader_only(text: str) -> None:
    """Duplicate ids and unknown groups pass the schema, so the loader must catch them."""
    assert list(VALIDATOR.iter_errors(as_json(text))) == []
    with pytest.raises(RuleError):
        parse_rules_yaml(text, "r.yaml")
