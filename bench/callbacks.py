"""Callback delivery benchmark: ``room:expired`` events from one ``meetd serve`` process to a
loopback receiver answering 204.

Run from the repository root with the project's venv python::

    python -m bench.callbacks                      # SQLite in a temp dir, 3 rounds
    python -m bench.callbacks --database-url postgresql://127.0.0.1:5432/meetd_bench
    python -m bench.callbacks --events 2000 --rate 1000 --seconds 2 --rounds 1   # a quick look

Where the events come from: rooms that expire. The harness bulk-inserts rooms
(``meetd.store.seed``) and sets their ``expires_at`` with one UPDATE, and the server's own
sweeper expires them and records their events in the same transaction, then wakes the
delivery worker in-process — the path every ``room:expired`` takes in production. Nothing
else loads the server while it delivers: creating or deleting rooms over HTTP would need a
load generator on the same two cores, and emitting rows from outside would add the worker's
0.5 s poll to every latency. An event's commit time is its ``created_at`` (the sweep's
clock); its receipt time is the receiver's clock on arrival; both are this machine's clock.

Each round has three phases:

- **burst**: ``--events`` rooms expire at the same instant. Deliveries/s = events / (last
  receipt - first commit): what one process sustains with a backlog, its sweeper included.
- **outbox**: ``--events`` events committed into the outbox by the harness in one
  transaction (with the store function the sweeper calls), for rooms that do not exist:
  the delivery worker alone, without the sweeper's work. The worker finds them at its next
  poll (0.5 s at most); "rcpt/s" (events / receipt span) leaves that wait out.
- **steady**: rooms expire one after another at ``--rate`` per second for ``--seconds``.
  Commit-to-receipt latency p50/p99 at that rate.

The receiver is a separate process (a bare asyncio HTTP/1.1 server on uvloop, recording the
arrival time and ``X-Meetd-Event-Id`` of each request), so its CPU is not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

from bench.run import (
    REPO_ROOT,
    Processes,
    child_env,
    create_account,
    free_port,
    log,
    meetd_command,
    run_harness,
    storage_flags,
    wait_for_http,
)
from bench.wrk import BenchError, http_request

PHASES = ("burst", "outbox", "steady")
TARGET_RATE = 2000.0  # deliveries/s from one process (issue 4)
TARGET_P99_MS = 1000.0  # commit to receipt, at that rate
HOOK_PATH = "/hook"


# --------------------------------------------------------------------------------------------
# The receiver (its own process: python -m bench.callbacks --receiver PORT)


# (arrival time in ns, X-Meetd-Event-Id) of every POST since the last /_reset
RECORDS: list[tuple[int, str]] = []


class _Hook(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, only as much as meetd's sender and this harness use: a POST
    is recorded and answered 204; ``GET /_count``, ``/_records`` and ``/_reset`` report."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            lower = head.lower()
            length = int(_header(head, lower, b"content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"POST "):
                event_id = _header(head, lower, b"x-meetd-event-id") or b""
                RECORDS.append((time.time_ns(), event_id.decode()))
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                self._report(head.split(b" ", 2)[1])

    def _report(self, path: bytes) -> None:
        body: Any
        if path == b"/_records":
            body = RECORDS
        elif path == b"/_reset":
            RECORDS.clear()
            body = {"requests": 0}
        else:
            body = {"requests": len(RECORDS)}
        payload = json.dumps(body).encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )


def _header(head: bytes, lower: bytes, name: bytes) -> bytes | None:
    start = lower.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = lower.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def serve_receiver(port: int) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Hook, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# Set-up


class Setup:
    """The receiver, an account whose application sends rooms events to it, and meetd."""

    def __init__(self, args: argparse.Namespace, procs: Processes, workdir: Path) -> None:
        self.args = args
        data_dir = workdir / "data"
        data_dir.mkdir()
        self.database_url = args.database_url or f"sqlite:///{data_dir}/meetd.sqlite3"
        env = child_env()

        port = free_port()
        self.receiver = f"http://127.0.0.1:{port}"
        receiver_log = workdir / "receiver.log"
        argv = [sys.executable, "-m", "bench.callbacks", "--receiver", str(port)]
        proc = procs.start("receiver", argv, receiver_log, env)
        wait_for_http(f"{self.receiver}/_count", proc, receiver_log, args.startup_timeout)

        log("creating an account ...")
        account = create_account(data_dir, args.database_url, "bench-callbacks")
        self.application_id = account["application_id"]
        update = [*meetd_command(), "applications", "update", self.application_id]
        update += ["--rooms-callback-url", f"{self.receiver}{HOOK_PATH}", "--json"]
        update += storage_flags(data_dir, self.database_url)
        subprocess.run(update, cwd=REPO_ROOT, env=env, check=True, capture_output=True)

        meetd_port = free_port()
        self.meetd_log = workdir / "meetd.log"
        serve = [*meetd_command(), "serve", "--host", "127.0.0.1", "--port", str(meetd_port)]
        serve += storage_flags(data_dir, self.database_url)
        serve += ["--log-level", "warning", *args.serve_args]
        self.meetd = procs.start("meetd", serve, self.meetd_log, env)
        url = f"http://127.0.0.1:{meetd_port}"
        wait_for_http(f"{url}/healthz", self.meetd, self.meetd_log, args.startup_timeout)
        log(f"meetd up on {url} (pid {self.meetd.pid}, log: {self.meetd_log})")

    def receiver_get(self, path: str) -> Any:
        status, body = http_request("GET", f"{self.receiver}{path}", timeout=30)
        if status != 200:
            raise BenchError(f"receiver {path} answered {status}")
        return json.loads(body)


# --------------------------------------------------------------------------------------------
# Rounds


def schedule_rooms(setup: Setup, count: int, rate: float | None) -> int:
    """Seed ``count`` rooms and make them expire 1.5 s from now: all at once (``rate`` None)
    or one every ``1 / rate`` seconds. Returns the serial the new rooms come after."""
    from meetd.store.database import open_database
    from meetd.store.seed import seed_rooms

    database = open_database(setup.database_url)
    try:
        (last,) = database.read_blocking(
            lambda c: c.fetchone("SELECT COALESCE(MAX(serial), 0) FROM rooms")
        )
        seed_rooms(setup.database_url, setup.application_id, count)
        start = time.time_ns() // 1_000_000 + 1500
        # Serials of one seeding are consecutive: spacing by serial spaces by position.
        spacing = "0" if rate is None else f"(serial - {last + 1}) * 1000000 / {int(rate * 1000)}"
        database.write_blocking(
            lambda c: c.execute(
                f"UPDATE rooms SET expires_at = {start} + {spacing}"
                " WHERE application_id = ? AND serial > ? AND is_available",
                (setup.application_id, last),
            )
        )
    finally:
        database.close()
    return int(last)


def collect(setup: Setup, count: int, timeout: float) -> list[tuple[int, str]]:
    """Wait until ``count`` requests arrived (or ``timeout``), then fetch their records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if setup.meetd.poll() is not None:
            raise BenchError(f"meetd exited with {setup.meetd.returncode}; see {setup.meetd_log}")
        if setup.receiver_get("/_count")["requests"] >= count:
            break
        time.sleep(0.2)
    records = [(int(ns), str(event_id)) for ns, event_id in setup.receiver_get("/_records")]
    setup.receiver_get("/_reset")
    return records


