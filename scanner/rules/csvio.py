"""Rules as Excel CSV (import and export) and the canonical YAML writer.

Owns the CSV form of a rules file (documented in ``rules/README.md``): one term per row with the
rule's columns; rows with the same id merge into one rule; ``group``/``members`` rows define
groups and ``setting``/``value`` rows the settings. Headers are English names or their Japanese
aliases. Input is what Excel writes: UTF-8 with BOM, or cp932 (Excel's Japanese default); output
is UTF-8 with BOM and CRLF so that Excel opens it without mojibake. ``ruleset_to_yaml`` writes
the YAML form that ``maruhi rules import-csv`` produces.

Must not: read or write files; put a term into a message (problems name line, column and rule).

Hazards: a problem's line is the physical line of the cell, so a quoted cell that spans lines
shifts every later line; it is counted from ``csv.reader.line_num`` and the line breaks inside
the preceding cells. Excel re-formats cells it recognises (dates, numbers with leading zeros,
text starting with '='): the importer accepts Excel's date form ``2027/3/31`` and TRUE/FALSE;
the README tells admins to format cells as text.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from scanner.errors import Problem, RuleError
from scanner.model import Action
from scanner.rules import validate as v
from scanner.rules.model import Allow, RulesetSpec, RuleSpec, Settings

# Canonical column names, in the order the exporter writes them, with their Japanese aliases.
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("ルールid", "ルール", "rule_id", "rule"),
    "customer": ("顧客", "顧客名"),
    "owner": ("担当者",),
    "description": ("説明", "備考"),
    "term": ("用語", "秘密用語", "terms"),
    "recipient_domains": ("宛先ドメイン",),
    "allow_domains": ("許可ドメイン",),
    "allow_addresses": ("許可アドレス",),
    "allow_groups": ("許可グループ",),
    "allow_internal": ("社内許可",),
    "action": ("動作", "処置"),
    "expires": ("期限", "有効期限"),
    "group": ("グループ", "グループ名"),
    "members": ("メンバー",),
    "setting": ("設定",),
    "value": ("値", "設定値"),
}
_ALIASES = {alias: name for name, aliases in COLUMNS.items() for alias in (name, *aliases)}
# Columns that describe the rule as a whole; every row of one rule must agree on them.
_RULE_COLUMNS = (
    "customer",
    "owner",
    "description",
    "recipient_domains",
    "allow_domains",
    "allow_addresses",
    "allow_groups",
    "allow_internal",
    "action",
    "expires",
)
_KIND_COLUMNS = ("id", "group", "setting")
_OWN_COLUMNS = {
    "id": {"id", "term", *_RULE_COLUMNS},
    "group": {"group", "members"},
    "setting": {"setting", "value"},
}

_SPLIT = re.compile(r"[;；\r\n]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TRUE = {"true", "yes", "y", "1", "はい", "○", "〇"}
_FALSE = {"false", "no", "n", "0", "いいえ", "×"}
# Japanese spellings of the actions, for admins who fill the sheet in Japanese.
_ACTION_ALIASES = {"警告": "flag", "フラグ": "flag", "保留": "hold", "拒否": "reject"}
_EXCEL_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")


def header_key(cell: str) -> str | None:
    """The canonical column name for a header cell as written (English or Japanese), or None."""
    text = unicodedata.normalize("NFKC", cell).strip().lower()
    text = re.sub(r"[\s\-]+", "_", text)
    return _ALIASES.get(text)


# -- decoding ----------------------------------------------------------------------------------


def decode_csv_bytes(data: bytes, filename: str) -> str:
    """Text of an Excel CSV: BOM → UTF-8; else strict UTF-8; else cp932; else a Problem."""
    if data.startswith(codecs.BOM_UTF8):
        # Decode after the BOM so that error offsets are in the bytes a line is made of.
        data = data[len(codecs.BOM_UTF8) :]
        candidates: tuple[str, ...] = ("utf-8",)
    else:
        candidates = ("utf-8", "cp932")
    last: UnicodeDecodeError | None = None
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            last = exc
    assert last is not None
    line = data.count(b"\n", 0, last.start) + 1
    column = last.start - (data.rfind(b"\n", 0, last.start) + 1) + 1
    what = "UTF-8" if len(candidates) == 1 else "UTF-8 or cp932 (Shift_JIS)"
    raise RuleError(
        [Problem(filename, line, column, f"the file is not {what} text here (byte column)")]
    )


# -- import ------------------------------------------------------------------------------------


@dataclass
class _Cell:
    """Where a value came from: physical line, 1-based column, the header as written."""

    line: int
    column: int
    header: str


@dataclass
class _RuleRows:
    id: str
    line: int
    terms: dict[str, None] = field(default_factory=dict)
    # column name → (parsed value, cell it was first given in)
    values: dict[str, tuple[Any, _Cell]] = field(default_factory=dict)
    group_cells: list[tuple[str, _Cell]] = field(default_factory=list)
    # A term cell was filled, even if its term was rejected (then "no terms" would be noise).
    term_given: bool = False


class _CsvReader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []
        self.rules: dict[str, _RuleRows] = {}
        self.groups: dict[str, dict[str, None]] = {}
        self.internal_domains: dict[str, None] = {}
        self.unscannable: tuple[Action, _Cell] | None = None

    def add(self, cell: _Cell | None, message: str, rule_id: str | None = None) -> None:
        if cell is None:
            self.problems.append(Problem(self.filename, None, None, message, rule_id))
        else:
            self.problems.append(
                Problem(
                    self.filename,
                    cell.line,
                    cell.column,
                    f"column '{cell.header}': {message}",
                    rule_id,
                )
            )

    def header(self, row: list[str]) -> dict[str, int] | None:
        columns: dict[str, int] = {}
        for index, cell in enumerate(row):
            if not cell.strip():
                continue
            name = header_key(cell)
            if name is None:
                known = list(COLUMNS)
                self.problems.append(
                    Problem(
                        self.filename,
                        1,
                        index + 1,
                        f"unknown column{v.suggestion(cell.strip(), known)}; "
                        f"known columns: {', '.join(known)}",
                    )
                )
            elif name in columns:
                self.problems.append(
                    Problem(
                        self.filename,
                        1,
                        index + 1,
                        f"column '{cell.strip()}' repeats column {columns[name] + 1}",
                    )
                )
            else:
                columns[name] = index
        if "id" not in columns:
            self.problems.append(
                Problem(
                    self.filename, 1, None, "missing column 'id' (ルールID): every CSV needs it"
                )
            )
            return None
        return columns

    def read(self, text: str) -> RulesetSpec:
        reader = csv.reader(io.StringIO(text, newline=""), strict=False)
        try:
            header = next(reader, None)
            if header is None:
                self.problems.append(
                    Problem(self.filename, 1, 1, "the CSV file is empty: it needs a header row")
                )
                raise RuleError(self.problems)
            names = self.header(header)
            if names is None or self.problems:
                # Rows under a wrong header would only repeat the header's problem.
                raise RuleError(self.problems)
            headers = {index: header[index].strip() for index in names.values()}
            by_index = {index: name for name, index in names.items()}
            end_of_previous = reader.line_num
            for row in reader:
                self.row(row, end_of_previous + 1, by_index, headers)
                end_of_previous = reader.line_num
        except csv.Error as exc:
            # Only a NUL byte or an over-long field get here (strict=False tolerates stray
            # quotes); the message names no content.
            self.problems.append(
                Problem(self.filename, reader.line_num or 1, None, f"CSV syntax: {exc}")
            )
            raise RuleError(self.problems) from exc
        spec = self.finish()
        if self.problems:
            raise RuleError(v.in_reading_order(self.problems))
        return spec

    def row(
        self, row: list[str], first_line: int, by_index: dict[int, str], headers: dict[int, str]
    ) -> None:
        cells: dict[str, tuple[str, _Cell]] = {}
        line = first_line
        for index, raw in enumerate(row):
            cell = _Cell(line, index + 1, headers.get(index, f"#{index + 1}"))
            # A quoted cell with line breaks moves every later cell of the row down.
            line += len(_LINE_BREAK.findall(raw))
            value = raw.strip()
            if not value:
                continue
            name = by_index.get(index)
            if name is None:
                self.add(cell, "a value in a column without a known header")
                continue
            cells[name] = (value, cell)
        if not cells:
            return  # blank rows (Excel writes ",,,," lines) mean nothing
        kinds = [k for k in _KIND_COLUMNS if k in cells]
        if len(kinds) != 1:
            first = min((c for _, c in cells.values()), key=lambda c: c.column)
            message = (
                "a row needs one of id, group or setting"
                if not kinds
                else f"a row is either a rule (id), a group or a setting, not {' and '.join(kinds)}"
            )
            self.problems.append(Problem(self.filename, first.line, None, message))
            return
        kind = kinds[0]
        rule_id = cells["id"][0] if kind == "id" else None
        for name, (_, cell) in cells.items():
            if name not in _OWN_COLUMNS[kind]:
                what = {"id": "rule", "group": "group", "setting": "setting"}[kind]
                self.add(cell, f"must be empty on a {what} row", rule_id)
        if kind == "id":
            self.rule_row(cells)
        elif kind == "group":
            self.group_row(cells)
        else:
            self.setting_row(cells)

    def rule_row(self, cells: dict[str, tuple[str, _Cell]]) -> None:
        rule_id, id_cell = cells["id"]
        problem = v.check_id(rule_id)
        if problem:
            self.add(id_cell, problem)
            return
        rows = self.rules.get(rule_id)
        if rows is None:
            rows = self.rules[rule_id] = _RuleRows(rule_id, id_cell.line)
        if "term" in cells:
            term, term_cell = cells["term"]
            rows.term_given = True
            problem = v.check_term(term)
            if problem:
                self.add(term_cell, problem, rule_id)
            else:
                rows.terms.setdefault(term, None)
        for name in _RULE_COLUMNS:
            if name not in cells:
                continue
            text, cell = cells[name]
            parsed = self.rule_value(name, text, cell, rule_id)
            if parsed is _INVALID:
                continue
            if name not in rows.values:
                rows.values[name] = (parsed, cell)
                if name == "allow_groups":
                    rows.group_cells.extend((g, cell) for g in parsed)
            elif _comparable(rows.values[name][0]) != _comparable(parsed):
                first = rows.values[name][1]
                self.add(
                    cell,
                    f"differs from line {first.line} of the same rule; rows of one rule must "
                    "agree (repeat the same value or leave the cell empty)",
                    rule_id,
                )

    def rule_value(self, name: str, text: str, cell: _Cell, rule_id: str) -> Any:
        def report(message: str) -> object:
            self.add(cell, message, rule_id)
            return _INVALID

        if name in ("customer", "description"):
            return text
        if name == "owner":
            problem = v.check_address(text)
            return report(problem) if problem else text
        if name in ("recipient_domains", "allow_domains"):
            return self.items(text, cell, rule_id, v.check_domain)
        if name == "allow_addresses":
            return self.items(text, cell, rule_id, v.check_address)
        if name == "allow_groups":
            return self.items(text, cell, rule_id, lambda _: None)
        if name == "allow_internal":
            key = unicodedata.normalize("NFKC", text).strip().lower()
            if key in _TRUE:
                return True
            if key in _FALSE:
                return False
            return report("not true or false (use TRUE/FALSE, yes/no, 1/0)")
        if name == "action":
            parsed = v.parse_rule_action(_ACTION_ALIASES.get(text.strip(), text))
            return report(parsed) if isinstance(parsed, str) else parsed
        assert name == "expires"
        excel = _EXCEL_DATE.fullmatch(text)
        if excel:  # Excel shows (and saves) dates as 2027/3/31 in a Japanese locale
            text = f"{excel[1]}-{int(excel[2]):02d}-{int(excel[3]):02d}"
        date = v.parse_date(text)
        return report(date) if isinstance(date, str) else date

    def items(
        self, text: str, cell: _Cell, rule_id: str | None, check: Callable[[str], str | None]
    ) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for item in _split(text):
            problem = check(item)
            if problem:
                self.add(cell, problem, rule_id)
            else:
                found.setdefault(item, None)
        return tuple(found)

    def group_row(self, cells: dict[str, tuple[str, _Cell]]) -> None:
        name, cell = cells["group"]
        problem = v.check_id(name, "group name")
        if problem:
            self.add(cell, problem)
            return
        members = self.groups.setdefault(name, {})
        if "members" in cells:
            text, members_cell = cells["members"]
            for address in self.items(text, members_cell, None, v.check_address):
                members.setdefault(address, None)

    def setting_row(self, cells: dict[str, tuple[str, _Cell]]) -> None:
        key, cell = cells["setting"]
        name = key.strip().lower()
        if name not in v.SETTINGS_KEYS:
            self.add(
                cell,
                f"unknown setting{v.suggestion(name, v.SETTINGS_KEYS)}; "
                f"known settings: {', '.join(v.SETTINGS_KEYS)}",
            )
            return
        text, value_cell = cells.get("value", ("", cell))
        if name == "internal_domains":
            for domain in self.items(text, value_cell, None, v.check_domain):
                self.internal_domains.setdefault(domain, None)
            return
        if not text:
            self.add(cell, "the unscannable setting needs a value (pass, flag, hold or reject)")
            return
        parsed = v.parse_unscannable(text)
        if isinstance(parsed, str):
            self.add(value_cell, parsed)
        elif self.unscannable is not None and self.unscannable[0] != parsed:
            self.add(value_cell, f"differs from line {self.unscannable[1].line}")
        else:
            self.unscannable = (parsed, value_cell)

    def finish(self) -> RulesetSpec:
        rules: list[RuleSpec] = []
        for rows in self.rules.values():
            values = {name: value for name, (value, _) in rows.values.items()}
            domains = values.get("recipient_domains", ())
            if not rows.term_given and "recipient_domains" not in rows.values:
                self.problems.append(
                    Problem(
                        self.filename,
                        rows.line,
                        None,
                        "rule has neither a term nor recipient_domains: it could never hit",
                        rows.id,
                    )
                )
            elif rows.terms and domains:
                self.problems.append(
                    Problem(
                        self.filename,
                        rows.line,
                        None,
                        "rule has both terms and recipient_domains: split it into two rules",
                        rows.id,
                    )
                )
            for name, cell in rows.group_cells:
                if name not in self.groups:
                    known = (
                        f"; defined groups: {', '.join(self.groups)}"
                        if self.groups
                        else "; no groups are defined"
                    )
                    self.add(
                        cell,
                        f"unknown group{v.suggestion(name, self.groups)}{known}",
                        rows.id,
                    )
            rules.append(
                RuleSpec(
                    id=rows.id,
                    action=values.get("action", v.DEFAULT_RULE_ACTION),
                    terms=tuple(rows.terms),
                    recipient_domains=domains,
                    customer=values.get("customer"),
                    owner=values.get("owner"),
                    allow=Allow(
                        domains=values.get("allow_domains", ()),
                        addresses=values.get("allow_addresses", ()),
                        groups=values.get("allow_groups", ()),
                        internal=values.get("allow_internal", False),
                    ),
                    expires=values.get("expires"),
                    description=values.get("description"),
                    line=rows.line,
                )
            )
        settings = Settings(
            internal_domains=tuple(self.internal_domains),
            unscannable=self.unscannable[0] if self.unscannable else Action.FLAG,
        )
        groups = {name: tuple(members) for name, members in self.groups.items()}
        return RulesetSpec(settings=settings, groups=groups, rules=tuple(rules))


_INVALID: Any = object()


def _split(text: str) -> list[str]:
    return [item.strip() for item in _SPLIT.split(text) if item.strip()]


def _comparable(value: Any) -> Any:
    """Lists agree when they hold the same items, in whatever order a row wrote them."""
    return frozenset(value) if isinstance(value, tuple) else value


def parse_rules_csv(data: bytes, filename: str) -> RulesetSpec:
    """Parse and validate an Excel CSV rules file; ``RuleError`` lists every problem found."""
    return _CsvReader(filename).read(decode_csv_bytes(data, filename))


# -- export ------------------------------------------------------------------------------------


def _join(items: tuple[str, ...]) -> str:
    return ";".join(items)


def _rule_cells(rule: RuleSpec) -> dict[str, str]:
    return {
        "id": rule.id,
        "customer": rule.customer or "",
        "owner": rule.owner or "",
        "description": rule.description or "",
        "recipient_domains": _join(rule.recipient_domains),
        "allow_domains": _join(rule.allow.domains),
        "allow_addresses": _join(rule.allow.addresses),
        "allow_groups": _join(rule.allow.groups),
        "allow_internal": "true" if rule.allow.internal else "false",
        "action": rule.action.label,
        "expires": rule.expires.isoformat() if rule.expires else "",
    }


def ruleset_to_csv(spec: RulesetSpec) -> bytes:
    """The ruleset as Excel CSV: UTF-8 with BOM, CRLF, every column, one term per row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    names = list(COLUMNS)
    writer.writerow(names)

    def write(cells: dict[str, str]) -> None:
        writer.writerow([cells.get(name, "") for name in names])

    for rule in spec.rules:
        cells = _rule_cells(rule)
        for term in rule.terms or ("",):
            write({**cells, "term": term})
    for group, members in spec.groups.items():
        write({"group": group, "members": _join(members)})
    write({"setting": "internal_domains", "value": _join(spec.settings.internal_domains)})
    write({"setting": "unscannable", "value": spec.settings.unscannable.label})
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def _flow(items: tuple[str, ...]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


_YAML_HEADER = "# Maruhi rules file: see rules/README.md and rules/maruhi-rules.schema.json\n"


def ruleset_to_yaml(spec: RulesetSpec) -> str:
    """The ruleset as a readable YAML rules file in the form of DESIGN.md."""
    doc = CommentedMap()
    doc["version"] = v.SUPPORTED_VERSION
    settings = CommentedMap()
    settings["internal_domains"] = _flow(spec.settings.internal_domains)
    settings["unscannable"] = spec.settings.unscannable.label
    doc["settings"] = settings
    if spec.groups:
        groups = CommentedMap()
        for name, members in spec.groups.items():
            groups[name] = _flow(members)
        doc["groups"] = groups
    rules = CommentedSeq()
    for rule in spec.rules:
        node = CommentedMap()
        node["id"] = rule.id
        for key in ("customer", "owner", "description"):
            value = getattr(rule, key)
            if value is not None:
                node[key] = value
        if rule.terms:
            # One term per line: terms are long, and a diff then shows which one changed.
            node["terms"] = CommentedSeq(rule.terms)
        if rule.recipient_domains:
            node["recipient_domains"] = _flow(rule.recipient_domains)
        if rule.allow != Allow():
            allow = CommentedMap()
            if rule.allow.domains:
                allow["domains"] = _flow(rule.allow.domains)
            if rule.allow.addresses:
                allow["addresses"] = _flow(rule.allow.addresses)
            if rule.allow.groups:
                allow["groups"] = _flow(rule.allow.groups)
            if rule.allow.internal:
                allow["internal"] = True
            node["allow"] = allow
        node["action"] = rule.action.label
        if rule.expires is not None:
            node["expires"] = _Date(rule.expires)
        rules.append(node)
    doc["rules"] = rules

    yaml = YAML(typ="rt", pure=True)
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    yaml.allow_unicode = True
    yaml.representer.add_representer(_Date, _represent_date)
    out = io.StringIO()
    yaml.dump(doc, out)
    body = out.getvalue()
    # A blank line between rules, as a person would write it.
    body = re.sub(r"\n(  - id: )", r"\n\n\1", body)
    body = body.replace("\n\n  - id: ", "\n  - id: ", 1)
    return _YAML_HEADER + body


class _Date(str):
    """A date written plainly (2027-03-31), not as a quoted string."""

    def __new__(cls, day: dt.date) -> _Date:
        return super().__new__(cls, day.isoformat())


def _represent_date(representer: Any, data: _Date) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:timestamp", str(data))
