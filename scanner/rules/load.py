"""Rules files in, ``RulesetSpec`` out: YAML parsing and validation, and bytes → YAML or CSV.

Owns the YAML reading of the rules file described in DESIGN.md ("Rules file"). Every problem
found is collected and raised at once as ``RuleError`` with the 1-based line and column of the
offending node, so a sales admin fixes a file in one round, not one error per upload.

Must not: read files, the clock or the environment (the caller passes text and a display name);
put a term into a message (see ``validate``). ``expires`` is checked for form only: whether a
rule is still active is decided at compile time against a date the caller gives.

Hazard: ruamel's own messages may quote file content (a duplicate key's values); only its short
``problem`` text and its position are used, and not even that for duplicate keys.
"""

from __future__ import annotations

import codecs
import datetime as dt
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from scanner.errors import Problem, RuleError
from scanner.model import Action
from scanner.rules import validate as v
from scanner.rules.csvio import header_key, parse_rules_csv
from scanner.rules.model import Allow, RulesetSpec, RuleSpec, Settings

Pos = tuple[int | None, int | None]
_NOWHERE: Pos = (None, None)


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves timestamps as text.

    ruamel turns ``2026-13-01`` into a bare ``ValueError`` with no position; as text, the date is
    checked by ``validate.parse_date`` and the problem points at the value.
    """

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        assert isinstance(node, ScalarNode)
        return self.construct_scalar(node)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
    return yaml


class _Collector:
    """Problems of one file, in the order found."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def add(self, pos: Pos, message: str, rule_id: str | None = None) -> None:
        self.problems.append(Problem(self.filename, pos[0], pos[1], message, rule_id))


def _one_based(pair: Any) -> Pos:
    line, col = pair
    return (line + 1, col + 1)


def _node_pos(node: Any) -> Pos:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return _NOWHERE
    return (lc.line + 1, lc.col + 1)


def _key_pos(mapping: CommentedMap, key: Any) -> Pos:
    try:
        return _one_based(mapping.lc.key(key))
    except (KeyError, TypeError):  # a key that came in through a merge (<<) has no own position
        return _node_pos(mapping)


def _value_pos(mapping: CommentedMap, key: Any) -> Pos:
    try:
        return _one_based(mapping.lc.value(key))
    except (KeyError, TypeError):
        return _key_pos(mapping, key)


