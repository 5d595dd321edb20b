"""Outbound webhooks: subscribe, unsubscribe, and the subscriptions with their deliveries."""

from __future__ import annotations

import datetime as dt

import strawberry

from hub.enums import WebhookEvent as DomainWebhookEvent
from hub.models import WebhookDelivery as DeliveryRow
from hub.models import WebhookSubscription as SubscriptionRow
from hub.permissions import Action
from hub.webhooks import subscriptions as service
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import DeliveryStatus, WebhookEvent
from schema.errors import ARGUMENTS, UserError
from schema.pagination import Connection, decode_int_cursor, page_size


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event: WebhookEvent  # type: ignore[valid-type]
    status: DeliveryStatus  # type: ignore[valid-type]
    attempts: int
    last_status_code: int | None
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        return from_attributes(
            cls, row, id=strawberry.ID(str(row.id)), event=DomainWebhookEvent(row.event_type)
        )


@strawberry.type(description="A URL that receives signed events; the secret is shown once.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    events: list[WebhookEvent]  # type: ignore[valid-type]
    active: bool
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: SubscriptionRow) -> WebhookSubscription:
        return from_attributes(cls, row, id=strawberry.ID(row.id), events=service.events_of(row))

    @strawberry.field(description="Newest first.")
    async def deliveries(
        self, info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[WebhookDelivery]:
        size = page_size(first)
        start = decode_int_cursor("delivery", after or None)
        rows, more = await info.context.read(
            lambda s: service.deliveries(s, str(self.id), size, start)
        )
        return Connection.of("delivery", [(WebhookDelivery.from_row(r), r.id) for r in rows], more)


@strawberry.input
class WebhookInput:
    url: str
    events: list[WebhookEvent]  # type: ignore[valid-type]


@strawberry.type
class SubscribeWebhookPayload:
    subscription: WebhookSubscription | None
    secret: str | None = strawberry.field(description="Shown once: deliveries are signed with it.")
    user_errors: list[UserError]


@strawberry.type
class UnsubscribeWebhookPayload:
    ok: bool
    user_errors: list[UserError]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="A MERCHANT for its own events, or ADMIN for every event.")
    async def subscribe_webhook(self, info: Info, input: WebhookInput) -> SubscribeWebhookPayload:
        principal = info.context.require(Action.MANAGE_WEBHOOKS)
        settings = info.context.runtime.settings
        events = [DomainWebhookEvent(e) for e in input.events]
        made, errors = await info.context.write(
            lambda s: service.subscribe(
                s,
                principal,
                input.url,
                events,
                allow_private=settings.allow_private_partners,
            )
        )
        if made is None:
            return SubscribeWebhookPayload(subscription=None, secret=None, user_errors=errors)
        row, secret = made
        return SubscribeWebhookPayload(
            subscription=WebhookSubscription.from_row(row), secret=secret, user_errors=[]
        )

    @strawberry.mutation(description="Stop a subscription; what is pending is not sent.")
    async def unsubscribe_webhook(self, info: Info, id: strawberry.ID) -> UnsubscribeWebhookPayload:
        principal = info.context.require(Action.MANAGE_WEBHOOKS)
        _, errors = await info.context.write(
            lambda s: service.unsubscribe(s, principal, str(id)), under=ARGUMENTS
        )
        return UnsubscribeWebhookPayload(ok=not errors, user_errors=errors)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="A MERCHANT's own subscriptions; ADMIN sees all.")
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        principal = info.context.require(Action.MANAGE_WEBHOOKS)
        rows = await info.context.read(lambda s: service.visible(s, principal))
        return [WebhookSubscription.from_row(r) for r in rows]
