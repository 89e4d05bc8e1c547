"""Benchmark: our OOXML extraction against python-docx and openpyxl on the same files.

Run with ``.venv/bin/python tests/bench/bench_extract.py [RUNS]`` after
``.venv/bin/pip install -e '.[bench]'``. It times (median of RUNS, ``time.perf_counter``) the
corpus .docx/.xlsx files plus a generated ~200 KB .docx and ~100 KB .xlsx (built in memory with
python-docx/openpyxl, so nothing is written to disk) and prints one table with the ratio
reference/ours; the issue's target is a ratio of at least 5.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import docx
import openpyxl

from scanner.extract.budget import Budget
from scanner.extract.ooxml import docx_text, xlsx_text
from scanner.limits import Limits

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "documents"
WORDS = [
    "quarterly",
    "revenue",
    "forecast",
    "customer",
    "pipeline",
    "機密",
    "案件",
    "ファルコン計画",
    "margin",
    "discount",
    "renewal",
    "contract",
    "clause",
    "liability",
    "見積書",
    "deadline",
    "delivery",
]


def _sentence(i: int, n: int = 14) -> str:
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(n))


def generated_docx(target: int = 200 * 1024) -> bytes:
    """A Word file of about ``target`` bytes: paragraphs, runs and a table, as Word users make."""
    document = docx.Document()
    i = 0
    while True:
        for _ in range(200):
            paragraph = document.add_paragraph(_sentence(i))
            paragraph.add_run(f" run {i}").bold = True
            i += 1
        table = document.add_table(rows=10, cols=4)
        for r, row in enumerate(table.rows):
            for c, cell in enumerate(row.cells):
                cell.text = f"{WORDS[(r + c + i) % len(WORDS)]} {r}-{c}"
        buffer = io.BytesIO()
        document.save(buffer)
        if buffer.tell() >= target:
            return buffer.getvalue()


def generated_xlsx(target: int = 100 * 1024) -> bytes:
    """A workbook of about ``target`` bytes: text (shared strings) and number cells."""
    rows = 500
    while True:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        for r in range(rows):
            sheet.append([f"{WORDS[r % len(WORDS)]} {r}", r * 1.5, _sentence(r, 4), r, "案件"])
        buffer = io.BytesIO()
        workbook.save(buffer)
        if buffer.tell() >= target:
            return buffer.getvalue()
        rows = int(rows * target / buffer.tell() * 1.05) + 1


def ref_docx(data: bytes) -> str:
    """What a python-docx user writes: every paragraph, then every table cell."""
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    for section in document.sections:
        parts.extend(p.text for p in section.header.paragraphs)
        parts.extend(p.text for p in section.footer.paragraphs)
    return "\n".join(parts)


def ref_xlsx(data: bytes) -> str:
    """openpyxl in its fastest mode: read-only, cached values."""
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    parts = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows(values_only=True):
            parts.append("\t".join("" if v is None else str(v) for v in row))
    workbook.close()
    return "\n".join(parts)


def median_seconds(function: Callable[[], object], runs: int) -> float:
    function()  # warm caches and imports outside the measurement
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    cases: list[tuple[str, bytes, str]] = []
    for path in sorted(CORPUS.glob("*.docx")):
        cases.append((path.name, path.read_bytes(), "docx"))
    cases.append(("generated.docx", generated_docx(), "docx"))
    for path in sorted(CORPUS.glob("*.xlsx")):
        cases.append((path.name, path.read_bytes(), "xlsx"))
    cases.append(("generated.xlsx", generated_xlsx(), "xlsx"))

    ours: dict[str, Callable[[bytes], str]] = {
        "docx": lambda d: docx_text(d, Budget(Limits())),
        "xlsx": lambda d: xlsx_text(d, Budget(Limits())),
    }
    refs: dict[str, tuple[str, Callable[[bytes], str]]] = {
        "docx": ("python-docx", ref_docx),
        "xlsx": ("openpyxl", ref_xlsx),
    }
    print(f"median of {runs} runs (ms)")
    header = f"{'file':42} {'KB':>6} {'ours':>8} {'reference':>12} {'ref ms':>8} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[float]] = {"docx": [], "xlsx": []}
    for name, data, kind in cases:
        ref_name, ref = refs[kind]
        mine = median_seconds(lambda data=data, kind=kind: ours[kind](data), runs)
        theirs = median_seconds(lambda data=data, ref=ref: ref(data), runs)
        ratios[kind].append(theirs / mine)
        print(
            f"{name:42} {len(data) / 1024:6.0f} {mine * 1000:8.2f} {ref_name:>12} "
            f"{theirs * 1000:8.2f} {theirs / mine:6.1f}x"
        )
    for kind, values in ratios.items():
        print(f"{kind}: ratio median {statistics.median(values):.1f}x, min {min(values):.1f}x")


if __name__ == "__main__":
    main()
