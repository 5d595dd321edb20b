"""Issue 6: latency of the merged `rewards` page with 20 partners that each take 50 ms.

Twenty sandbox partners (GenericSandbox, one reward each, all in one process of their
own) answer their catalog after 50 ms. Two hubs serve the same database: one whose
catalog cache lasts 1 ms, so each request asks all twenty partners again and stores
their answers (cold), and one whose cache lasts an hour (warm). The baseline is the
slowest partner measured directly: all twenty asked at once with signed requests from
this process, the time until the last answers, since that is the least a cold page can
take. Rounds are interleaved (direct, cold, warm) so that a noisy moment hits all three
alike. One partner asked alone is shown too: the gap between it and all twenty is the
cost of the fan-out itself (the twenty share one partner process).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench import databases, servers
from bench.client import Client, WrongAnswer, admin, clients
from bench.counters import Probe
from bench.harness import RESULTS, Measurement, Op, Options, Report, Row, progress
from bench.world import hub_settings
from connectors import signing
from tests.helpers import Api, register, set_rate

NAME = "mall"
TITLE = "mall (issue 6): rewards page, 20 partners at 50 ms each"

PARTNERS = 20
STEADY = "rewards page, warm, back to back"
LATENCY_MS = 50
PAGE = """query Page {
  rewards(first: 100) {
    edges { node { id kind title price priceIn(program: "HUB") merchant { id } } }
    unavailableMerchants { id }
  }
}"""


async def run(options: Options) -> Report:
    report = Report(NAME, TITLE)
    spec = {
        f"shop{i:02d}": {
            "secret": _secret(f"shop{i:02d}"),
            "rewards": [{"ref": f"ITEM-{i}", "kind": "GOODS", "title": f"Item {i}", "price": 100}],
            "latency_ms": LATENCY_MS,
        }
        for i in range(PARTNERS)
    }
    progress(f"starting {PARTNERS} sandbox partners, rewards answered after {LATENCY_MS} ms")
    async with servers.partners(spec, options.loop) as live:
        found = {m: (str(url), _secret(m)) for m, url in live.detail.items()}
        for backend in databases.backends(options.postgres):
            async with databases.scratch(backend, options.postgres) as url:
                await _backend(report, options, backend, url, found)
    report.notes += [
        "ratio: p50 divided by the baseline's p50, measured in this run, rounds interleaved.",
        f"baseline: all {PARTNERS} partners asked at once from this process, time to the last "
        "answer; one partner: one of them asked alone.",
        f"{STEADY}: the warm page again, one request after another with no other work "
        "between them. Interleaved, the warm hub idles about 130 ms before each page, and a "
        "page after an idle gap costs this machine's CPU about 1.5x one served back to back "
        "(caches gone cold; measured apart, net of the idle hub's own CPU).",
        "cpu ms/op, sql/op: of the hub serving the page. "
        "cold: catalog_cache_seconds=0.001, so every page asks every partner and stores the "
        "answers; warm: catalog_cache_seconds=3600.",
    ]
    return report


def _secret(merchant: str) -> str:
    return f"secret-{merchant}"


async def _backend(
    report: Report, options: Options, backend: str, url: str, live: dict[str, tuple[str, str]]
) -> None:
    secrets = {merchant.upper(): secret for merchant, (_, secret) in live.items()}
    base = hub_settings(url).model_copy(
        update={"partner_secrets": secrets, "allow_private_partners": True}
    )
    cold_settings = base.model_copy(update={"catalog_cache_seconds": 0.001})
    warm_settings = base.model_copy(update={"catalog_cache_seconds": 3600})
    async with servers.hub(cold_settings, options.loop) as cold_hub:
        async with admin(cold_hub.url) as api:
            progress(f"registering {PARTNERS} connected merchants [{backend}]")
            await _register(api, live)
        async with (
            servers.hub(warm_settings, options.loop) as warm_hub,
            clients(cold_hub.url, 1) as (cold,),
            clients(warm_hub.url, 1) as (warm,),
            _Direct(list(live.values())) as everyone,
            _Direct(list(live.values())[:1]) as one,
        ):
            rounds = {
                "one partner, direct": one,
                "slowest of 20 partners, direct": everyone,
                "rewards page, cold cache": _page(cold),
                "rewards page, warm cache": _page(warm),
            }
            probes = {
                "rewards page, cold cache": cold_hub.counters,
                "rewards page, warm cache": warm_hub.counters,
            }
            measured = await interleaved(backend, rounds, options.iterations, probes)
            steady = await back_to_back(
                backend, STEADY, _page(warm), options.iterations, warm_hub.counters
            )
            if options.profile:
                await _profile(report, cold_hub, _page(cold), backend, "cold", options.iterations)
                await _profile(report, warm_hub, _page(warm), backend, "warm", options.iterations)
    baseline = measured["slowest of 20 partners, direct"]
    report.add(Row(measured["one partner, direct"]))
    report.add(Row(baseline))
    for label in ("rewards page, cold cache", "rewards page, warm cache"):
        report.add(Row(measured[label], baseline, metric="p50 ms"))
    report.add(Row(steady))


async def back_to_back(
    backend: str, label: str, op: Op, iterations: int, probe: Probe
) -> Measurement:
    """`op` `iterations` times, each sent as the last is answered: the server kept busy,
    as under steady traffic, its counters read once before and once after."""
    progress(f"{label} [{backend}]: {iterations} requests")
    await op()
    before = await asyncio.to_thread(probe)
    latencies = []
    for _ in range(iterations):
        started = time.perf_counter()
        await op()
        latencies.append(time.perf_counter() - started)
    after = await asyncio.to_thread(probe)
    return Measurement(
        label=label,
        backend=backend,
        ops=len(latencies),
        seconds=sum(latencies),
        latencies=latencies,
        counters={name: after[name] - before[name] for name in after},
    )


async def _register(api: Api, live: dict[str, tuple[str, str]]) -> None:
    """The platform's hosted program, and each partner as a connected program (as
    tests.partners.register_connected does) that HUB points can pay for at 1:1."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    for merchant, (url, _) in live.items():
        code = merchant.upper()
        config = {"baseUrl": url, "secretRef": code, "timeoutSeconds": 0.5, "retries": 1}
        await register(
            api,
            merchant,
            code,
            category="RETAIL",
            connector="HTTP",
            connectorConfig=json.dumps(config),
        )
        await set_rate(api, "HUB", code, "1")


