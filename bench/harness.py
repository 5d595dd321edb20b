"""Timing and reporting: concurrent workers for a fixed time, latencies, tables, JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.counters import Probe

RESULTS = Path(__file__).parent / "results"


def peak_rss_mib() -> float:
    """The peak resident set of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """The resident set of this process now (Linux), or 0 where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


Op = Callable[[], Awaitable[None]]

THROUGHPUT_NOTES = [
    "ratio: ops/s divided by the baseline's ops/s, both measured in this run (1.0 = as fast); "
    "cpu ratio: the same for CPU per operation (2.0 = twice the CPU).",
    "cpu ms/op, sql/op: CPU time and SQL statements of the process doing the work (the "
    "server over HTTP; this process for raw SQL), per operation; PostgreSQL's own CPU is "
    "not counted.",
]


@dataclass(frozen=True)
class Options:
    """What one run of `python -m bench` was asked for."""

    duration: float = 5.0  # seconds measured per throughput phase
    warmup: float = 0.5  # seconds run before each throughput phase is measured
    slices: int = 5  # turns in which phases compared with each other alternate
    clients: int = 8  # concurrent clients (and pgbench -c)
    iterations: int = 50  # rounds of a latency phase
    postgres: str | None = None  # admin URL; scratch databases are made beside it
    loop: str = "uvloop"  # the servers' event loop, as `hub serve` runs it
    profile: bool = False  # cProfile the hub server in one extra phase per measurement


@dataclass
class Measurement:
    """One phase: how many operations finished in how long, and how long each took."""

    label: str
    backend: str
    ops: int
    seconds: float
    latencies: list[float] = field(repr=False)  # seconds, one per operation
    # What the process doing the work did for `counted_ops` operations: "cpu" seconds, SQL
    # "statements", pool "checkouts" (the server over HTTP; this process for raw SQL).
    counters: dict[str, float] = field(default_factory=dict)
    counted_ops: int | None = None  # default: ops
    client_cpu: float | None = None  # CPU seconds this process used meanwhile
    extra: dict[str, Any] = field(default_factory=dict)  # what else the phase reported

    @property
    def per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")

    def per_op(self, counter: str) -> float | None:
        ops = self.ops if self.counted_ops is None else self.counted_ops
        if counter not in self.counters or not ops:
            return None
        return self.counters[counter] / ops

    @property
    def cpu_ms_per_op(self) -> float | None:
        cpu = self.per_op("cpu")
        return None if cpu is None else cpu * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "backend": self.backend,
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_second": round(self.per_second, 1),
            "p50_ms": _round(self.p50_ms, 2),
            "p99_ms": _round(self.p99_ms, 2),
            "mean_ms": _round(self.mean_ms, 2),
            "cpu_ms_per_op": _round(self.cpu_ms_per_op),
            "statements_per_op": _round(self.per_op("statements"), 1),
            "checkouts_per_op": _round(self.per_op("checkouts"), 1),
            "counters": {name: _round(value) for name, value in self.counters.items()},
            "counted_ops": self.counted_ops,
            "client_cpu_seconds": _round(self.client_cpu),
            **self.extra,
        }


def _round(value: float | None, places: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, places)


def _cell(value: float | None, width: int, places: int = 2) -> str:
    text = "-" if value is None or math.isnan(value) else f"{value:,.{places}f}"
    return f"{text:>{width}}"


def heading(title: str, header: str) -> list[str]:
    """A report table's first lines: its title, the column header and a rule under it."""
    return [f"== {title}", header, "-" * len(header)]


def verdicts(checks: dict[str, bool]) -> str:
    """A run's checks on one line: each named, ok or FAILED."""
    return "; ".join(f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in checks.items())


def progress(message: str) -> None:
    """A line on stdout now: long runs say what they are doing."""
    print(f"  .. {message}", flush=True)


