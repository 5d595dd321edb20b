"""Merchants subscribe a URL to event types; the secret that signs deliveries is shown once."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub import partner_urls
from hub.auth import Principal
from hub.enums import Role, WebhookEvent
from hub.errors import FieldPath, InvalidInput, NotFound
from hub.ids import new_id
from hub.models import WebhookDelivery, WebhookSubscription

MAX_SUBSCRIPTIONS = 20  # per merchant


def check_url(url: str, field: FieldPath, *, allow_private: bool) -> str:
    """An http(s) URL the hub may call (hub.partner_urls: never a metadata service or a
    link-local address; loopback or private only when allowed)."""
    url = url.strip()
    if len(url) > 2000:
        raise InvalidInput("The URL is longer than 2,000 characters.", field=field)
    why = partner_urls.problem(url, allow_private=allow_private, what="url")
    if why is not None:
        raise InvalidInput(why, field=field)
    return url


def events_of(row: WebhookSubscription) -> list[WebhookEvent]:
    return [WebhookEvent(e) for e in row.events.split()]


async def subscribe(
    session: AsyncSession,
    principal: Principal,
    url: str,
    events: Sequence[WebhookEvent],
    *,
    allow_private: bool,
) -> tuple[WebhookSubscription, str]:
    """A new subscription of the caller's merchant (ADMIN: every merchant's events)."""
    url = check_url(url, ("url",), allow_private=allow_private)
    if not events:
        raise InvalidInput("Name at least one event to receive.", field=("events",))
    merchant = principal.merchant_id if principal.role == Role.MERCHANT else None
    existing = await session.scalars(
        select(WebhookSubscription.id).where(
            WebhookSubscription.merchant_id.is_(None)
            if merchant is None
            else WebhookSubscription.merchant_id == merchant,
            WebhookSubscription.active.is_(True),
        )
    )
    if len(list(existing)) >= MAX_SUBSCRIPTIONS:
        raise InvalidInput(
            f"At most {MAX_SUBSCRIPTIONS} active subscriptions; unsubscribe one first.",
            field=(),
        )
    secret = "whsec_" + secrets.token_urlsafe(32)
    row = WebhookSubscription(
        id=new_id("whs"),
        merchant_id=merchant,
        url=url,
        events=" ".join(sorted({e.value for e in events})),
        secret=secret,
        active=True,
        created_by=principal.actor,
    )
    session.add(row)
    await session.flush()
    return row, secret


def _scope(principal: Principal) -> object:
    if principal.role == Role.ADMIN:
        return WebhookSubscription.id.is_not(None)
    return WebhookSubscription.merchant_id == principal.merchant_id


async def unsubscribe(session: AsyncSession, principal: Principal, subscription_id: str) -> None:
    """Stop a subscription; its pending deliveries are not sent."""
    changed = await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, _scope(principal))  # type: ignore[arg-type]
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"No subscription {subscription_id!r} is yours.", field=("id",))


async def visible(session: AsyncSession, principal: Principal) -> list[WebhookSubscription]:
    """The caller's subscriptions (ADMIN: all), newest first."""
    return list(
        await session.scalars(
            select(WebhookSubscription)
            .where(_scope(principal))  # type: ignore[arg-type]
            .order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id)
        )
    )


async def deliveries(
    session: AsyncSession, subscription_id: str, first: int, after: int | None
) -> tuple[list[WebhookDelivery], bool]:
    """A subscription's deliveries, newest first."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(first + 1)
    )
    if after is not None:
        query = query.where(WebhookDelivery.id < after)
    rows = list(await session.scalars(query))
    return rows[:first], len(rows) > first


def retry_deadline(created_at: dt.datetime, hours: float) -> dt.datetime:
    return created_at + dt.timedelta(hours=hours)
