"""The Date scalar reads only what the contract says it is: an ISO 8601 calendar date."""

from __future__ import annotations

import pytest

from tests.helpers import Api

SETTLE = "mutation S($d: Date!) { runSettlement(businessDate: $d) { batch { businessDate } } }"


@pytest.mark.parametrize(
    "given",
    ["2026-W49-1", "20261201", "2026-335", "24/11/2026", "2026-12-01T00:00", " 2026-12-01"],
)
async def test_a_date_that_is_not_a_calendar_date_is_refused_before_anything_runs(
    api: Api, given: str
) -> None:
    """Python reads week dates ("2026-W49-1"), ordinal dates and the basic form
    ("20261201") as dates too; a client that sent one meant something else."""
    errors = await api.errors(SETTLE, {"d": given})
    assert "YYYY-MM-DD" in errors[0]["message"], errors
    assert (await api.gql("{ settlementBatches(first: 1) { edges { node { id } } } }"))[
        "settlementBatches"
    ]["edges"] == []


async def test_a_calendar_date_is_read(api: Api) -> None:
    made = await api.gql(SETTLE, {"d": "2026-11-30"})
    assert made["runSettlement"]["batch"]["businessDate"] == "2026-11-30"
