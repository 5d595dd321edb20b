"""Redis on 127.0.0.1:6379 for tests of what workers and replicas share: a key prefix
of the test's own, whose keys are deleted afterwards (never FLUSHALL)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_answers(), reason="no Redis on 127.0.0.1:6379")


@asynccontextmanager
async def own_prefix() -> AsyncIterator[str]:
    """A prefix no other test uses; yields it, then deletes every key under it."""
    from redis.asyncio import Redis

    prefix = f"hub-test-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        redis = Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def keys_under(prefix: str) -> list[str]:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        return sorted([key.decode() async for key in redis.scan_iter(match=prefix + "*")])
    finally:
        await redis.aclose()