def commit_times(setup: Setup, after_serial: int) -> dict[str, tuple[int, int]]:
    """Event id -> (created_at, expires_at of its room) for the rooms after ``after_serial``."""
    from meetd.store.database import open_database

    database = open_database(setup.database_url)
    try:
        rows = database.read_blocking(
            lambda c: c.fetchall(
                "SELECT e.id, e.created_at, r.expires_at FROM events e"
                " JOIN rooms r ON r.id = e.room_id"
                " WHERE e.application_id = ? AND r.serial > ?",
                (setup.application_id, after_serial),
            )
        )
    finally:
        database.close()
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def emit_events(setup: Setup, count: int) -> dict[str, tuple[int, int]]:
    """Write ``count`` ``room:expired`` events straight into the outbox in one transaction,
    through the function the sweeper uses; the server's worker finds them at its next poll.
    Returns event id -> (commit time, commit time): the moment the transaction committed."""
    from meetd.domain.events import room_expired
    from meetd.store import events as outbox
    from meetd.store.database import Connection, open_database

    def emit(conn: Connection) -> list[str]:
        now = time.time_ns() // 1_000_000
        ids = []
        for _ in range(count):
            room_id = str(uuid.uuid4())
            event = room_expired(room_id, "long_term", expires_at=now, created_at=now - 60_000)
            record = outbox.emit_event(
                conn,
                application_id=setup.application_id,
                room_id=room_id,
                event=event,
                metadata=None,
                now_ms=now,
            )
            ids.append(record.id)
        return ids

    database = open_database(setup.database_url)
    try:
        ids = database.write_blocking(emit)
    finally:
        database.close()
    committed = time.time_ns() // 1_000_000
    return dict.fromkeys(ids, (committed, committed))


