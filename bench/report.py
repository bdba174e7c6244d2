"""The report: medians over the rounds, ratios to hello, and PASS/MISS per target."""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from bench.wrk import Scenario

P99_LIMIT_MS = 20.0


def summarize(args: argparse.Namespace, scenarios: list[Scenario]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        rows[s.name] = {
            "description": s.description,
            "median_rps": statistics.median(r.requests_per_sec for r in s.runs),
            "median_p50_ms": statistics.median(r.p50_ms for r in s.runs),
            "median_p99_ms": statistics.median(r.p99_ms for r in s.runs),
            "non_2xx": sum(r.non_2xx for r in s.runs),
            "socket_errors": sum(sum(r.socket_errors.values()) for r in s.runs),
            "runs": [vars(r) for r in s.runs],
        }
    hello_rps = rows["hello"]["median_rps"]
    for row in rows.values():
        row["ratio_vs_hello"] = row["median_rps"] / hello_rps if hello_rps else None

    targets: list[dict[str, Any]] = []

    def target(name: str, value: float | None, goal: str, ok: bool | None, scenario: str) -> None:
        errors = (
            rows[scenario]["non_2xx"] + rows[scenario]["socket_errors"] if (scenario in rows) else 0
        )
        result = "N/A" if ok is None else ("PASS" if ok and not errors else "MISS")
        targets.append(
            {"target": name, "value": value, "goal": goal, "result": result, "errors": errors}
        )

    if "create" in rows:
        ratio = rows["create"]["ratio_vs_hello"]
        target("create req/s vs hello", ratio, ">= 0.25", ratio >= 0.25, "create")
    if "get" in rows:
        ratio = rows["get"]["ratio_vs_hello"]
        target("GET room req/s vs hello", ratio, ">= 0.40", ratio >= 0.40, "get")
    for name in ("create", "get", "list_1k", "list_big"):
        if name in rows:
            p99 = rows[name]["median_p99_ms"]
            target(f"{name} p99 (ms)", p99, f"< {P99_LIMIT_MS:g}", p99 < P99_LIMIT_MS, name)
    if "list_1k" in rows and "list_big" in rows:
        ratio = rows["list_big"]["median_rps"] / rows["list_1k"]["median_rps"]
        target(
            f"list({args.big_rooms:,}) / list({args.small_rooms:,}) req/s",
            ratio,
            "0.80..1.20",
            0.8 <= ratio <= 1.2,
            "list_big",
        )
    return {
        "config": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "warmup_s": args.warmup,
            "small_rooms": args.small_rooms,
            "big_rooms": args.big_rooms,
            "stack": args.stack,
            "database": "postgresql"
            if args.database_url and args.database_url.startswith("postgres")
            else ("custom" if args.database_url else "sqlite"),
            "only_hello": args.only_hello,
            "cpus": os.cpu_count(),
        },
        "scenarios": rows,
        "targets": targets,
    }


def print_table(summary: dict[str, Any]) -> None:
    cfg = summary["config"]
    print(
        f"\nmeetd benchmark: {cfg['rounds']} round(s) x {cfg['duration_s']:g}s, "
        f"{cfg['connections']} connections, {cfg['threads']} wrk threads, "
        f"database={cfg['database']}, uvicorn stack={cfg['stack']}, {cfg['cpus']} CPUs"
        + ("  [--only-hello: all scenarios hit the hello app]" if cfg["only_hello"] else "")
    )
    header = f"{'scenario':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs hello':>9}  errors"
    print(header)
    print("-" * len(header))
    for name, row in summary["scenarios"].items():
        errors = row["non_2xx"] + row["socket_errors"]
        err_text = "0" if not errors else f"{row['non_2xx']} non-2xx, {row['socket_errors']} socket"
        print(
            f"{name:<10} {row['median_rps']:>10.1f} {row['median_p50_ms']:>8.2f} "
            f"{row['median_p99_ms']:>8.2f} {row['ratio_vs_hello']:>8.1%}  {err_text}"
        )
    print("\ntargets")
    for t in summary["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        note = f"  ({t['errors']} failed requests)" if t["errors"] else ""
        print(f"  {t['result']:<4}  {t['target']:<36} {value:>8}  goal {t['goal']}{note}")
    if any(row["non_2xx"] or row["socket_errors"] for row in summary["scenarios"].values()):
        print(
            "\nWARNING: some requests failed (non-2xx or socket errors); "
            "those scenarios are marked MISS."
        )
