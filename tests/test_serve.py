"""`hub serve --workers N`: every worker carries part of the load."""

from __future__ import annotations

import asyncio
import os
import signal
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
            if int(fields[1]) == pid and fields[0] != "Z":  # a zombie is not a worker
                found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local `port` in `state` (0A listening, 01 established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, st, inode = fields[1], fields[3], int(fields[9])
            if st == state and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def _listeners(port: int) -> int:
    return len(_sockets(port, "0A"))


def _held_by(pid: int, inodes: set[int]) -> int:
    """How many of these sockets the process has open."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
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
    """The supervisor accepts and hands connections to the workers in turn: 16 keep-alive
    clients are 8 per worker, every time (one SO_REUSEPORT socket per worker left 5 or
    fewer to one worker in a quarter of tries), and each worker carries its share."""
    hub = HubProcess(db_url, workers=2)
    await hub.start()
    try:
        assert hub.proc is not None
        assert _listeners(hub.port) == 1  # the supervisor's
        # Warm each worker's caches before measuring, then count only the load's CPU.
        await asyncio.gather(*(_client(hub.url) for _ in range(8)))
        children = _children(hub.proc.pid)

        limits = httpx.Limits(max_connections=1)
        clients = [
            httpx.AsyncClient(base_url=hub.url, limits=limits, timeout=30) for _ in range(16)
        ]
        try:
            for response in await asyncio.gather(
                *(c.post("/graphql", json={"query": "{ __typename }"}) for c in clients)
            ):
                assert response.status_code in (200, 401)
            established = _sockets(hub.port, "01")
            held = {pid: _held_by(pid, established) for pid in children}
        finally:
            for client in clients:
                await client.aclose()
        serving = sorted(n for n in held.values() if n)
        assert serving == [8, 8], f"connections per process {held}"

        workers = [pid for pid, n in held.items() if n]
        before = {pid: _cpu_ticks(pid) for pid in workers}
        await asyncio.gather(*(_client(hub.url) for _ in range(CLIENTS)))
        used = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        total = sum(used.values())
        assert total > 0
        shares = sorted(ticks / total for ticks in used.values())
        assert shares[0] >= 0.3, f"CPU per worker {used}, clock ticks; {os.cpu_count()} cores"
    finally:
        hub.stop()


def _workers(pid: int) -> list[int]:
    """The worker processes (multiprocessing's resource tracker left out)."""
    return [
        child
        for child in _children(pid)
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


async def test_a_dead_worker_is_skipped_and_restarted(db_url: str) -> None:
    hub = HubProcess(db_url, workers=2)
    await hub.start()
    try:
        assert hub.proc is not None
        first, second = _workers(hub.proc.pid)
        os.kill(first, signal.SIGKILL)  # a crash of a worker this test started
        # Every new connection is served meanwhile: the supervisor skips the dead worker.
        for _ in range(20):
            async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
                assert (await client.get("/healthz")).status_code == 200
        for _ in range(200):  # the supervisor looks every half second
            workers = _workers(hub.proc.pid)
            if first not in workers and len(workers) == 2:
                break
            await asyncio.sleep(0.05)
        assert second in workers and first not in workers and len(workers) == 2
    finally:
        hub.stop()