def _item_pos(seq: CommentedSeq, index: int) -> Pos:
    try:
        return _one_based(seq.lc.item(index))
    except (KeyError, TypeError, IndexError):
        return _node_pos(seq)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _YamlReader:
    def __init__(self, filename: str) -> None:
        self.out = _Collector(filename)

    # -- helpers ---------------------------------------------------------------------------

    def keys(
        self, mapping: CommentedMap, allowed: tuple[str, ...], where: str, rule_id: str | None
    ) -> None:
        for key in mapping:
            if not isinstance(key, str):
                self.out.add(_key_pos(mapping, key), f"keys in {where} must be text", rule_id)
            elif key not in allowed:
                self.out.add(_key_pos(mapping, key), v.unknown_key(key, allowed, where), rule_id)

    def text(
        self, mapping: CommentedMap, key: str, rule_id: str | None, *, hint: str = ""
    ) -> str | None:
        """A stripped text value; empty text counts as absent."""
        if key not in mapping:
            return None
        value = mapping[key]
        if not isinstance(value, str):
            self.out.add(
                _value_pos(mapping, key),
                f"{key} must be text, not {_type_name(value)}{hint}",
                rule_id,
            )
            return None
        return str(value).strip() or None

    def texts(
        self, mapping: CommentedMap, key: str, rule_id: str | None, *, what: str
    ) -> Iterator[tuple[str, Pos]]:
        """Each stripped text item of a list value, with its position."""
        if key not in mapping:
            return
        value = mapping[key]
        if not isinstance(value, list):
            example = f"{key}: [...]"
            self.out.add(
                _value_pos(mapping, key),
                f"{key} must be a list (write {example}), not {_type_name(value)}",
                rule_id,
            )
            return
        for i, item in enumerate(value):
            pos = _item_pos(value, i)  # type: ignore[arg-type]
            if not isinstance(item, str):
                self.out.add(
                    pos,
                    f"each {what} in {key} must be text, not {_type_name(item)}"
                    + (" (put it in quotes)" if isinstance(item, int | float) else ""),
                    rule_id,
                )
                continue
            yield str(item).strip(), pos

    def domains(self, mapping: CommentedMap, key: str, rule_id: str | None) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for text, pos in self.texts(mapping, key, rule_id, what="domain"):
            problem = v.check_domain(text)
            if problem:
                self.out.add(pos, problem, rule_id)
            else:
                found.setdefault(text, None)
        return tuple(found)

    def addresses(self, mapping: CommentedMap, key: str, rule_id: str | None) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for text, pos in self.texts(mapping, key, rule_id, what="address"):
            problem = v.check_address(text)
            if problem:
                self.out.add(pos, problem, rule_id)
            else:
                found.setdefault(text, None)
        return tuple(found)

    # -- sections --------------------------------------------------------------------------

    def read(self, text: str) -> RulesetSpec:
        try:
            doc = _yaml().load(text)
        except YAMLError as exc:
            self.out.add(*_syntax_problem(exc, text))
            raise RuleError(self.out.problems) from exc
        return self.read_document(doc)

    def read_document(self, doc: Any) -> RulesetSpec:
        if doc is None:
            self.out.add((1, 1), "the rules file is empty: start with 'version: 1'")
            raise RuleError(self.out.problems)
        if not isinstance(doc, CommentedMap):
            self.out.add(
                _node_pos(doc) if _node_pos(doc) != _NOWHERE else (1, 1),
                "the rules file must be a mapping with version, settings, groups and rules",
            )
            raise RuleError(self.out.problems)

        self.keys(doc, v.TOP_KEYS, "the rules file", None)
        self.version(doc)
        settings = self.settings(doc)
        groups = self.groups(doc)
        rules = self.rules(doc, groups)
        if self.out.problems:
            raise RuleError(v.in_reading_order(self.out.problems))
        return RulesetSpec(settings=settings, groups=groups, rules=rules)

    def version(self, doc: CommentedMap) -> None:
        if "version" not in doc:
            self.out.add(
                (1, 1),
                f"missing version: the file must start with 'version: {v.SUPPORTED_VERSION}'",
            )
            return
        value = doc["version"]
        if isinstance(value, bool) or value != v.SUPPORTED_VERSION:
            self.out.add(
                _value_pos(doc, "version"),
                f"unsupported version: this Maruhi reads version {v.SUPPORTED_VERSION}",
            )

    def settings(self, doc: CommentedMap) -> Settings:
        if "settings" not in doc:
            return Settings()
        node = doc["settings"]
        if not isinstance(node, CommentedMap):
            self.out.add(
                _value_pos(doc, "settings"),
                f"settings must be a mapping, not {_type_name(node)}",
            )
            return Settings()
        self.keys(node, v.SETTINGS_KEYS, "settings", None)
        internal = self.domains(node, "internal_domains", None)
        unscannable = Action.FLAG
        text = self.text(node, "unscannable", None)
        if text is not None:
            parsed = v.parse_unscannable(text)
            if isinstance(parsed, str):
                self.out.add(_value_pos(node, "unscannable"), parsed)
            else:
                unscannable = parsed
        return Settings(internal_domains=internal, unscannable=unscannable)

    def groups(self, doc: CommentedMap) -> dict[str, tuple[str, ...]]:
        groups: dict[str, tuple[str, ...]] = {}
        if "groups" not in doc:
            return groups
        node = doc["groups"]
        if not isinstance(node, CommentedMap):
            self.out.add(
                _value_pos(doc, "groups"), f"groups must be a mapping, not {_type_name(node)}"
            )
            return groups
        for name in node:
            if not isinstance(name, str):
                self.out.add(_key_pos(node, name), "group names must be text")
                continue
            problem = v.check_id(name, "group name")
            if problem:
                self.out.add(_key_pos(node, name), problem)
                continue
            members: dict[str, None] = {}
            value = node[name]
            if not isinstance(value, list):
                self.out.add(
                    _value_pos(node, name),
                    f"a group must be a list of addresses, not {_type_name(value)}",
                )
                continue
            for i, item in enumerate(value):
                pos = _item_pos(value, i)  # type: ignore[arg-type]
                if not isinstance(item, str):
                    self.out.add(pos, "group members must be addresses (text)")
                    continue
                address = str(item).strip()
                message = v.check_address(address)
                if message:
                    self.out.add(pos, f"in a group: {message}")
                else:
                    members.setdefault(address, None)
            groups[name] = tuple(members)
        return groups

    def rules(self, doc: CommentedMap, groups: dict[str, tuple[str, ...]]) -> tuple[RuleSpec, ...]:
        if "rules" not in doc:
            return ()
        node = doc["rules"]
        if not isinstance(node, CommentedSeq):
            self.out.add(
                _value_pos(doc, "rules"),
                "rules must be a list of rules (each starting with '- id:'), "
                f"not {_type_name(node)}",
            )
            return ()
        rules: list[RuleSpec] = []
        first_line: dict[str, int | None] = {}
        for i, item in enumerate(node):
            pos = _item_pos(node, i)
            if not isinstance(item, CommentedMap):
                self.out.add(
                    pos, f"each rule must be a mapping (id, terms, ...), not {_type_name(item)}"
                )
                continue
            rule = self.rule(item, pos, groups)
            if rule is None:
                continue
            if rule.id in first_line:
                self.out.add(
                    _value_pos(item, "id"),
                    f"duplicate rule id '{rule.id}' (first defined at line {first_line[rule.id]})",
                    rule.id,
                )
                continue
            first_line[rule.id] = rule.line
            rules.append(rule)
        return tuple(rules)

    def rule(
        self, node: CommentedMap, pos: Pos, groups: dict[str, tuple[str, ...]]
    ) -> RuleSpec | None:
        rule_id: str | None = None
        if "id" not in node:
            self.out.add(pos, "rule without id: every rule needs a unique 'id'")
        else:
            rule_id = self.text(node, "id", None, hint=" (put it in quotes)")
            if rule_id is not None:
                problem = v.check_id(rule_id)
                if problem:
                    self.out.add(_value_pos(node, "id"), problem)
                    rule_id = None
            elif isinstance(node["id"], str):
                self.out.add(_value_pos(node, "id"), "empty rule id")
        self.keys(node, v.RULE_KEYS, "a rule", rule_id)

        terms: dict[str, None] = {}
        for term, term_pos in self.texts(node, "terms", rule_id, what="term"):
            problem = v.check_term(term)
            if problem:
                self.out.add(term_pos, problem, rule_id)
            else:
                terms.setdefault(term, None)  # exact duplicates collapse silently
        recipient_domains = self.domains(node, "recipient_domains", rule_id)
        # A key given with the wrong type was reported above; do not also call it missing.
        given_terms, given_domains = (
            key in node and node[key] != [] for key in ("terms", "recipient_domains")
        )
        has_terms = isinstance(node.get("terms"), list) and len(node["terms"]) > 0
        has_domains = (
            isinstance(node.get("recipient_domains"), list) and len(node["recipient_domains"]) > 0
        )
        if not given_terms and not given_domains:
            self.out.add(
                pos, "rule has neither terms nor recipient_domains: it could never hit", rule_id
            )
        elif has_terms and has_domains:
            self.out.add(
                pos,
                "rule has both terms and recipient_domains: split it into two rules",
                rule_id,
            )

        customer = self.text(node, "customer", rule_id)
        description = self.text(node, "description", rule_id)
        owner = self.text(node, "owner", rule_id)
        if owner is not None:
            problem = v.check_address(owner)
            if problem:
                self.out.add(_value_pos(node, "owner"), f"owner: {problem}", rule_id)
        allow = self.allow(node, rule_id, groups)

        action = v.DEFAULT_RULE_ACTION
        action_text = self.text(node, "action", rule_id)
        if action_text is not None:
            parsed = v.parse_rule_action(action_text)
            if isinstance(parsed, str):
                self.out.add(_value_pos(node, "action"), parsed, rule_id)
            else:
                action = parsed

        expires: dt.date | None = None
        expires_text = self.text(node, "expires", rule_id, hint=" (write YYYY-MM-DD)")
        if expires_text is not None:
            parsed_date = v.parse_date(expires_text)
            if isinstance(parsed_date, str):
                self.out.add(_value_pos(node, "expires"), parsed_date, rule_id)
            else:
                expires = parsed_date

        if rule_id is None:
            return None
        return RuleSpec(
            id=rule_id,
            action=action,
            terms=tuple(terms),
            recipient_domains=recipient_domains,
            customer=customer,
            owner=owner,
            allow=allow,
            expires=expires,
            description=description,
            line=pos[0],
        )

    def allow(
        self, rule: CommentedMap, rule_id: str | None, groups: dict[str, tuple[str, ...]]
    ) -> Allow:
        if "allow" not in rule:
            return Allow()
        node = rule["allow"]
        if not isinstance(node, CommentedMap):
            self.out.add(
                _value_pos(rule, "allow"),
                "allow must be a mapping (domains, addresses, groups, internal), "
                f"not {_type_name(node)}",
                rule_id,
            )
            return Allow()
        self.keys(node, v.ALLOW_KEYS, "allow", rule_id)
        domains = self.domains(node, "domains", rule_id)
        addresses = self.addresses(node, "addresses", rule_id)
        names: dict[str, None] = {}
        for name, pos in self.texts(node, "groups", rule_id, what="group"):
            if name not in groups:
                known = (
                    f"; defined groups: {', '.join(groups)}"
                    if groups
                    else "; no groups are defined"
                )
                self.out.add(
                    pos,
                    f"unknown group{v.suggestion(name, groups)}{known}",
                    rule_id,
                )
            else:
                names.setdefault(name, None)
        internal = False
        if "internal" in node:
            value = node["internal"]
            if isinstance(value, bool):
                internal = value
            else:
                self.out.add(
                    _value_pos(node, "internal"),
                    f"internal must be true or false, not {_type_name(value)}",
                    rule_id,
                )
        return Allow(domains=domains, addresses=addresses, groups=tuple(names), internal=internal)


