"""Prometheus metrics per GraphQL operation."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

REQUESTS = Counter(
    "hub_graphql_requests_total",
    "GraphQL operations by name and outcome",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "hub_graphql_request_seconds",
    "GraphQL operation latency by name",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = context.operation_name or "anonymous"
        result = context.result
        errors = getattr(result, "errors", None) or context.pre_execution_errors
        outcome = "error" if errors else "ok"
        REQUESTS.labels(name, outcome).inc()
        LATENCY.labels(name).observe(time.perf_counter() - started)
