"""Benchmark: the review app's hot pages and the check API, against the targets of issue 4.

Owns the set-up (100k held messages copied from one real hold by SQL, a 5 MB held message, a
10k-term rule version) and the timings, as medians of bounded loops through FastAPI's TestClient
(in-process ASGI: the app's own cost, no network). Targets: quarantine first page p50 ≤ 100 ms at
100k held; message view ≤ 200 ms for 5 MB; ``/api/v1/check`` p50 ≤ 20 ms for a 50 KB draft with
10k terms. A script, not a test: never imported by the package or the suite.

    .venv/bin/python tests/bench/bench_web.py [--rows 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import base64
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.web.factories import NOW, SECRET, make_env, make_raw, session_csrf


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (compiles, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _fill(data_dir: Path, template_id: str, rows: int) -> None:
    """Copy one held row ``rows`` times with distinct ids and times (bench set-up only)."""
    db = sqlite3.connect(data_dir / "maruhi.sqlite3")
    cols = [r[1] for r in db.execute("PRAGMA table_info(quarantine)")]
    other = [c for c in cols if c not in ("id", "received_at")]
    sel = ", ".join(other)
    batch = []
    for i in range(rows):
        at = (NOW - timedelta(seconds=i + 1)).isoformat(timespec="microseconds")
        batch.append((f"{i:026d}", at, template_id))
        if len(batch) == 10_000:
            db.executemany(f"INSERT INTO quarantine (id, received_at, {sel}) SELECT ?, ?, {sel}"
                           " FROM quarantine WHERE id = ?", batch)
            batch.clear()
    if batch:
        db.executemany(f"INSERT INTO quarantine (id, received_at, {sel}) SELECT ?, ?, {sel}"
                       " FROM quarantine WHERE id = ?", batch)
    db.commit()
    db.close()


def _terms_yaml(n: int) -> bytes:
    rng = random.Random(7)
    terms = [f"Term{rng.randrange(10**9):09d}-{i}" for i in range(n)]
    lines = ["version: 1", "settings:", "  internal_domains: [example.co.jp]", "rules:",
             "  - id: falcon", "    customer: ACME Corp", f'    terms: ["{SECRET}"]',
             "    allow: {domains: [acme.example]}", "    action: hold"]
    for start in range(0, n, 100):
        lines += [f"  - id: bulk{start}", "    terms: [" + ", ".join(
            f'"{t}"' for t in terms[start:start + 100]) + "]", "    action: flag"]
    return ("\n".join(lines) + "\n").encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp))
        first = env.hold()
        _fill(env.data_dir, first, args.rows)
        big_body = ("これは長い本文です。Lorem ipsum dolor sit amet. " * 120_000)[:5_000_000]
        big = env.hold(make_raw(body=big_body + f" {SECRET} end"))
        client = env.client("rev")

        results = {}
        results["quarantine first page (HTML, 50 rows)"] = (
            _median_ms(lambda: client.get("/quarantine").raise_for_status(), args.repeat), 100)
        results["quarantine first page (API, 50 rows)"] = (
            _median_ms(lambda: client.get("/api/v1/quarantine").raise_for_status(),
                       args.repeat), 100)
        cursor = client.get("/api/v1/quarantine").json()["next_cursor"]
        results["quarantine next page (API)"] = (_median_ms(lambda: client.get(
            f"/api/v1/quarantine?cursor={cursor}").raise_for_status(), args.repeat), 100)
        results["message view, 5 MB message"] = (_median_ms(
            lambda: client.get(f"/quarantine/{big}").raise_for_status(),
            max(3, args.repeat // 4)), 200)

        token = session_csrf(client)
        env.rules.create_version(_terms_yaml(10_000), "big.yaml", author="bench",
                                 reason="bench", now=NOW, activate=True)
        draft = ("見積もりの件でご連絡します。Please find the figures below. " * 1200)[:50_000]
        payload = {"sender": "tanaka@example.co.jp", "recipients": ["cfo@rival.example"],
                   "raw": base64.b64encode(make_raw(body=draft + SECRET)).decode()}
        headers = {"X-CSRF-Token": token}
        assert client.post("/api/v1/check", json=payload, headers=headers).json()[
            "verdict"] == "hold"
        results["/api/v1/check, 50 KB draft, 10k terms"] = (_median_ms(
            lambda: client.post("/api/v1/check", json=payload,
                                headers=headers).raise_for_status(), args.repeat), 20)

        print(f"{'what':45} {'p50 ms':>8} {'target':>8}")
        for name, (ms, target) in results.items():
            flag = "ok" if ms <= target else "SLOW"
            print(f"{name:45} {ms:8.1f} {target:8} {flag}")
        env.store.close()
        env.accounts.close()
        env.rules.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
