"""A circuit breaker per merchant: fail fast while a partner is down, probe to recover.

Hand-written rather than a library's: it counts failures by the outcome of a
partner call (no answer, 5xx), not by exceptions, and lets exactly one probe
through when half-open.

`Breaker` keeps its state in this process. With HUB_REDIS_URL set, `SharedBreaker`
keeps it in Redis (failures, open-until, the probe's lease), changed only by small
atomic scripts on Redis's clock, so that a partner one worker or replica found down
is failed fast by every other, and one probe at a time goes out across all of them.
When Redis does not answer, each process falls back to a breaker of its own (and
logs it) rather than refusing every call.
"""

from __future__ import annotations

import math
import time
from enum import StrEnum
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


class State(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitBreaker(Protocol):
    async def allow(self) -> bool:
        """Whether a call may go out now (one probe at a time once the cooldown passed)."""

    async def success(self) -> None:
        """The partner answered: closed, no failures counted."""

    async def failure(self) -> None:
        """The partner did not answer (or failed): one more failure, open past the limit."""


class Breaker:
    """The breaker of one partner in this process."""

    def __init__(self, failures_to_open: int = 5, cooldown_seconds: float = 10.0) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_seconds = cooldown_seconds
        self.state = State.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    async def allow(self) -> bool:
        if self.state == State.CLOSED:
            return True
        if self.state == State.OPEN and time.monotonic() - self.opened_at >= self.cooldown_seconds:
            self.state = State.HALF_OPEN
        if self.state == State.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    async def success(self) -> None:
        self.state = State.CLOSED
        self.failures = 0
        self._probing = False

    async def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state == State.HALF_OPEN or self.failures >= self.failures_to_open:
            self.state = State.OPEN
            self.opened_at = time.monotonic()


# The state of one partner's breaker is a hash: failures, open_until and probe_until (ms
# on Redis's clock; open_until 0 or absent: closed). Each script reads and changes it in
# one step, so two processes never both take the probe or lose a failure.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# ARGV: how long the probe may take (ms). 1: the call may go out.
_ALLOW = (
    _NOW
    + """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
if now < open_until then return 0 end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if probe_until > now then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return 1
"""
)

# ARGV: failures to open, cooldown (ms), seconds to keep the hash. 1: it is open now.
_FAILURE = (
    _NOW
    + """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
redis.call('HDEL', KEYS[1], 'probe_until')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
if (open_until > 0 and now >= open_until) or failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[2]))
  return 1
end
return 0
"""
)


class BreakerStore:
    """The Redis connection and scripts every shared breaker of a process uses."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.redis: Any = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = prefix
        self.allow_script = self.redis.register_script(_ALLOW)
        self.failure_script = self.redis.register_script(_FAILURE)
        self._failing = False

    def down(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("circuit breakers per process: Redis is not answering", error=str(exc))
        self._failing = True

    def up(self) -> None:
        if self._failing:
            log.info("circuit breakers shared again: Redis answers")
            self._failing = False

    async def close(self) -> None:
        await self.redis.aclose()


class SharedBreaker:
    """The breaker of one partner, kept in Redis for every worker and replica."""

    def __init__(
        self,
        store: BreakerStore,
        name: str,
        failures_to_open: int = 5,
        cooldown_seconds: float = 10.0,
        probe_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.key = f"{store.prefix}{name}"
        self.failures_to_open = failures_to_open
        self.cooldown_seconds = cooldown_seconds
        self.probe_seconds = probe_seconds
        # A probe that never reports (its process died) frees the probe after this long;
        # the hash itself goes once nothing failed for an hour (or the cooldown, if longer).
        self._probe_ms = max(1, math.ceil(probe_seconds * 1000))
        self._cooldown_ms = max(1, math.ceil(cooldown_seconds * 1000))
        self._keep_seconds = max(3600, math.ceil(cooldown_seconds + probe_seconds) + 60)
        self.local = Breaker(failures_to_open, cooldown_seconds)  # while Redis is down

    async def allow(self) -> bool:
        try:
            allowed = await self.store.allow_script(keys=[self.key], args=[self._probe_ms])
        except Exception as exc:
            self.store.down(exc)
            return await self.local.allow()
        self.store.up()
        return bool(int(allowed))

    async def success(self) -> None:
        try:
            await self.store.redis.delete(self.key)
        except Exception as exc:
            self.store.down(exc)
        await self.local.success()

    async def failure(self) -> None:
        try:
            await self.store.failure_script(
                keys=[self.key],
                args=[self.failures_to_open, self._cooldown_ms, self._keep_seconds],
            )
        except Exception as exc:
            self.store.down(exc)
            await self.local.failure()
            return
        self.store.up()

    async def state(self) -> State:
        """What every process sees now (for operators and tests)."""
        open_until = await self.store.redis.hget(self.key, "open_until")
        if not open_until or int(open_until) == 0:
            return State.CLOSED
        seconds, micros = await self.store.redis.time()
        now = seconds * 1000 + micros // 1000
        if now < int(open_until):
            return State.OPEN
        return State.HALF_OPEN
