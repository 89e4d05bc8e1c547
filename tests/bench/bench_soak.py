"""Relay soak: memory over a long bounded run, and a 100k-term hot reload under load.

    .venv/bin/python -m tests.bench.bench_soak [--messages 100000] [--seconds 900]

Starts ``maruhi serve`` (10k-term ruleset, Postfix's ``smtp-sink`` upstream when installed) and
sends 10 KB messages from 20 concurrent aiosmtplib sessions until ``--messages`` are sent or
``--seconds`` have passed, whichever comes first. Halfway through, the rules file is replaced by
a 100k-term ruleset (hot reload while the load runs). Reports the RSS of the daemon and its
scanner workers at intervals, every failed transaction (anything but 250), and when the reload
went live. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

from tests.bench.bench_relay import (
    PY,
    REPO,
    SESSIONS,
    Proc,
    free_port,
    make_message,
    make_rules,
    start_upstream,
)


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` and its children (the scanner workers), in KiB."""
    total = 0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def soak(port: int, raw: bytes, messages: int, seconds: float, pid: int,
               on_half: callable) -> tuple[int, int, list[tuple[int, float, int]], float]:  # type: ignore[valid-type]
    sent = 0
    failed = 0
    samples: list[tuple[int, float, int]] = []
    start = time.monotonic()
    deadline = start + seconds
    half_done = False
    step = max(1, messages // 20)

    async def session() -> None:
        nonlocal sent, failed, half_done
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                 local_hostname="bench.example", timeout=60)
        await client.connect()
        while sent < messages and time.monotonic() < deadline:
            sent += 1
            n = sent
            try:
                _errors, reply = await client.sendmail("sender@bench.example",
                                                       ["rcpt@partner.example"], raw)
                if not reply.startswith("2"):
                    failed += 1
            except aiosmtplib.SMTPException:
                failed += 1
                client.close()
                await client.connect()
            if n % step == 0:
                samples.append((n, time.monotonic() - start, rss_kb(pid)))
            if not half_done and n >= messages // 2:
                half_done = True
                on_half()
        await client.quit()

    await asyncio.gather(*(session() for _ in range(SESSIONS)))
    return sent, failed, samples, time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=900.0)
    ap.add_argument("--reload-terms", type=int, default=100_000)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="maruhi-soak-"))
    rules = tmp / "rules.yaml"
    make_rules(rules)
    big = tmp / "big.yaml"
    make_rules(big, args.reload_terms)
    log = tmp / "serve.log"
    upstream, up_port, up_name = start_upstream()
    port = free_port()
    env = dict(os.environ, MARUHI_UPSTREAM_TLS="none")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [PY, "-m", "scanner.cli.main", "serve", "--rules", str(rules), "--data-dir",
             str(tmp / "data"), "--listen", f"127.0.0.1:{port}", "--upstream",
             f"127.0.0.1:{up_port}", "--metrics", "off", "--no-web"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    server = Proc.__new__(Proc)
    server.p = proc
    reload_at: list[float] = []

    def on_half() -> None:
        reload_at.append(time.monotonic())
        shutil.copyfile(big, tmp / "next.yaml")
        os.replace(tmp / "next.yaml", rules)  # atomic, as an editor or deploy tool would

    try:
        from tests.bench.bench_relay import wait_port

        wait_port(port)
        raw = make_message("10k")
        sent, failed, samples, elapsed = asyncio.run(
            soak(port, raw, args.messages, args.seconds, proc.pid, on_half))
        # The reload may finish after the load: wait (bounded) for its log line.
        deadline = time.monotonic() + 300
        reloaded: dict[str, object] | None = None
        while reloaded is None and reload_at and time.monotonic() < deadline:
            for line in log.read_text().splitlines():
                if '"rules.reloaded"' in line:
                    reloaded = json.loads(line)
            if reloaded is None:
                time.sleep(1)
        reload_failed = [ln for ln in log.read_text().splitlines() if "reload_failed" in ln]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        upstream.stop()

    print(f"\nSoak: {sent} messages of 10 KB in {elapsed:.0f} s ({sent / elapsed:.0f} msg/s), "
          f"aiosmtplib x{SESSIONS}, upstream {up_name}, CPUs {os.cpu_count()}; "
          f"bounds: {args.messages} messages or {args.seconds:.0f} s\n")
    print("| messages | seconds | RSS daemon + workers (MiB) |")
    print("|---:|---:|---:|")
    for n, t, kb in samples:
        print(f"| {n} | {t:.0f} | {kb / 1024:.0f} |")
    print()
    print(f"failed transactions: {failed}")
    if reload_at and reloaded is not None:
        ts = reloaded.get("timestamp", "")
        print(f"hot reload to {args.reload_terms} terms: went live ({reloaded.get('version')}, "
              f"{ts}); reload failures logged: {len(reload_failed)}")
    else:
        print(f"hot reload to {args.reload_terms} terms: NOT seen in the log")
    if len(samples) >= 8:
        # Flat = no growth while the ruleset stays the same (the 100k-term one is bigger).
        q = len(samples) // 4
        for label, a, b in (("10k terms, 25% -> 50%", samples[q - 1], samples[2 * q - 2]),
                            ("100k terms, 75% -> end", samples[3 * q - 1], samples[-1])):
            print(f"RSS growth {label}: {(b[2] - a[2]) / 1024:+.0f} MiB "
                  f"({(b[2] - a[2]) / a[2] * 100:+.1f}%)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
