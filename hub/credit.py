"""setMemberCredit: a member's credit level, fed by an external credit system (ADMIN).

The level is the member's own business: it is shown to the member and ADMIN only, and
never put in a webhook or a log."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import NO_KEY_UPDATE, utcnow
from hub.enums import CreditLevel
from hub.errors import NotFound
from hub.models import Member


async def set_member_credit(session: AsyncSession, member_id: str, level: CreditLevel) -> Member:
    """Record the member's credit level as the credit system gave it (setting it again to
    the same level changes nothing but the time it was last confirmed)."""
    member = await session.get(Member, member_id, with_for_update=NO_KEY_UPDATE)
    if member is None:
        raise NotFound(f"No member has id {member_id!r}.", field=("member_id",))
    member.credit_level = level.value
    member.credit_level_at = utcnow()
    await session.flush()
    return member
