"""Member consent: a member's points move only with that member's consent.

The consent is a member session. A merchant opens one only for a member of its own
programs, and the session records who opened it: one opened by a MERCHANT may take points
out of that merchant's programs only (it may still put points into any program the
member holds: "convert my hotel points into miles" from the hotel's app); one opened by the
platform merchant or by ADMIN covers every program (the universal mall). Linking an
existing member into another program needs that member's session, or ADMIN; for a
connected program the partner confirms the membership number (and name) first.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub.auth import MemberSession, Principal, SessionGrant, SessionTokens
from hub.enums import MerchantCategory, Role
from hub.errors import ConsentRequired, DomainError, FieldPath, Forbidden, NotFound
from hub.models import Account, Member, Merchant, Program


async def open_session(
    session: AsyncSession, tokens: SessionTokens, principal: Principal, member_id: str
) -> MemberSession:
    """createMemberSession: a signed token for the member, carrying what the caller may
    let it do (grant_session)."""
    return tokens.mint(await grant_session(session, principal, member_id, ("member_id",)))


async def grant_session(
    session: AsyncSession, principal: Principal, member_id: str, field: FieldPath
) -> SessionGrant:
    """What a session this caller opens for the member may do; Forbidden when the member is
    not in one of the caller's programs (a merchant opens sessions for its own members)."""
    if principal.role == Role.ADMIN:
        if await session.get(Member, member_id) is None:
            raise NotFound(f"No member has id {member_id!r}.", field=field)
        return SessionGrant(member_id, principal.key_id, Role.ADMIN, None, universal=True)
    merchant = (
        await session.get(Merchant, principal.merchant_id)
        if principal.role == Role.MERCHANT and principal.merchant_id
        else None
    )
    if merchant is None:
        raise Forbidden("Only a MERCHANT or ADMIN key opens member sessions.", field=field)
    enrolled = await session.scalar(
        select(Account.id)
        .join(Program, Program.code == Account.program_code)
        .where(Account.member_id == member_id, Program.merchant_id == merchant.id)
        .limit(1)
    )
    if enrolled is None:
        raise Forbidden(
            f"{merchant.id} opens sessions only for members of its own programs; member "
            f"{member_id!r} is not one (enroll them first, with their consent).",
            field=field,
        )
    return SessionGrant(
        member_id,
        principal.key_id,
        Role.MERCHANT,
        merchant.id,
        universal=merchant.category == MerchantCategory.PLATFORM,
    )


def require_debit(principal: Principal, program: Program, field: FieldPath) -> None:
    """A member session takes points only out of programs its minter may debit."""
    if principal.member_id is None:
        return  # ADMIN acting without a session (a storefront without one is refused earlier)
    grant = principal.session
    if grant is not None and grant.may_debit(program.merchant_id):
        return
    minter = grant.merchant_id if grant is not None else "an unknown key"
    raise Forbidden(
        f"This member session was opened by {minter}: it may spend {minter}'s points only, "
        f"not {program.code}. Spend {program.code} from a session of {program.merchant_id} "
        "or of the platform's mall.",
        field=field,
    )


def require_link_consent(principal: Principal, member_id: str, field: FieldPath) -> None:
    """Linking an existing member needs that member's own session, or ADMIN. A session a
    merchant minted is its own word, not the member's (it needs no member present): it links
    her only into that merchant's own programs; into another merchant's, only the member in
    the universal mall (a session the platform or ADMIN minted) consents."""
    if principal.role == Role.ADMIN:
        return
    grant = principal.session
    if (
        grant is not None
        and principal.member_id == member_id
        and (grant.universal or grant.merchant_id == principal.merchant_id)
    ):
        return
    raise ConsentRequired(
        "Linking an existing member into another program needs that member's consent: send "
        "the member's own session token (X-Member-Token, from createMemberSession) with "
        "this key, or ask an ADMIN.",
        field=field,
    )


def _words(name: str) -> set[str]:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return {w for w in re.split(r"[\W_]+", folded) if w}


def same_person(given: str, partner: str) -> bool:
    """Whether two spellings of a name can be the same person: every word of the shorter is
    in the longer ('Wang Fang' and '王芳 WANG FANG' can; 'Wang Fang' and 'Li Wei' cannot)."""
    a, b = _words(given), _words(partner)
    return bool(a and b) and (a <= b or b <= a)


async def confirm_membership(
    factory: ConnectorFactory, program: Program, external_ref: str, name: str, field: FieldPath
) -> None:
    """A connected program's partner confirms the membership number, and the name when it
    tells one; NotFound (naming the partner) when it does not know them."""
    connector = factory.for_program(program, None, "enroll")
    partner = program.merchant_id
    try:
        record = await connector.lookup(external_ref)
    except DomainError as exc:
        if exc.code == NotFound.code:
            raise NotFound(
                f"{exc.message} Check the membership number with the member.",
                field=(*field, "external_ref"),
                said=exc.said,
            ) from None
        raise type(exc)(
            exc.message, field=(*field, "external_ref"), code=exc.code, said=exc.said
        ) from None
    if record.name is not None and not same_person(name, record.name):
        raise NotFound(
            f"{partner} has no member named {name!r} with membership number {external_ref!r} "
            f"in {program.code}: {partner} holds that number under another name. Check the "
            "number and the name with the member.",
            field=(*field, "display_name"),
        )