def measure(setup: Setup, phase: str, count: int, rate: float | None) -> dict[str, Any]:
    """One phase: ``burst`` and ``steady`` expire rooms (all at once, or at ``rate``);
    ``outbox`` commits events directly."""
    if phase == "outbox":
        commits = emit_events(setup, count)
        records = collect(setup, count, timeout=60 + count / 200)
    else:
        after = schedule_rooms(setup, count, rate)
        span = 0.0 if rate is None else count / rate
        records = collect(setup, count, timeout=60 + span + count / 200)
        commits = commit_times(setup, after)
    if not commits or not records:
        raise BenchError(f"{phase}: {len(commits)} events recorded, {len(records)} received")
    first: dict[str, int] = {}
    for ns, event_id in records:
        first.setdefault(event_id, ns)
    missing = set(commits) - set(first)
    if missing:
        log(f"WARNING: {len(missing)} of {len(commits)} events did not arrive in time")
    latencies = [(first[i] / 1e6 - commits[i][0]) for i in first if i in commits]
    lags = [float(created - due) for created, due in commits.values()]
    first_commit = min(created for created, _ in commits.values())
    last_commit = max(created for created, _ in commits.values())
    last_receipt = max(first.values()) / 1e6
    first_receipt = min(first.values()) / 1e6
    result = {
        "phase": phase,
        "events": len(commits),
        "arrived": len(first),
        "duplicates": len(records) - len(first),
        "deliveries_per_s": len(first) / max(0.001, (last_receipt - first_commit) / 1000),
        "receipts_per_s": len(first) / max(0.001, (last_receipt - first_receipt) / 1000),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "commit_span_ms": last_commit - first_commit,
        "first_receipt_after_ms": first_receipt - first_commit,
        "receipt_span_ms": last_receipt - first_receipt,
        "sweeper_lag_p99_ms": percentile(lags, 0.99),
    }
    log(
        f"{phase:<6} {result['arrived']:>6}/{result['events']} events "
        f"{result['deliveries_per_s']:>6.0f} deliveries/s  p50 {result['p50_ms']:6.0f} ms  "
        f"p99 {result['p99_ms']:6.0f} ms  (commits over {result['commit_span_ms']:.0f} ms, "
        f"first receipt after {result['first_receipt_after_ms']:.0f} ms, "
        f"receipts over {result['receipt_span_ms']:.0f} ms)"
    )
    return result


