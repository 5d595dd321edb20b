"""A connected program's balance as a member reads it: asked of the partner (all of a
request's at once), kept on the account row when it changed or the kept one is older than
KEEP_FOR (reading balances must not write on every request), and the last known one while
the partner gives no usable answer or refuses (an error only when none is known)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from connectors.base import ConnectorFactory, MemberAccount, unsaid
from hub import members, merchants
from hub.db import Database, utcnow
from hub.errors import DomainError, PartnerUnavailable
from hub.member_view import AccountView
from hub.models import Program

log = structlog.get_logger(__name__)

KEEP_FOR = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class PartnerBalance:
    points: int
    as_of: dt.datetime
    # The partner refused to give it now (it answered, say, 404): this is the last known
    # one. A member's list of accounts shows it; the account asked for alone, the refusal.
    refusal: DomainError | None = None


def _worth_keeping(account: AccountView, answer: PartnerBalance) -> bool:
    stored_at = account.partner_balance_at
    return (
        account.partner_balance != answer.points
        or stored_at is None
        or answer.as_of - stored_at > KEEP_FOR
    )


async def _ask(
    factory: ConnectorFactory, account: AccountView, program: Program
) -> PartnerBalance | DomainError:
    """The partner's answer, or why there is none: PARTNER_UNAVAILABLE when it gave none
    the hub can use, else its refusal. One partner's failure, whatever it is, stays on its
    own accounts."""
    assert account.member_id and account.external_ref
    connector = factory.for_program(program, None, "balance")
    try:
        points = await connector.balance(
            MemberAccount(account.member_id, program.code, account.external_ref)
        )
    except DomainError as failed:
        return failed
    except Exception:  # a connector's own failure: no answer, and the log says why
        log.exception("a partner balance could not be read", program=program.code)
        return PartnerUnavailable(f"{program.code}'s partner gave an answer the hub cannot read.")
    return PartnerBalance(points=points, as_of=utcnow())


async def read(
    db: Database, factory: ConnectorFactory, accounts: Sequence[AccountView]
) -> list[PartnerBalance | DomainError]:
    """Each account's balance at its partner, in order: the answer; else the last known one
    (the partner gave no usable answer, or refused); else the error to show (its refusal,
    or PARTNER_UNAVAILABLE)."""
    async with db.read() as session:
        programs = await merchants.programs_by_code(
            session, list({a.program_code for a in accounts})
        )
    answers = await asyncio.gather(*(_ask(factory, a, programs[a.program_code]) for a in accounts))
    fresh = {
        a.id: b
        for a, b in zip(accounts, answers, strict=True)
        if isinstance(b, PartnerBalance) and _worth_keeping(a, b)
    }
    if fresh:
        await db.transaction(lambda s: members.remember_partner_balances(s, fresh))
    results: list[PartnerBalance | DomainError] = []
    for account, answer in zip(accounts, answers, strict=True):
        last, last_at = account.partner_balance, account.partner_balance_at
        if isinstance(answer, PartnerBalance):
            results.append(answer)
        elif last is not None and last_at is not None:
            # No answer, or a refusal: the last balance the partner gave, with when it gave
            # it (and the refusal, which a list of accounts does not raise: an error there
            # would take every other account of the member with it, as the contract's
            # balance is non-null). A refusal is logged for the operators.
            refusal = None if isinstance(answer, PartnerUnavailable) else answer
            if refusal is not None:
                log.warning(
                    "a partner refused a balance it gave before",
                    program=account.program_code,
                    refusal=unsaid(refusal.message, refusal.said),  # no names in logs
                )
            results.append(PartnerBalance(last, last_at, refusal))
        elif isinstance(answer, PartnerUnavailable):
            results.append(
                PartnerUnavailable(
                    f"The balance in {account.program_code} is not known yet: {answer.message}"
                )
            )
        else:
            results.append(answer)  # the partner's refusal, and no balance known
    return results
