"""`hub serve` as a real process, for tests that kill it or reach it over a socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from connectors.sandbox.runner import free_port
from tests.helpers import ADMIN_KEY


class HubProcess:
    def __init__(
        self,
        db_url: str,
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.db_url = db_url
        self.workers = workers
        self.port = free_port()
        self.extra = env or {}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "HUB_DATABASE_URL": self.db_url,
            "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_SETTLEMENT_AT": "off",
            **self.extra,
        }
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "hub", "serve", "--port", str(self.port)),
                *("--workers", str(self.workers)),
            ],
            env=env,
            stdout=out,
            stderr=out,
        )

    async def start(self) -> None:
        self.proc = self._spawn()
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub serve exited with {self.proc.returncode}")
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("hub serve did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        key: str = ADMIN_KEY,
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                self.url + "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {key}"},
            )
        body: dict[str, Any] = response.json()
        return body


def partner_env(secrets: dict[str, str]) -> dict[str, str]:
    """The environment of a hub whose partners are sandboxes on this machine."""
    return {"HUB_PARTNER_SECRETS": json.dumps(secrets), "HUB_ALLOW_PRIVATE_PARTNERS": "1"}