@dataclass(frozen=True)
class Phase:
    """Clients driving one operation, and the counters of the process that serves it."""

    label: str
    backend: str
    workers: Sequence[Op]
    probe: Probe | None = None


async def throughput(phase: Phase, options: Options) -> Measurement:
    """One phase alone: warmup, then `options.duration` seconds measured."""
    return (await alternating([phase], options))[0]


async def alternating(phases: Sequence[Phase], options: Options) -> list[Measurement]:
    """Phases take turns: after a warmup each, `options.slices` turns of duration/slices
    seconds each, so that a change in the machine's load hits every phase alike."""
    turns = max(1, options.slices if len(phases) > 1 else 1)
    names = " / ".join(f"{p.label} [{p.backend}]" for p in phases)
    clients = max(len(p.workers) for p in phases)
    progress(
        f"{names}: {clients} clients, {options.warmup:g} s warmup each, then "
        f"{options.duration:g} s each" + (f" in {turns} alternating turns" if turns > 1 else "")
    )
    for phase in phases:
        await _window(phase, options.warmup, measured=False)
    parts: list[list[Measurement]] = [[] for _ in phases]
    for _ in range(turns):
        for index, phase in enumerate(phases):
            parts[index].append(await _window(phase, options.duration / turns))
    found = [_combine(measured) for measured in parts]
    for m in found:
        progress(
            f"   {m.label} [{m.backend}]: {m.ops} ops, {m.per_second:,.0f}/s, p50 {m.p50_ms:.2f} ms"
        )
    return found


async def _window(phase: Phase, seconds: float, measured: bool = True) -> Measurement:
    """Every worker in a loop for `seconds`; what finished inside the window counts.

    Counters are read from before the first operation starts until the last one still
    running at the end has finished, and divided by every operation in that span: no
    operation is half counted.
    """
    done: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def loop(op: Op) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await op()
            done.append((started, time.perf_counter()))

    probe = phase.probe if measured else None
    tasks = [asyncio.create_task(loop(op)) for op in phase.workers]
    try:
        before = await asyncio.to_thread(probe) if probe else {}
        client0 = time.process_time()
        start = time.perf_counter()
        await _sleep_checking(tasks, seconds)
        end = time.perf_counter()
        stop.set()
        await asyncio.gather(*tasks)
        client1 = time.process_time()
        after = await asyncio.to_thread(probe) if probe else {}
    finally:
        for task in tasks:
            task.cancel()
    latencies = [b - a for a, b in done if b <= end]
    return Measurement(
        label=phase.label,
        backend=phase.backend,
        ops=len(latencies),
        seconds=end - start,
        latencies=latencies,
        counters={name: after[name] - before[name] for name in after},
        counted_ops=len(done),
        client_cpu=client1 - client0,
    )


def _combine(parts: list[Measurement]) -> Measurement:
    first = parts[0]
    counters: dict[str, float] = {}
    for part in parts:
        for name, value in part.counters.items():
            counters[name] = counters.get(name, 0.0) + value
    return Measurement(
        label=first.label,
        backend=first.backend,
        ops=sum(p.ops for p in parts),
        seconds=sum(p.seconds for p in parts),
        latencies=[x for p in parts for x in p.latencies],
        counters=counters,
        counted_ops=sum(p.counted_ops or p.ops for p in parts),
        client_cpu=sum(p.client_cpu or 0.0 for p in parts),
        extra={"turns": len(parts)},
    )


async def _sleep_checking(tasks: Sequence[asyncio.Task[None]], seconds: float) -> None:
    """Sleep, but fail at once when a worker failed (a wrong answer stops the run)."""
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(min(0.25, left))
        for task in tasks:
            if task.done():
                task.result()  # raises the worker's error
                raise RuntimeError("a benchmark worker stopped early")


