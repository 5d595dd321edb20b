"""Rate limits: token buckets per API key, per member session, and per client address
for failed authentications.

Without HUB_REDIS_URL the buckets live in each process, so with `--workers N` or
several replicas a caller's effective limit is the limit times the processes it
reaches. With HUB_REDIS_URL they live in Redis, taken by one atomic script, so every
worker and replica draws from the same bucket. When Redis does not answer, each
process falls back to its own buckets (and logs it) rather than refusing everything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from hub.auth import Principal
from hub.config import Settings

log = structlog.get_logger(__name__)


class Buckets(Protocol):
    async def take(self, name: str, per_minute: int, cost: int) -> float:
        """Take `cost` tokens (0: only look) when the bucket holds at least max(cost, 1);
        return 0, or the seconds until it would."""

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class LocalBuckets:
    """The buckets of this process."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, name: str, per_minute: int, cost: int) -> float:
        capacity, rate = float(per_minute), per_minute / 60.0
        now = time.monotonic()
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket(tokens=capacity, updated=now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        need = max(cost, 1)
        if bucket.tokens >= need:
            bucket.tokens -= cost
            return 0.0
        return (need - bucket.tokens) / rate

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1]: the bucket; ARGV: capacity, tokens per second, cost. Redis's own clock, so
# that hosts whose clocks differ agree; the hash expires once it would be full again.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local need = math.max(cost, 1)
local wait = 0
if tokens >= need then
  tokens = tokens - cost
else
  wait = (need - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets in Redis, shared by every process that uses the same URL and prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_TAKE)
        self._prefix = prefix
        self._fallback = LocalBuckets()
        self._failing = False

    async def take(self, name: str, per_minute: int, cost: int) -> float:
        try:
            wait = await self._script(
                keys=[self._prefix + name], args=[per_minute, per_minute / 60.0, cost]
            )
        except Exception as exc:  # Redis down: limit per process until it is back
            if not self._failing:
                log.warning("rate limits per process: Redis is not answering", error=str(exc))
            self._failing = True
            return await self._fallback.take(name, per_minute, cost)
        if self._failing:
            log.info("rate limits shared again: Redis answers")
            self._failing = False
        return float(wait)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimits:
    """Who is counted where. An API key's requests draw from the key's bucket; a request
    with a member session from that member's bucket instead, so that one abuser of the
    public STOREFRONT key cannot lock every shopper out. A request costs one, and one
    more for each root field past the first that it executes (30 aliased mutations cost
    30). Failed authentications draw from their client address's bucket."""

    def __init__(self, buckets: Buckets, per_minute: int, auth_failures_per_minute: int) -> None:
        self.buckets = buckets
        self.per_minute = per_minute
        self.auth_failures_per_minute = auth_failures_per_minute

    @staticmethod
    def bucket_of(principal: Principal) -> str:
        if principal.member_id is not None:
            return f"member:{principal.member_id}"
        return f"key:{principal.key_id}"

    async def request(self, principal: Principal) -> float:
        """0 when a request may go ahead (and is counted); else seconds until it may."""
        if not self.per_minute:
            return 0.0
        return await self.buckets.take(self.bucket_of(principal), self.per_minute, 1)

    async def root_fields(self, principal: Principal, count: int) -> float:
        """The root fields a request executes beyond the first, which `request` counted.
        A request with more than the whole bucket takes the whole bucket."""
        if not self.per_minute or count <= 1:
            return 0.0
        cost = min(count - 1, self.per_minute)
        return await self.buckets.take(self.bucket_of(principal), self.per_minute, cost)

    async def address_blocked(self, address: str) -> float:
        """Seconds until this address may try to authenticate again (0: it may)."""
        if not self.auth_failures_per_minute:
            return 0.0
        return await self.buckets.take(f"auth:{address}", self.auth_failures_per_minute, 0)

    async def authentication_failed(self, address: str) -> None:
        if self.auth_failures_per_minute:
            await self.buckets.take(f"auth:{address}", self.auth_failures_per_minute, 1)

    async def close(self) -> None:
        await self.buckets.close()


def rate_limits(settings: Settings) -> RateLimits:
    """The rate limits the settings ask for, shared through Redis when it is configured."""
    buckets: Buckets = (
        RedisBuckets(settings.redis_url, settings.redis_prefix + "ratelimit:")
        if settings.redis_url
        else LocalBuckets()
    )
    return RateLimits(buckets, settings.rate_limit, settings.auth_failure_limit)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def too_many(principal: Principal, wait: float) -> str:
    """What a refused caller is told: whose bucket is empty, and when to retry."""
    whose = "member session" if principal.member_id is not None else "key"
    return f"Too many requests for this {whose}; retry in {retry_after(wait)} s."