def _syntax_problem(exc: YAMLError, text: str) -> tuple[Pos, str]:
    """Position and a content-free message for a YAML syntax error."""
    if isinstance(exc, DuplicateKeyError):
        mark = exc.problem_mark
        return (mark.line + 1, mark.column + 1), "YAML syntax: duplicate key in the same mapping"
    if isinstance(exc, ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        return (
            line,
            column,
        ), f"YAML syntax: control character U+{exc.character:04X} not allowed" if isinstance(
            exc.character, int
        ) else "YAML syntax: character not allowed"
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            return (mark.line + 1, mark.column + 1), f"YAML syntax: {problem}"
        return _NOWHERE, f"YAML syntax: {problem}"
    return _NOWHERE, "YAML syntax: invalid YAML"


class _TextTimestampConstructor(SafeConstructor):
    """The C-accelerated safe constructor, leaving timestamps as text like ``_Constructor``."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        return self.construct_scalar(node)


_TextTimestampConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", _TextTimestampConstructor.construct_yaml_timestamp
)


def _round_trip_shape(value: Any) -> Any:
    """Plain containers from the fast loader as the round-trip types the reader expects."""
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _round_trip_shape(item)
        return mapping
    if isinstance(value, list):
        return CommentedSeq([_round_trip_shape(item) for item in value])
    return value


def _fast_document(text: str) -> Any:
    """The document through libyaml (ruamel.yaml.clib), or ``_NO_FAST`` when unavailable/invalid.

    The round-trip loader that gives every node its line and column is pure Python (~12 s for
    a 100k-term file); libyaml parses the same file ~7x faster but without positions. A valid
    file does not need positions, so it is read this way first; any problem at all sends the
    file through the round-trip loader again, so that every reported problem is located.
    """
    try:
        loader = YAML(typ="safe", pure=False)
        if "_ruamel_yaml" not in loader.Parser.__module__:  # no C extension: no gain
            return _NO_FAST
        loader.Constructor = _TextTimestampConstructor
        constructor, _ = loader.get_constructor_parser(text)
        node = constructor.composer.get_single_node()
        doc = _round_trip_shape(constructor.construct_document(node))
    except Exception:
        return _NO_FAST
    _mark_rule_lines(node, doc)
    return doc


def _mark_rule_lines(node: Any, doc: Any) -> None:
    """Give each rule mapping its source position, which libyaml's nodes still carry."""
    if not isinstance(node, MappingNode) or not isinstance(doc, CommentedMap):
        return
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == "rules" and isinstance(value_node, SequenceNode):
            rules = doc.get("rules")
            if isinstance(rules, CommentedSeq) and len(rules) == len(value_node.value):
                for index, item_node in enumerate(value_node.value):
                    mark = item_node.start_mark
                    rules.lc.add_kv_line_col(index, [mark.line, mark.column])
            return


_NO_FAST = object()


def parse_rules_yaml(text: str, filename: str) -> RulesetSpec:
    """Parse and validate a YAML rules file; ``RuleError`` lists every problem found.

    Rules read through the fast path carry no source ``line`` (it is only used in messages,
    and a file with any problem is re-read with positions).
    """
    doc = _fast_document(text)
    if doc is not _NO_FAST:
        try:
            return _YamlReader(filename).read_document(doc)
        except RuleError:
            pass  # re-read below with line and column for every problem
    return _YamlReader(filename).read(text)


# -- bytes: decoding and format choice ---------------------------------------------------------


def _undecodable(data: bytes, exc: UnicodeDecodeError, filename: str, what: str) -> RuleError:
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return RuleError(
        [Problem(filename, line, column, f"cannot decode the file as {what} (byte column)")]
    )


def decode_yaml_bytes(data: bytes, filename: str) -> str:
    """Rules YAML as text: UTF-8 with or without BOM (UTF-16 with BOM, as YAML allows)."""
    if data.startswith(codecs.BOM_UTF8):
        data, encoding = data[len(codecs.BOM_UTF8) :], "utf-8"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, filename, "UTF-8 text") from exc


def _looks_like_csv(data: bytes) -> bool:
    """True if the first line is a CSV header this reader knows (``id,...`` or ``ルールID,...``)."""
    first = data.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0]
    for encoding in ("utf-8", "cp932"):
        try:
            line = first.decode(encoding)
        except UnicodeDecodeError:
            continue
        cell = line.split(",", 1)[0].strip().strip('"')
        return "," in line and header_key(cell) is not None
    return False


def parse_rules_bytes(data: bytes, filename: str) -> RulesetSpec:
    """Parse a rules file as uploaded: CSV if named ``*.csv`` or shaped like our CSV, else YAML."""
    if filename.lower().endswith(".csv") or (
        not filename.lower().endswith((".yaml", ".yml")) and _looks_like_csv(data)
    ):
        return parse_rules_csv(data, filename)
    return parse_rules_yaml(decode_yaml_bytes(data, filename), filename)
