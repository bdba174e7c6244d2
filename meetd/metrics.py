"""Prometheus metrics: requests by route and status, latency, rooms created and expired,
callback events and delivery attempts.

Each app has its own registry, so several apps in one process (tests) count separately.
With ``--workers N`` each worker process counts its own requests; scrape them together or
run one process per port (see docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# The *_created series (when each counter was made) add nothing a scrape needs.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "meetd_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "meetd_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rooms_created = Counter(
            "meetd_rooms_created", "Rooms created.", registry=self.registry
        )
        self.rooms_expired = Counter(
            "meetd_rooms_expired",
            "Rooms that expired (turned unavailable).",
            registry=self.registry,
        )
        self.callback_attempts = Counter(
            "meetd_callback_attempts",
            "Callback delivery attempts, by result (delivered or failed).",
            ("result",),
            registry=self.registry,
        )
        self.callback_events = Counter(
            "meetd_callback_events",
            "Callback events recorded in the outbox, by type.",
            ("type",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:  # labels() is slow; keep the children it hands out
            child = self._children[key] = self.requests.labels(method, route, str(status))
        child.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self.latency.labels(route)
        timer.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