async def _profile(
    report: Report, hub: servers.Served, page: Op, backend: str, cache: str, iterations: int
) -> None:
    """With --profile: more pages (cold or warm) with the hub under cProfile (not reported)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report.name}-{cache}-{backend}.prof"
    progress(f"{cache} pages under the profiler [{backend}]: {iterations} requests")
    hub.profile_start()
    for _ in range(iterations):
        await page()
    print(hub.profile_stop(path), flush=True)
    report.notes.append(f"profile of {cache} pages [{backend}]: {path}")


def _page(client: Client) -> Op:
    async def op() -> None:
        data = await client.data(PAGE)
        page = data["rewards"]
        if page["unavailableMerchants"] or len(page["edges"]) != PARTNERS:
            raise WrongAnswer(f"{len(page['edges'])} rewards, {page['unavailableMerchants']}")

    return op


class _Direct:
    """Partners' catalogs asked at once, signed as the hub signs, over pooled HTTP."""

    def __init__(self, partners: list[tuple[str, str]]) -> None:
        self.partners = partners
        self.http = httpx.AsyncClient(
            timeout=10, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
        )

    async def __aenter__(self) -> Op:
        return self.op

    async def __aexit__(self, *_: Any) -> None:
        await self.http.aclose()

    async def _one(self, url: str, secret: str) -> None:
        response = await self.http.get(f"{url}/rewards", headers=signing.headers(secret, b""))
        if response.status_code != 200 or len(response.json()["rewards"]) != 1:
            raise WrongAnswer(f"{url}: HTTP {response.status_code} {response.text}")

    async def op(self) -> None:
        await asyncio.gather(*(self._one(url, secret) for url, secret in self.partners))


async def interleaved(
    backend: str, ops: dict[str, Op], iterations: int, probes: dict[str, Probe]
) -> dict[str, Measurement]:
    """Each op once per round, one at a time, after one unmeasured warm-up round.

    `probes` read the counters of the server that alone serves an op, before and after.
    """
    progress(f"{', '.join(ops)} [{backend}]: {iterations} rounds, interleaved")
    for op in ops.values():
        await op()
    before = {label: await asyncio.to_thread(probe) for label, probe in probes.items()}
    times: dict[str, list[float]] = {label: [] for label in ops}
    began = time.perf_counter()
    for round_no in range(1, iterations + 1):
        for label, op in ops.items():
            started = time.perf_counter()
            await op()
            times[label].append(time.perf_counter() - started)
        if round_no % 25 == 0 or round_no == iterations:
            progress(f"   round {round_no}/{iterations}")
    seconds = time.perf_counter() - began
    after = {label: await asyncio.to_thread(probe) for label, probe in probes.items()}
    found = {}
    for label, latencies in times.items():
        counters = {}
        if label in after:
            counters = {name: after[label][name] - before[label][name] for name in after[label]}
        found[label] = Measurement(
            label=label,
            backend=backend,
            ops=len(latencies),
            seconds=sum(latencies),
            latencies=latencies,
            counters=counters,
            extra={"rounds_seconds": round(seconds, 3)},
        )
        p50, p99 = found[label].p50_ms, found[label].p99_ms
        progress(f"   {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return found
