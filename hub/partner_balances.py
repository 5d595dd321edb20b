"""A connected program's balance as a member reads it: asked of the partner (all of a
request's at once), kept on the account row when it changed or the kept one is older than
KEEP_FOR (reading balances must not write on every request), and the last known one while
the partner does not answer."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import ConnectorFactory, MemberAccount
from hub import members, merchants
from hub.db import Database, utcnow
from hub.errors import DomainError, PartnerUnavailable
from hub.member_view import AccountView
from hub.models import Program

KEEP_FOR = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class PartnerBalance:
    points: int
    as_of: dt.datetime


def _worth_keeping(account: AccountView, answer: PartnerBalance) -> bool:
    stored_at = account.partner_balance_at
    return (
        account.partner_balance != answer.points
        or stored_at is None
        or answer.as_of - stored_at > KEEP_FOR
    )


async def _ask(
    factory: ConnectorFactory, account: AccountView, program: Program
) -> PartnerBalance | DomainError | None:
    """The partner's answer; None when it did not answer; its refusal as the error (a
    refusal is the partner's answer, never reported as "not answering")."""
    assert account.member_id and account.external_ref
    connector = factory.for_program(program, None, "balance")
    try:
        points = await connector.balance(
            MemberAccount(account.member_id, program.code, account.external_ref)
        )
    except PartnerUnavailable:
        return None
    except DomainError as refused:
        return refused
    return PartnerBalance(points=points, as_of=utcnow())


async def read(
    db: Database, factory: ConnectorFactory, accounts: Sequence[AccountView]
) -> list[PartnerBalance | DomainError]:
    """Each account's balance at its partner, in order: the answer, the last known one
    while the partner does not answer, or the error to show (a refusal, or
    PARTNER_UNAVAILABLE when the hub never learned one)."""
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
        if answer is not None:
            results.append(answer)
        elif account.partner_balance is not None and account.partner_balance_at is not None:
            results.append(PartnerBalance(account.partner_balance, account.partner_balance_at))
        else:
            results.append(
                PartnerUnavailable(
                    f"{account.program_code} is not answering and its balance is not known "
                    "yet; try again shortly."
                )
            )
    return results
