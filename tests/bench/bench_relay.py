"""Relay load benchmark: one command, bounded count and time, same-run baselines, markdown table.

    .venv/bin/python -m tests.bench.bench_relay [--quick] [--runs 3]

Servers, each in its own process on a loopback port, measured in interleaved rounds: (1) a
stock aiosmtpd server that discards, (2) a bare aiosmtpd relay with a pooled persistent
aiosmtplib upstream connection per worker session, (3) ``maruhi serve`` with a generated
10k-term ruleset. Upstream for both relays: Postfix's ``smtp-sink`` when installed, else an
aiosmtpd discard sink. Load: Postfix's ``smtp-source -s 20`` when installed (a new connection per
message, as in the issue's figures), else an aiosmtplib generator with 20 concurrent sessions.
Mail: 10 KB text and 1 MB (a 760 KB attachment). Reports msg/s medians and ratios, and the p99
latency Maruhi adds (aiosmtplib client, 20 sessions, per-message send time, ours minus bare
relay). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
SESSIONS = 20
REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


# -- test data ----------------------------------------------------------------------------------


def make_rules(path: Path, terms: int = 10_000) -> None:
    """A ruleset with ``terms`` distinct terms (100 rules), none of which the mail contains."""
    lines = ["version: 1", "settings:", "  internal_domains: [bench.example]",
             "  unscannable: flag", "rules:"]
    per_rule = 100
    for r in range(terms // per_rule):
        lines.append(f"  - id: bench-{r:03d}")
        lines.append("    action: hold")
        lines.append("    allow: {domains: [partner.example]}")
        quoted = ", ".join(f'"ZQX{r:03d}-{t:03d} Kestrel"' for t in range(per_rule))
        lines.append(f"    terms: [{quoted}]")
    path.write_text("\n".join(lines) + "\n")


def make_message(kind: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "sender@bench.example"
    msg["To"] = "rcpt@outside.example"
    msg["Subject"] = "Quarterly figures"
    msg["Message-ID"] = "<bench@bench.example>"
    line = "The quarterly numbers look fine and the meeting is on Thursday at ten.\n"
    if kind == "10k":
        msg.set_content(line * (10_000 // len(line)))
    else:
        msg.set_content(line * 40)
        blob = os.urandom(760 * 1024)
        msg.add_attachment(blob, maintype="application", subtype="octet-stream",
                           filename="figures.bin")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


# -- baseline servers (run with --serve) --------------------------------------------------------


def serve_discard(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="discard", data_size_limit=None, loop=loop),
            "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def serve_bare_relay(port: int, upstream_port: int) -> None:
    """aiosmtpd + a pool of persistent aiosmtplib connections; no scanning."""
    from aiosmtpd.smtp import SMTP, Envelope

    pool: list[aiosmtplib.SMTP] = []

    class Relay:
        async def handle_DATA(self, server: object, session: object, env: Envelope) -> str:
            client = pool.pop() if pool else None
            if client is None or not client.is_connected:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=upstream_port,
                                         start_tls=False, local_hostname="bare")
                await client.connect()
            try:
                assert isinstance(env.original_content, bytes)
                await client.sendmail(str(env.mail_from), env.rcpt_tos, env.original_content)
            except aiosmtplib.SMTPException as exc:
                client.close()
                return f"451 4.4.1 upstream {type(exc).__name__}"
            pool.append(client)
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Relay(), hostname="bare", data_size_limit=None, loop=loop),
            "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- load generators ----------------------------------------------------------------------------


def load_smtp_source(port: int, eml: Path, count: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(count), "-F", str(eml),
         "-f", "sender@bench.example", "-t", "rcpt@partner.example", "-M", "bench.example",
         f"127.0.0.1:{port}"],
        check=True, timeout=600, stdout=subprocess.DEVNULL)
    return count / (time.perf_counter() - start)


async def _aio_load(port: int, raw: bytes, count: int) -> tuple[float, list[float]]:
    remaining = count
    latencies: list[float] = []
    failures = 0

    async def session() -> None:
        nonlocal remaining, failures
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                 local_hostname="bench.example", timeout=60)
        await client.connect()
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            try:
                await client.sendmail("sender@bench.example", ["rcpt@partner.example"], raw)
            except aiosmtplib.SMTPException:
                failures += 1
                continue
            latencies.append(time.perf_counter() - t0)
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(SESSIONS)))
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{failures} messages failed")
    return count / elapsed, latencies


def load_aio(port: int, raw: bytes, count: int) -> tuple[float, list[float]]:
    return asyncio.run(_aio_load(port, raw, count))


# -- orchestration ------------------------------------------------------------------------------


class Proc:
    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env, cwd=REPO, start_new_session=True)
        wait_port(port)

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def start_upstream() -> tuple[Proc, int, str]:
    port = free_port()
    if os.access(SMTP_SINK, os.X_OK):
        # As root smtp-sink must drop privileges (-u); the postfix package creates that user.
        user = ["-u", "postfix"] if os.geteuid() == 0 else []
        return (Proc([SMTP_SINK, *user, f"127.0.0.1:{port}", "256"], port), port,
                "smtp-sink")
    return (Proc([PY, "-m", "tests.bench.bench_relay", "--serve", "discard", str(port)], port),
            port, "aiosmtpd discard")


def start_server(name: str, upstream_port: int, rules: Path, data: Path) -> tuple[Proc, int]:
    port = free_port()
    if name == "discard":
        args = [PY, "-m", "tests.bench.bench_relay", "--serve", "discard", str(port)]
    elif name == "bare":
        args = [PY, "-m", "tests.bench.bench_relay", "--serve", "bare", str(port),
                str(upstream_port)]
    else:
        args = [PY, "-m", "scanner.cli.main", "serve", "--rules", str(rules), "--data-dir",
                str(data), "--listen", f"127.0.0.1:{port}", "--upstream",
                f"127.0.0.1:{upstream_port}", "--metrics", "off", "--no-web"]
    env = dict(os.environ, MARUHI_UPSTREAM_TLS="none")
    return Proc(args, port, env=env), port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer messages (smoke run)")
    ap.add_argument("--aio", action="store_true", help="force the aiosmtplib load generator")
    ap.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        if args.serve[0] == "discard":
            serve_discard(int(args.serve[1]))
        else:
            serve_bare_relay(int(args.serve[1]), int(args.serve[2]))
        return 0

    use_source = os.access(SMTP_SOURCE, os.X_OK) and not args.aio
    counts = {"10k": 300 if args.quick else 2000, "1m": 40 if args.quick else 200}
    tmp = Path(tempfile.mkdtemp(prefix="maruhi-bench-"))
    rules = tmp / "bench-rules.yaml"
    make_rules(rules)
    mails = {k: make_message(k) for k in counts}
    emls = {}
    for k, raw in mails.items():
        emls[k] = tmp / f"{k}.eml"
        emls[k].write_bytes(raw.replace(b"\r\n", b"\n"))  # smtp-source appends CRLF per line

    upstream, up_port, up_name = start_upstream()
    results: dict[tuple[str, str], list[float]] = {}
    latency: dict[str, list[float]] = {}
    servers = ("discard", "bare", "maruhi")
    procs: dict[str, tuple[Proc, int]] = {}
    try:
        for server in servers:
            procs[server] = start_server(server, up_port, rules, tmp / f"data-{server}")
        # Interleaved rounds: background load on a shared machine drifts, so every round
        # measures each server once, back to back, and the medians compare like with like.
        for kind, count in counts.items():
            for _ in range(args.runs):
                for server in servers:
                    port = procs[server][1]
                    if use_source:
                        rate = load_smtp_source(port, emls[kind], count)
                    else:
                        rate, _lat = load_aio(port, mails[kind], count)
                    results.setdefault((server, kind), []).append(rate)
        for server in ("bare", "maruhi"):
            _rate, lat = load_aio(procs[server][1], mails["10k"], counts["10k"])
            latency[server] = lat
    finally:
        for proc, _port in procs.values():
            proc.stop()
        upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items()}

    def p99(xs: list[float]) -> float:
        return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)] * 1000

    gen = "smtp-source -s 20" if use_source else "aiosmtplib, 20 sessions"
    print(f"\nLoad: {gen}; upstream: {up_name}; runs: {args.runs} (median); "
          f"messages per run: 10 KB x{counts['10k']}, 1 MB x{counts['1m']}; "
          f"CPUs: {os.cpu_count()}\n")
    print("| server | 10 KB msg/s | 1 MB msg/s |")
    print("|---|---:|---:|")
    names = {"discard": "stock aiosmtpd, discard", "bare": "bare aiosmtpd relay, pooled upstream",
             "maruhi": "maruhi serve, 10k terms"}
    for s, label in names.items():
        print(f"| {label} | {med[(s, '10k')]:.0f} | {med[(s, '1m')]:.1f} |")
    r10 = med[("maruhi", "10k")] / med[("bare", "10k")]
    r1m = med[("maruhi", "1m")] / med[("discard", "1m")]
    added = p99(latency["maruhi"]) - p99(latency["bare"])
    print()
    print("| target | measured | goal | met |")
    print("|---|---:|---:|:---:|")
    print(f"| 10 KB: maruhi / bare pooled relay | {r10:.2f}x | >= 0.7x | "
          f"{'yes' if r10 >= 0.7 else 'no'} |")
    print(f"| 1 MB: maruhi / stock discard sink | {r1m:.2f}x | >= 0.5x | "
          f"{'yes' if r1m >= 0.5 else 'no'} |")
    print(f"| p99 latency added (10 KB, aiosmtplib x20) | {added:.1f} ms "
          f"(bare {p99(latency['bare']):.1f}, maruhi {p99(latency['maruhi']):.1f}) | <= 50 ms | "
          f"{'yes' if added <= 50 else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
