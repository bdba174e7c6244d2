"""The benchmark's order of scenarios in a round (bench.run.round_order): the ceiling and
create keep their places, and the reads take turns right after create."""

from __future__ import annotations

from bench.run import round_order
from bench.wrk import Scenario


def test_reads_take_turns_after_create() -> None:
    names = ["hello", "create", "get", "list_1k", "list_big"]
    scenarios = [Scenario(name, name, f"http://127.0.0.1/{name}") for name in names]
    orders = [[s.name for s in round_order(scenarios, n)] for n in range(1, 5)]
    assert orders == [
        ["hello", "create", "get", "list_1k", "list_big"],
        ["hello", "create", "list_1k", "list_big", "get"],
        ["hello", "create", "list_big", "get", "list_1k"],
        ["hello", "create", "get", "list_1k", "list_big"],
    ]
    # Each read runs right after create once in three rounds.
    assert sorted(order[2] for order in orders[:3]) == ["get", "list_1k", "list_big"]


def test_a_round_without_reads() -> None:
    scenarios = [Scenario(name, name, f"http://127.0.0.1/{name}") for name in ("hello", "create")]
    assert [s.name for s in round_order(scenarios, 2)] == ["hello", "create"]
