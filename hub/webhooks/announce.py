"""What each saga's outcome tells the merchants concerned, written in the outcome's own
transaction through the outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hub.enums import WebhookEvent
from hub.merchants import program_of
from hub.models import Conversion, Redemption
from hub.sagas import failure_of
from hub.webhooks import outbox


async def _merchants_of(session: AsyncSession, *codes: str) -> list[str]:
    """The merchants running these programs (from the process's memory when it keeps the
    programs: they never change owner)."""
    found = [await program_of(session, code) for code in codes]
    return [program.merchant_id for program in found if program is not None]


async def conversion(session: AsyncSession, event: WebhookEvent, c: Conversion) -> None:
    """CONVERSION_COMPLETED or CONVERSION_FAILED (with why, as the API says it), to the
    source's and destination's merchants."""
    completed = event == WebhookEvent.CONVERSION_COMPLETED
    data: dict[str, object] = {
        "conversionId": c.id,
        "memberId": c.member_id,
        "from": c.from_code,
        "to": c.to_code,
        # A failed or reversed conversion moved nothing in the end, as the API says.
        "pointsDebited": c.points_debited if completed else 0,
        "pointsCredited": c.points_credited if completed else 0,
        "status": c.status,
    }
    await outbox.emit(
        session, event, await _merchants_of(session, c.from_code, c.to_code), _why(c, data)
    )


async def redemption(session: AsyncSession, event: WebhookEvent, r: Redemption) -> None:
    """A redemption's end (REDEMPTION_CONFIRMED, _FAILED, _CANCELLED) or its merchant's
    refusal of a cancellation (REDEMPTION_CANCELLATION_REFUSED: it stays confirmed), to the
    reward's and the payer's merchant; a failure or a refusal says why, as the API does."""
    merchants = [r.merchant_id, *await _merchants_of(session, r.paid_with)]
    data: dict[str, object] = {
        "redemptionId": r.id,
        "memberId": r.member_id,
        "rewardId": r.reward_id,
        "quantity": r.quantity,
        "paidWith": r.paid_with,
        "points": r.points,
        "refundedPoints": r.refunded_points,
        "compensationPoints": r.compensation_points,
    }
    await outbox.emit(session, event, merchants, _why(r, data))


def _why(row: Conversion | Redemption, data: dict[str, object]) -> dict[str, object]:
    """An event's data with the saga's failure, when it has one (its code and message, as a
    merchant may read it: without a partner's own words, which may name the member)."""
    failure = failure_of(row, words=False)
    if failure is not None:
        data["failure"] = {"code": failure.code.value, "message": failure.message}
    return data
