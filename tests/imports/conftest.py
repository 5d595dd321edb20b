"""A restaurant and a hotel with a few members each, and the helpers of the import tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from tests import world as worlds
from tests.helpers import Api

JOB = """
query J($id: ID!, $first: Int, $after: Int) {
  importJob(id: $id) {
    id status total processed accepted rejected points failure createdAt finishedAt
    program { code }
    errors(first: $first, afterLine: $after) { line code message }
  }
}"""

IMPORT = """
mutation I($input: ImportAccrualsInput!) {
  importAccruals(input: $input) {
    job { id status total program { code } }
    userErrors { field message code }
  }
}"""


@dataclass
class World:
    api: Api
    jade_key: str
    lotus_key: str
    members: list[str]  # enrolled in JADE as J-0, J-1, ...; the first also in LOTUS
    outsider: str  # enrolled in LOTUS only


@pytest.fixture
async def world(world: worlds.World) -> World:
    await world.programs("JADE", "LOTUS")
    members = [await world.member("Diner 0", {"JADE": "J-0", "LOTUS": "L-0"})]
    members += [await world.member(f"Diner {i}", {"JADE": f"J-{i}"}) for i in range(1, 4)]
    return World(
        api=world.api,
        jade_key=await world.key("MERCHANT", "jade"),
        lotus_key=await world.key("MERCHANT", "lotus"),
        members=members,
        outsider=await world.member("Guest", {"LOTUS": "L-9"}),
    )


async def wait_for(api: Api, job_id: str, key: str, seconds: float = 60.0) -> dict[str, Any]:
    """The job once it has finished (COMPLETED or FAILED)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = (await api.gql(JOB, {"id": job_id, "first": 1000}, key=key))["importJob"]
        assert job is not None, job_id
        if job["status"] != "RUNNING":
            return job  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def import_rows(api: Api, program: str, rows: list[dict[str, Any]], key: str) -> Any:
    data = await api.gql(IMPORT, {"input": {"program": program, "rows": rows}}, key=key)
    return data["importAccruals"]


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    """A body that arrives a few bytes at a time, as a slow network would deliver it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
        if start % 700 == 0:
            await asyncio.sleep(0)


def csv_of(rows: Iterable[Iterable[str]], header: str = "memberId,orderRef,amount") -> bytes:
    return (header + "\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()
