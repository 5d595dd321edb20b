"""The one hierarchy of domain errors; each carries the contract's ErrorCode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, TypedDict

from hub.enums import ErrorCode

FieldPath = tuple[str, ...]
"""Where in a request an error lies, in the domain's own names (`("quote_id",)`,
`("adjustments", "2", "amount")`); `schema.errors` turns it into the GraphQL path."""


def spelled(part: str) -> str:
    """A domain name as the contract spells it for every caller (GraphQL, the import
    files, messages): `quote_id` -> `quoteId`; an index stays as it is."""
    head, *rest = part.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


class Failure(TypedDict):
    """Why a saga failed, kept on its row and reported to whoever asks again."""

    code: str
    message: str
    field: str
    # The message without the partner's own words in it, where it has them: what those
    # who may not see the member read instead (hub.sagas.record_failure, failure_of).
    withheld: NotRequired[str]


# What stands for a partner's own words for a caller who may not see the member.
WITHHELD = "The partner's reason is shown to the member"


class DomainError(Exception):
    """An expected failure a caller can act on; becomes a userError."""

    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(
        self,
        message: str,
        *,
        field: Sequence[str] | None = None,
        code: ErrorCode | None = None,
        said: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field: FieldPath | None = tuple(field) if field is not None else None
        if code is not None:
            self.code = code
        # A partner's own words in `message`: they may name the member, so only whoever may
        # see the member reads them (`told`).
        self.said = said if said and said in message else None

    def told(self, *, words: bool) -> str:
        """The message as this caller may read it: with the partner's words, or with
        WITHHELD in their place."""
        if words or self.said is None:
            return self.message
        return self.message.replace(self.said, WITHHELD)


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class BalanceLimit(InvalidInput):
    """A credit would take a balance past what GraphQL's Int can show."""


class MovementLimit(InvalidInput):
    """One leg of a route would carry more points than one movement may."""


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class AlreadyExists(DomainError):
    code = ErrorCode.ALREADY_EXISTS


class InsufficientPoints(DomainError):
    code = ErrorCode.INSUFFICIENT_POINTS


class InvalidState(DomainError):
    code = ErrorCode.INVALID_STATE


class IdempotencyConflict(DomainError):
    code = ErrorCode.IDEMPOTENCY_CONFLICT


class PartnerUnavailable(DomainError):
    code = ErrorCode.PARTNER_UNAVAILABLE


class PartnerRejected(DomainError):
    code = ErrorCode.PARTNER_REJECTED


class ConsentRequired(DomainError):
    code = ErrorCode.CONSENT_REQUIRED


class NotEligible(DomainError):
    code = ErrorCode.NOT_ELIGIBLE


class RateNotConfigured(DomainError):
    code = ErrorCode.RATE_NOT_CONFIGURED


class BelowMinimum(DomainError):
    code = ErrorCode.BELOW_MINIMUM


class NotAMultipleOfStep(DomainError):
    code = ErrorCode.NOT_A_MULTIPLE_OF_STEP


class LimitExceeded(DomainError):
    code = ErrorCode.LIMIT_EXCEEDED


class QuoteExpired(DomainError):
    code = ErrorCode.QUOTE_EXPIRED


class OutOfStock(DomainError):
    code = ErrorCode.OUT_OF_STOCK


class SlotUnavailable(DomainError):
    code = ErrorCode.SLOT_UNAVAILABLE


class NotAllowed(Exception):
    """The caller's role may not do this at all: a top-level FORBIDDEN, not a userError."""


class RetryTransaction(Exception):
    """Raised inside a transaction to run it again from the start (a lost race)."""


class LostConnection(RetryTransaction):
    """The database connection was lost where the transaction can safely run again (see
    Database.transaction); raised as is when the attempts ran out."""