@dataclass
class Row:
    """A measurement next to its baseline: ratio = this figure / the baseline's."""

    measured: Measurement
    baseline: Measurement | None = None
    metric: str = "ops/s"  # or "p50 ms": which figure the ratio compares
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        if self.metric == "ops/s":
            return self.measured.per_second / self.baseline.per_second
        return self.measured.p50_ms / self.baseline.p50_ms

    @property
    def cpu_ratio(self) -> float | None:
        mine = self.measured.cpu_ms_per_op
        theirs = self.baseline.cpu_ms_per_op if self.baseline else None
        if mine is None or not theirs:
            return None
        return mine / theirs


@dataclass
class Report:
    """What a benchmark prints and stores."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def table(self) -> str:
        header = (
            f"{'measurement':<32} {'db':<8} {'ops':>6} {'s':>5} {'ops/s':>7} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'cpu ms/op':>9} {'sql/op':>6} {'ratio':>6} {'cpu ratio':>9}  "
            "baseline (ratio of)"
        )
        lines = [f"== {self.title}", header, "-" * (len(header) + 16)]
        for row in self.rows:
            m = row.measured
            base = f"{row.baseline.label} ({row.metric})" if row.baseline else ""
            lines.append(
                f"{m.label:<32} {m.backend:<8} {m.ops:>6} {m.seconds:>5.1f} "
                f"{_cell(m.per_second, 7, 0)} {_cell(m.p50_ms, 7)} {_cell(m.p99_ms, 7)} "
                f"{_cell(m.cpu_ms_per_op, 9)} {_cell(m.per_op('statements'), 6, 1)} "
                f"{_cell(row.ratio, 6)} "
                f"{_cell(row.cpu_ratio, 9)}  {base}"
            )
        lines.extend(f"   {m.label} [{m.backend}]: {n}" for m, n in self._row_notes())
        lines.extend(f"   {note}" for note in self.notes)
        return "\n".join(lines)

    def _row_notes(self) -> list[tuple[Measurement, str]]:
        return [(row.measured, row.note) for row in self.rows if row.note]

    def as_json(self, options: Options) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "title": self.title,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "options": {**asdict(options), "postgres": _hide_password(options.postgres)},
            "rows": [
                {
                    **row.measured.summary(),
                    "baseline": row.baseline.summary() if row.baseline else None,
                    "metric": row.metric,
                    "ratio": _round(row.ratio, 4),
                    "server_cpu_ratio": _round(row.cpu_ratio, 4),
                    "note": row.note,
                }
                for row in self.rows
            ],
            "notes": self.notes,
            **self.extra,
        }

    def save(self, options: Options) -> Path:
        RESULTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{self.name}-{stamp}.json"
        path.write_text(json.dumps(self.as_json(options), indent=2) + "\n")
        return path


def _hide_password(url: str | None) -> str | None:
    if url is None:
        return None
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def machine() -> dict[str, Any]:
    """Enough about this machine to read a figure later."""
    from importlib.metadata import version

    packages = ["strawberry-graphql", "starlette", "uvicorn", "sqlalchemy", "httpx"]
    packages += ["aiosqlite", "asyncpg", "uvloop"]
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: version(name) for name in packages},
    }


async def profile_phase(
    options: Options, served: Any, report: Report, what: str, backend: str, ops: Sequence[Op]
) -> None:
    """With --profile: one more phase with the server under cProfile; its figures are not
    reported (the profiler slows the server), a summary is printed and the profile kept."""
    if not options.profile:
        return
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report.name}-{what}-{backend}.prof"
    served.profile_start()
    await throughput(Phase(f"{what} (profiled)", backend, ops), replace(options, warmup=0))
    print(served.profile_stop(path), flush=True)
    report.notes.append(f"profile of {what} [{backend}]: {path}")


def save_results(name: str, runs: Sequence[dict[str, Any]], options: dict[str, Any]) -> Path:
    """A run's figures as bench/results/<name>-<stamp>.json, with the machine and options."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    document = {
        "benchmark": name,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": options,
        "runs": list(runs),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
