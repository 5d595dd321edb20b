"""Serve sandbox partners on loopback, in the current event loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from connectors.sandbox.core import Sandbox


def free_port() -> int:
    """A loopback port free now, for a server to bind a moment later. It is drawn below the
    kernel's ephemeral range, which outgoing connections take ports from: a port from that
    range (what binding port 0 gives) can be taken by any client in the meantime, as a demo
    that seeds for seconds before it listens found under a loaded test run."""
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randrange(max(1024, low - 20_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def consecutive_free_ports(count: int) -> int:
    """A port p with p..p+count-1 free now (the demo's partners take consecutive ports)."""
    for _ in range(100):
        base = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(base + 1, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


@dataclass
class Running:
    sandbox: Sandbox
    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(sandbox: Sandbox, port: int | None = None) -> Running:
    """Start a sandbox's HTTP server on 127.0.0.1 and wait until it accepts connections."""
    port = port or free_port()
    config = uvicorn.Config(
        sandbox.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return Running(sandbox=sandbox, port=port, server=server, task=task)