def summarize(args: argparse.Namespace, rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    for phase in PHASES:
        runs = [run for round_ in rounds for run in round_ if run["phase"] == phase]
        keys = [k for k in runs[0] if k != "phase"]
        phases[phase] = {
            "median": {k: statistics.median(run[k] for run in runs) for k in keys},
            "runs": runs,
        }
    burst, steady = phases["burst"]["median"], phases["steady"]["median"]
    targets = [
        {
            "target": "deliveries/s from one process (burst)",
            "value": burst["deliveries_per_s"],
            "goal": f">= {TARGET_RATE:g}",
            "result": "PASS" if burst["deliveries_per_s"] >= TARGET_RATE else "MISS",
        },
        {
            "target": f"p99 commit-to-receipt at {args.rate:g}/s (ms)",
            "value": steady["p99_ms"],
            "goal": f"< {TARGET_P99_MS:g}",
            "result": "MISS"
            if steady["p99_ms"] >= TARGET_P99_MS
            else ("PASS" if args.rate >= TARGET_RATE else "N/A"),  # N/A: a rate below 2000/s
        },
    ]
    database = args.database_url or "sqlite"
    return {
        "config": {
            "events": args.events,
            "rate": args.rate,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "database": "postgresql" if database.startswith("postgres") else "sqlite",
            "cpus": os.cpu_count(),
        },
        "phases": phases,
        "targets": targets,
    }


def print_table(summary: dict[str, Any]) -> None:
    cfg = summary["config"]
    print(
        f"\nmeetd callbacks: {cfg['rounds']} round(s), burst {cfg['events']} events, steady "
        f"{cfg['rate']:g}/s for {cfg['seconds']:g} s, database={cfg['database']}, "
        f"{cfg['cpus']} CPUs (medians over the rounds)"
    )
    header = (
        f"{'phase':<7} {'events':>7} {'deliv/s':>8} {'rcpt/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'commits ms':>10} {'1st rcpt ms':>11} {'dups':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, phase in summary["phases"].items():
        m = phase["median"]
        print(
            f"{name:<7} {m['events']:>7.0f} {m['deliveries_per_s']:>8.0f}"
            f" {m['receipts_per_s']:>7.0f} {m['p50_ms']:>7.0f} {m['p99_ms']:>7.0f}"
            f" {m['max_ms']:>7.0f} {m['commit_span_ms']:>10.0f}"
            f" {m['first_receipt_after_ms']:>11.0f} {m['duplicates']:>5.0f}"
        )
    print("\ntargets")
    for t in summary["targets"]:
        print(f"  {t['result']:<4}  {t['target']:<44} {t['value']:>8.0f}  goal {t['goal']}")


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.callbacks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=10_000, help="burst size (default 10000)")
    parser.add_argument(
        "--rate", type=float, default=TARGET_RATE, help="steady events/s (default 2000)"
    )
    parser.add_argument("--seconds", type=float, default=5, help="steady phase length (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians reported (3)")
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql://127.0.0.1:5432/meetd_bench (a scratch database: each run adds "
        "rooms and events); default: SQLite in a temp dir",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    parser.add_argument("--startup-timeout", type=float, default=60)
    # Extra `meetd serve` arguments, e.g. --serve-arg=--loop --serve-arg=asyncio.
    parser.add_argument("--serve-arg", dest="serve_args", action="append", default=[])
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 1 or args.rate <= 0 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--events, --rate, --seconds and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.receiver is not None:
        serve_receiver(args.receiver)
        return 0

    def measure_all(procs: Processes, workdir: Path) -> dict[str, Any]:
        setup = Setup(args, procs, workdir)
        rounds = []
        for number in range(1, args.rounds + 1):
            log(f"round {number}/{args.rounds}")
            steady = round(args.rate * args.seconds)
            rounds.append(
                [
                    measure(setup, "burst", args.events, None),
                    measure(setup, "outbox", args.events, None),
                    measure(setup, "steady", steady, args.rate),
                ]
            )
        return summarize(args, rounds)

    return run_harness(args, "meetd-bench-callbacks-", measure_all, print_table)


if __name__ == "__main__":
    sys.exit(main())
