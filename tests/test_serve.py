"""`hub serve --workers N`: every worker carries part of the load."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from tests.helpers import ADMIN_KEY
from tests.process import HubProcess

CLIENTS = 32
REQUESTS_EACH = 10


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _listeners(port: int) -> int:
    """Listening TCP sockets on `port`: one per worker with SO_REUSEPORT."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


async def _client(url: str) -> None:
    # One keep-alive connection per client, as a partner's backend holds it open.
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for _ in range(REQUESTS_EACH):
            response = await client.post(
                "/graphql",
                json={"query": "{ viewer { role } merchants(first: 5) { edges { cursor } } }"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert response.status_code == 200, response.text


async def test_two_workers_share_keep_alive_connections(db_url: str) -> None:
    hub = HubProcess(db_url, workers=2)
    await hub.start()
    try:
        assert hub.proc is not None
        for _ in range(200):
            if _listeners(hub.port) == 2:
                break
            await asyncio.sleep(0.05)
        workers = _children(hub.proc.pid)
        assert _listeners(hub.port) == 2 and len(workers) >= 2
        # Warm each worker's caches before measuring, then count only the load's CPU.
        await asyncio.gather(*(_client(hub.url) for _ in range(8)))
        before = {pid: _cpu_ticks(pid) for pid in workers}
        await asyncio.gather(*(_client(hub.url) for _ in range(CLIENTS)))
        used = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        total = sum(used.values())
        assert total > 0
        shares = sorted(ticks / total for ticks in used.values())
        # With one shared socket one worker took ~100%; with SO_REUSEPORT the kernel
        # spreads 32 connections by their address hash.
        assert shares[-2] >= 0.15, f"CPU per worker {used}, clock ticks; {os.cpu_count()} cores"
    finally:
        hub.stop()
