"""Benchmark: ``scan()`` latency on a realistic message, and ruleset build vs cache load.

The message of issue 2's target: a 60 KB Japanese/English body with a ~200 KB .docx, a ~300 KB
PDF (a real one from the shared corpus) and a ~100 KB .xlsx attached, scanned against 100k terms
(10k rules of 10 terms). Reports p50/p99 of ``scan()`` over a bounded number of runs, next to the
same-run baseline of extraction alone (what scanning costs beyond reading the attachments), and
the time and memory to get a compiled ruleset: cold (parse + normalize + automaton) per engine
versus loading it from the compiled-ruleset cache.

    .venv/bin/python tests/bench/bench_scan.py [--terms 100000] [--runs 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_match import make_terms

from scanner.extract.mime import extract_message
from scanner.limits import Limits
from scanner.match.engine import available_engines
from scanner.model import Envelope
from scanner.rulecache import load_ruleset
from scanner.scan import scan
from tests.extract.factories import make_message

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "documents"
TODAY = dt.date(2026, 11, 26)


def _words(rng: random.Random, n: int) -> list[str]:
    vocab = ["売上", "見積", "契約", "会議", "資料", "確認", "予定", "report", "budget", "plan",
             "meeting", "forecast", "customer", "review", "ファイル", "送付", "お願い", "よろしく"]
    return [rng.choice(vocab) + str(rng.randint(0, 999)) for _ in range(n)]


def make_docx(target_bytes: int, rng: random.Random) -> bytes:
    """A real OOXML word document of about ``target_bytes`` (random words do not compress)."""
    paras: list[str] = []
    size = 0
    while size < target_bytes * 3:
        text = " ".join(_words(rng, 30))
        paras.append(f"<w:p><w:r><w:t>{escape(text)}</w:t></w:r></w:p>")
        size += len(paras[-1])
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f"<w:body>{''.join(paras)}</w:body></w:document>")
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
             '.org/package/2006/content-types"><Override PartName="/word/document.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
             'document.main+xml"/></Types>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("word/document.xml", doc)
    return buf.getvalue()


def make_xlsx(target_bytes: int, rng: random.Random) -> bytes:
    """A real OOXML workbook (shared strings + numbers) of about ``target_bytes``."""
    strings = _words(rng, max(100, target_bytes // 10))
    rows = []
    for r in range(len(strings) // 4):
        cells = "".join(
            f'<c r="{col}{r + 1}" t="s"><v>{r * 4 + i}</v></c>' for i, col in enumerate("ABCD")
        )
        rows.append(f'<row r="{r + 1}">{cells}<c r="E{r + 1}"><v>{rng.random()}</v></c></row>')
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet = f'<worksheet xmlns="{ns}"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    sst = (f'<sst xmlns="{ns}" count="{len(strings)}">'
           + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")
    wb = (f'<workbook xmlns="{ns}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
          '2006/relationships"><sheets><sheet name="S1" sheetId="1" r:id="rId1"/></sheets>'
          "</workbook>")
    rels = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
             f'.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" '
             f'ContentType="{ct}.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
             f'ContentType="{ct}.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" '
             f'ContentType="{ct}.sharedStrings+xml"/></Types>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("xl/workbook.xml", wb)
        zf.writestr("xl/_rels/workbook.xml.rels", rels)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
        zf.writestr("xl/sharedStrings.xml", sst)
    return buf.getvalue()


def make_rules_yaml(terms: list[str], per_rule: int = 10) -> bytes:
    lines = ["version: 1", "settings:", "  internal_domains: [example.co.jp]", "rules:"]
    for r in range(0, len(terms), per_rule):
        chunk = terms[r:r + per_rule]
        quoted = ", ".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in chunk)
        lines += [f"  - id: r{r // per_rule}", f"    terms: [{quoted}]",
                  "    allow: {domains: [acme.example]}", "    action: hold"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def _timed(fn: Callable[[], object], runs: int, seconds: float) -> list[float]:
    """Durations of up to ``runs`` calls, stopping early after ``seconds``."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if time.monotonic() > deadline:
            break
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120.0, help="time bound per loop")
    args = parser.parse_args()
    rng = random.Random(5)
    terms = make_terms(args.terms)
    rules = make_rules_yaml(terms)
    body = "\n".join(" ".join(_words(rng, 12)) for _ in range(60_000 // 100))
    body += "\n本件は " + terms[1] + " に関するものです。\n"
    docx = make_docx(200_000, rng)
    xlsx = make_xlsx(100_000, rng)
    pdf = (CORPUS / "pdftools_chinese.pdf").read_bytes()
    raw = make_message(body=body, to="buyer@other.example", attachments=(
        ("plan.docx", docx, "application/octet-stream"),
        ("report.pdf", pdf, "application/pdf"),
        ("prices.xlsx", xlsx, "application/octet-stream"),
    ))
    print(f"# message {len(raw) / 1024:.0f} KB (body {len(body.encode()) / 1024:.0f} KB, docx "
          f"{len(docx) / 1024:.0f} KB, pdf {len(pdf) / 1024:.0f} KB, xlsx {len(xlsx) / 1024:.0f}"
          f" KB); {len(terms):,} terms in {len(terms) // 10:,} rules; engines "
          f"{', '.join(available_engines())}")

    print("\n| ruleset | engine | time | RSS Δ |\n|---|---|---:|---:|")
    rulesets = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        for engine in available_engines():
            before = _rss_mb()
            start = time.perf_counter()
            rulesets[engine] = load_ruleset(rules, "bench.yaml", today=TODAY, cache_dir=cache,
                                            engine=engine)
            cold = time.perf_counter() - start
            print(f"| cold compile (parse + normalize + automaton) | {engine} | {cold:.2f} s | "
                  f"{_rss_mb() - before:.0f} MB |")
            loads = []
            for _ in range(5):
                start = time.perf_counter()
                loaded = load_ruleset(rules, "bench.yaml", today=TODAY, cache_dir=cache,
                                      engine=engine)
                loads.append(time.perf_counter() - start)
                # Freeing the previous copy (300k objects) is not part of loading one.
                del loaded
            print(f"| load from compiled-ruleset cache (median of 5) | {engine} | "
                  f"{statistics.median(loads) * 1000:.0f} ms | – |")

    envelope = Envelope("tanaka@example.co.jp", ("buyer@other.example",))
    limits = Limits()
    # The same shape with real office files from the shared corpus (which, like most real
    # documents, carry far less text per byte than the synthetic ones above).
    real = make_message(body=body, to="buyer@other.example", attachments=(
        ("raw.docx", (CORPUS / "textract_docx_raw_text.docx").read_bytes(), "application/x"),
        ("report.pdf", pdf, "application/pdf"),
        ("tax.xlsx", (CORPUS / "poi_AverageTaxRates.xlsx").read_bytes(), "application/x"),
        ("data.xlsx", (CORPUS / "textract_xlsx_raw_text.xlsx").read_bytes(), "application/x"),
    ))
    print("\n| message | pipeline | engine | p50 | p99 | runs |\n|---|---|---|---:|---:|---:|")
    for label, message in (("synthetic, text-dense", raw), ("corpus documents", real)):
        base = _timed(lambda m=message: extract_message(m, limits), args.runs, args.seconds)
        print(f"| {label} ({len(message) // 1024} KB) | baseline: extraction only | – | "
              f"{pct(base, 0.5) * 1000:.1f} ms | {pct(base, 0.99) * 1000:.1f} ms | {len(base)} |")
        for engine, ruleset in rulesets.items():
            verdict = scan(message, envelope, ruleset, limits, clock=time.monotonic)
            if not verdict.hits:
                raise SystemExit("the planted term was not found: the benchmark is invalid")
            times = _timed(
                lambda m=message, r=ruleset: scan(m, envelope, r, limits, clock=time.monotonic),
                args.runs,
                args.seconds,
            )
            print(f"| {label} | scan() end to end | {engine} | {pct(times, 0.5) * 1000:.1f} ms"
                  f" | {pct(times, 0.99) * 1000:.1f} ms | {len(times)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
