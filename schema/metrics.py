"""Prometheus metrics per GraphQL operation.

Operation names are chosen by clients, so a label per name would let any client add a
series per request. Only names the hub knows get their own label: its root fields (as
written, and capitalised) and the operations its own pages send (the mall's documents,
the console's); any other name is counted as `other`, a request without one as
`anonymous`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from graphql import GraphQLSchema
from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

import hub

PAGES = Path(hub.__file__).parent / "web"
_OPERATION = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")

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


def page_operations() -> frozenset[str]:
    """The operation names in the hub's own pages (documents and scripts)."""
    names: set[str] = set()
    for path in PAGES.rglob("*"):
        if path.suffix in (".graphql", ".js") and "vendor" not in path.parts:
            names.update(_OPERATION.findall(path.read_text(encoding="utf-8")))
    return frozenset(names)


@lru_cache(maxsize=8)
def known_operations(schema: GraphQLSchema) -> frozenset[str]:
    """The operation names that get a label of their own: a bounded set."""
    names = set(page_operations())
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        for field in root.fields if root is not None else ():
            names.update((field, field[:1].upper() + field[1:]))
    return frozenset(names)


def operation_label(schema: GraphQLSchema, name: str | None) -> str:
    if name is None:
        return "anonymous"
    return name if name in known_operations(schema) else "other"


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = operation_label(context.schema._schema, context.operation_name)
        result = context.result
        errors = getattr(result, "errors", None) or context.pre_execution_errors
        outcome = "error" if errors else "ok"
        REQUESTS.labels(name, outcome).inc()
        LATENCY.labels(name).observe(time.perf_counter() - started)
