"""The seeded fault simulation, short: a few hundred operations per backend in `make test`.

Long runs: `make simulate SEED=... OPS=...`. Nothing is avoided: the defects of issue 15 it
was first run against are fixed (tests/simulation/sim.py KNOWN_BUGS is empty).
"""

from __future__ import annotations

import os

import pytest

from hub.config import Settings
from tests.helpers import ADMIN_KEY
from tests.simulation.sim import Simulation, SimulationFailure, simulate

SEED = int(os.environ.get("HUB_SIM_SEED", "15"))
OPS = int(os.environ.get("HUB_SIM_OPS", "300"))


async def test_a_seeded_run_of_faults_and_restarts_loses_and_creates_no_point(
    db_url: str,
) -> None:
    summary = await simulate(SEED, OPS, db_url)
    # The run did what it is for: every kind of operation, faults, restarts.
    assert set(summary.operations) >= {"accrue", "convert", "redeem", "cancel_member"}
    assert summary.outcomes["COMPLETED"] and summary.outcomes["CANCELLED"]
    assert sum(summary.faults.values()) > 0 and summary.quiesces >= 1
    print(summary.line())


def test_a_failure_says_how_to_replay_it() -> None:
    settings = Settings(database_url="sqlite+aiosqlite://", bootstrap_admin_key=ADMIN_KEY)
    simulation = Simulation(7, 300, settings)
    simulation.trace = ["#3 redeem abc -> CONFIRMED", "#4 cancel by member x1234567 -> CANCELLED"]
    with pytest.raises(SimulationFailure) as failed:
        simulation._fail("reconciliation: rdm_0000x1234567:refund only at the hub")
    message = str(failed.value)
    assert "replay with make simulate SEED=7 OPS=300" in message
    assert "#4 cancel by member x1234567" in message
