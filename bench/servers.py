"""Servers under test, each in its own process, so that the clients driving them do not
share its event loop (or its CPU, on a machine with a core to spare).

The hub is served by `tests.helpers.live_app` (uvicorn on a loopback port, lifespan
run); the baseline, a one-field strawberry schema behind strawberry's own ASGI app, is
served by uvicorn with the same configuration. The parent talks to the child over a
pipe: the URL when it is up, its CPU time when asked, a profile when asked, stop.
"""

from __future__ import annotations

import asyncio
import cProfile
import multiprocessing
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import profiling
from bench.counters import Probe, SqlCounter, probe

START_TIMEOUT = 60.0


@dataclass
class Served:
    """A server running in a child process."""

    url: str
    _conn: Connection
    detail: Any = None  # what else the child reported when it was ready

    def _ask(self, *command: Any) -> Any:
        self._conn.send(command)
        if not self._conn.poll(30):
            raise RuntimeError(f"the server did not answer {command[0]!r}")
        return self._conn.recv()

    def counters(self) -> dict[str, float]:
        """The server's CPU seconds so far and, for the hub, its SQL statements and
        connection checkouts so far."""
        found: dict[str, float] = self._ask("counters")
        return found

    def profile_start(self) -> None:
        self._ask("profile_start")

    def profile_stop(self, path: Path, top: int = 25) -> str:
        """Stop profiling; the profile goes to `path`, a summary of it comes back."""
        return str(self._ask("profile_stop", str(path), top))


@asynccontextmanager
async def hub(settings: Any, loop: str) -> AsyncIterator[Served]:
    """The hub app with these Settings, served over HTTP in a child process."""
    async with _child("hub", settings.model_dump(), loop) as served:
        yield served


@asynccontextmanager
async def trivial(loop: str) -> AsyncIterator[Served]:
    """`query { hello }` on a plain strawberry schema, served in a child process."""
    async with _child("trivial", {}, loop) as served:
        yield served


@asynccontextmanager
async def partners(spec: dict[str, dict[str, Any]], loop: str) -> AsyncIterator[Served]:
    """Sandbox partners (GenericSandbox), all in one child process; `spec` maps each
    merchant to its secret, rewards and catalog latency. `detail` maps it to its URL."""
    async with _child("partners", spec, loop) as served:
        yield served


@asynccontextmanager
async def _child(kind: str, payload: dict[str, Any], loop: str) -> AsyncIterator[Served]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_main, args=(kind, payload, theirs, loop), name=f"bench-{kind}", daemon=True
    )
    process.start()
    theirs.close()
    try:
        ready = await asyncio.to_thread(ours.poll, START_TIMEOUT)
        if not ready:
            raise RuntimeError(f"the {kind} server did not start in {START_TIMEOUT:g} s")
        try:
            status, url, *detail = ours.recv()
        except EOFError:
            raise RuntimeError(f"the {kind} server exited before it was ready") from None
        if status != "ready":
            raise RuntimeError(f"the {kind} server failed to start:\n{url}")
        yield Served(url=url, _conn=ours, detail=detail[0] if detail else None)
    finally:
        if process.is_alive():
            with suppress(OSError):
                ours.send(("stop",))
            await asyncio.to_thread(process.join, 15)
        if process.is_alive():
            process.terminate()  # this child only, started above
            await asyncio.to_thread(process.join, 5)
        ours.close()


# ---------------------------------------------------------------- in the child process


def _main(kind: str, payload: dict[str, Any], conn: Connection, loop: str) -> None:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(kind, payload, conn))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        raise


async def _serve(kind: str, payload: dict[str, Any], conn: Connection) -> None:
    if kind == "hub":
        from hub.config import Settings
        from tests.helpers import live_app

        async with live_app(Settings(**payload)) as (url, api):
            sql = SqlCounter(*api.app.state.runtime.db.sync_engines)
            await _obey(conn, url, probe=probe(sql))
    elif kind == "partners":
        await _partners(payload, conn)
    else:
        async with _uvicorn(_trivial_app()) as url:
            await _obey(conn, url)


def _trivial_app() -> Any:
    import strawberry
    from strawberry.asgi import GraphQL

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "world"

    return GraphQL(strawberry.Schema(query=Query), graphql_ide=None)


@asynccontextmanager
async def _uvicorn(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app exactly as `tests.helpers.live_app` serves the hub."""
    import uvicorn

    from connectors.sandbox.runner import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _partners(spec: dict[str, dict[str, Any]], conn: Connection) -> None:
    from connectors.sandbox.core import Faults
    from connectors.sandbox.generic import GenericSandbox
    from connectors.sandbox.runner import serve

    running = []
    try:
        for merchant, partner in spec.items():
            sandbox = GenericSandbox(merchant, partner["secret"], rewards=partner["rewards"])
            sandbox.faults = Faults(latency_ms=partner["latency_ms"], operations=["rewards"])
            running.append(await serve(sandbox))
        urls = {r.sandbox.merchant_id: r.url for r in running}
        await _obey(conn, "", urls)
    finally:
        for server in running:
            await server.stop()


async def _obey(conn: Connection, url: str, detail: Any = None, probe: Probe = probe()) -> None:
    conn.send(("ready", url, detail))
    profiler: cProfile.Profile | None = None
    while True:
        command = await asyncio.to_thread(_receive, conn)
        name = command[0]
        if name == "stop":
            return
        if name == "counters":
            conn.send(probe())
        elif name == "profile_start":
            # CPU time of this thread (the event loop's): waits for I/O or for the GIL,
            # held by the database driver's threads, are not charged to whatever was running.
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            conn.send(True)
        elif name == "profile_stop":
            assert profiler is not None
            profiler.disable()
            _, path, top = command
            conn.send(profiling.summary(profiler, Path(path), top))
            profiler = None


def _receive(conn: Connection) -> tuple[Any, ...]:
    try:
        command: tuple[Any, ...] = conn.recv()
    except EOFError:  # the parent went away
        return ("stop",)
    return command
