"""Benchmark: normalization + multi-pattern matching over mixed Japanese/English mail text.

Owns the seeded corpus/term generators and the comparison the README quotes: the baseline is
plain pyahocorasick ``iter()`` over the already-normalized ``str``; "ours" is
``normalize(text)`` + ``build_matcher(terms).find()`` end to end, per available engine, at two
term-set sizes, reported as medians of ``--repeat`` runs. Must not be imported by the package or
the test suite (it is a script); hazard: keep every loop bounded so the run stays under ~5 min.

    .venv/bin/python tests/bench/bench_match.py [--size-mb 10] [--terms 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ahocorasick

from scanner.match.engine import available_engines, build_matcher
from scanner.normalize import normalize, normalize_term

# A fixed pool of common kanji and the kana blocks, so that text and terms share vocabulary and
# the automaton walks deep into the trie as it would on real mail.
_KANJI = [chr(c) for c in range(0x4E00, 0x4E00 + 2500, 1)]
_HIRAGANA = [chr(c) for c in range(0x3041, 0x3094)]
_KATAKANA = [chr(c) for c in range(0x30A1, 0x30F5)] + ["ー"]
_JA_PUNCT = ["、", "。", "「", "」", "・"]
_LATIN_SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + [
    "fal",
    "con",
    "pro",
    "ject",
    "tion",
    "ex",
]

# NFKC-dirty forms: fullwidth ASCII (U+FF01..U+FF5E) and halfwidth katakana.
_HALFWIDTH_KATA = [chr(c) for c in range(0xFF66, 0xFF9E)]


def _ja_word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return "".join(rng.choice(_KATAKANA) for _ in range(rng.randint(2, 6)))
    if kind < 0.8:
        return "".join(rng.choice(_KANJI) for _ in range(rng.randint(1, 3)))
    return "".join(rng.choice(_HIRAGANA) for _ in range(rng.randint(1, 4)))


# A fixed English-like lexicon: real text and real terms are made of a vocabulary, so a phrase
# rarely occurs inside a longer word (random syllable soup would make that the common case).
_LEX_RNG = random.Random(3)
_LEXICON = sorted(
    {"".join(_LEX_RNG.choice(_LATIN_SYLLABLES) for _ in range(2 + i % 3)) for i in range(6000)}
)


def _en_word(rng: random.Random) -> str:
    return rng.choice(_LEXICON)


def make_terms(count: int, seed: int = 7) -> list[str]:
    """Distinct terms: half Japanese of 3-10 chars, half English phrases of 2-3 words."""
    rng = random.Random(seed)
    terms: dict[str, None] = {}
    while len(terms) < count:  # bounded: the term space is far larger than any count used
        if len(terms) % 2 == 0:
            # Random characters of the text's own pools: deep trie walks, but (as with real
            # secrets) a chance occurrence in ordinary text is rare.
            pool = _KATAKANA if rng.random() < 0.5 else _KANJI
            terms["".join(rng.choice(pool) for _ in range(rng.randint(3, 10)))] = None
        else:
            terms[" ".join(_en_word(rng) for _ in range(rng.randint(2, 3)))] = None
    return list(terms)


def _dirty(line: str, rng: random.Random) -> str:
    """Make ``line`` need NFKC or casefolding in one of the ways real mail does."""
    kind = rng.randrange(4)
    if kind == 0:  # fullwidth digits and parentheses, as in Japanese business mail
        return line + "（" + "".join(chr(0xFF10 + rng.randrange(10)) for _ in range(4)) + "）"
    if kind == 1:  # halfwidth katakana with voiced marks
        return (
            "".join(
                rng.choice(_HALFWIDTH_KATA) + ("ﾞ" if rng.random() < 0.3 else "")
                for _ in range(rng.randint(3, 8))
            )
            + line
        )
    if kind == 2:  # capitalised English
        return line[:1].upper() + line[1:].replace(" pro", " Pro")
    return line + " ＡＢＣ株式会社"


def make_text(size_mb: float, terms: Sequence[str], seed: int = 11) -> str:
    """Seeded mixed JA/EN text of ~``size_mb`` UTF-8 megabytes; ~13% of lines need NFKC."""
    rng = random.Random(seed)
    target = int(size_mb * 1_000_000)
    lines: list[str] = []
    size = 0
    while size < target:
        if rng.random() < 0.5:
            # Japanese wrapped at ~35 chars: the wrap must be joined by normalization.
            parts: list[str] = []
            while sum(map(len, parts)) < 35:
                parts.append(_ja_word(rng))
                if rng.random() < 0.2:
                    parts.append(rng.choice(_JA_PUNCT))
            line = "".join(parts)
        else:
            line = " ".join(_en_word(rng) for _ in range(rng.randint(8, 14)))
        if rng.random() < 0.02:  # plant a term now and then so that there are hits
            line += rng.choice(terms) + " "
        if rng.random() < 0.15:  # plus the lines whose planted term is dirty: ~13% in all
            line = _dirty(line, rng)
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines) + "\n"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times: list[float] = []
    result: object = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _baseline_automaton(terms: Sequence[str]) -> ahocorasick.Automaton:
    auto = ahocorasick.Automaton()
    for i, term in enumerate(terms):
        auto.add_word(term, i)
    auto.make_automaton()
    return auto


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--terms", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default=",".join(available_engines()))
    args = parser.parse_args(argv)

    all_terms = [normalize_term(t) for t in make_terms(args.terms)]
    text = make_text(args.size_mb, all_terms)
    mb = len(text.encode()) / 1e6
    t0 = time.perf_counter()
    norm = normalize(text)
    changed = sum(1 for line in text.splitlines() if normalize_term(line) != line.strip())
    print(
        f"# corpus: {mb:.1f} MB UTF-8, {len(text.splitlines())} lines, "
        f"{100 * changed / len(text.splitlines()):.1f}% need NFKC/casefold "
        f"(prep {time.perf_counter() - t0:.1f}s); cpu: {os.cpu_count()} cores; "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    pre = norm.text
    engines = [e for e in args.engines.split(",") if e]

    rows: list[str] = []
    norm_t, _ = _median_time(lambda: normalize(text), args.repeat)
    print(f"# normalize() alone: {norm_t * 1000:.0f} ms = {mb / norm_t:.0f} MB/s", flush=True)
    for n_terms in (args.terms, args.terms // 10):
        terms = all_terms[:n_terms]
        base_auto = _baseline_automaton(terms)
        base_t, base_hits = _median_time(
            lambda a=base_auto: sum(1 for _ in a.iter(pre)), args.repeat
        )
        del base_auto
        rows.append(
            f"| {n_terms:,} | baseline: pyahocorasick `iter()` on normalized str | "
            f"{mb / base_t:.1f} | 1.0× | {mb / base_t:.0f} | – | – |"
        )
        print(rows[-1], f"raw hits (no boundary rule)={base_hits}", flush=True)
        for engine in engines:
            gc.collect()
            rss0 = _rss_bytes()
            b0 = time.perf_counter()
            matcher = build_matcher(terms, engine)
            build_s = time.perf_counter() - b0
            rss_mb = (_rss_bytes() - rss0) / 1e6
            build_cell = f"{build_s:.2f} s"
            serialize = getattr(matcher, "serialize", None)
            if serialize is not None:  # a cached compiled database instead of a build
                blob = serialize()
                l0 = time.perf_counter()
                type(matcher).load(terms, blob)  # type: ignore[attr-defined]
                build_cell += f" (load {time.perf_counter() - l0:.2f} s)"

            def run(m: object = matcher) -> int:
                return sum(1 for _ in m.find(normalize(text).text))  # type: ignore[attr-defined]

            ours_t, hits = _median_time(run, args.repeat)
            find_t, _ = _median_time(lambda m=matcher: sum(1 for _ in m.find(pre)), args.repeat)
            rows.append(
                f"| {n_terms:,} | {engine}: normalize + find | {mb / ours_t:.1f} | "
                f"{base_t / ours_t:.1f}× | {mb / find_t:.0f} | {build_cell} | {rss_mb:.0f} MB |"
            )
            print(rows[-1], f"boundary hits={hits}", flush=True)
            del matcher

    with open("/proc/loadavg") as fh:  # other work on the box skews every number above
        print(f"# load average at the end: {fh.read().split()[0]}")
    print()
    print(f"{mb:.0f} MB mixed JA/EN text, medians of {args.repeat} runs, same process:")
    print()
    print("| terms | pipeline | MB/s | vs baseline | find alone MB/s | build | build RSS Δ |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
