"""The contract's enums, exposed from the domain's."""

from __future__ import annotations

import strawberry

from hub import enums

Role = strawberry.enum(enums.Role)
MerchantCategory = strawberry.enum(enums.MerchantCategory)
MerchantStatus = strawberry.enum(enums.MerchantStatus)
ConnectorKind = strawberry.enum(enums.ConnectorKind)
RewardKind = strawberry.enum(enums.RewardKind)
ProgramKind = strawberry.enum(enums.ProgramKind)
EntryKind = strawberry.enum(enums.EntryKind)
ConversionStatus = strawberry.enum(enums.ConversionStatus)
RedemptionStatus = strawberry.enum(enums.RedemptionStatus)
CancellationReason = strawberry.enum(enums.CancellationReason)
ObligationKind = strawberry.enum(enums.ObligationKind)
BatchStatus = strawberry.enum(enums.BatchStatus)
StatementStatus = strawberry.enum(enums.StatementStatus)
DisputeResolution = strawberry.enum(enums.DisputeResolution)
WebhookEvent = strawberry.enum(enums.WebhookEvent)
DeliveryStatus = strawberry.enum(enums.DeliveryStatus)
ErrorCode = strawberry.enum(enums.ErrorCode)
ReconciliationStatus = strawberry.enum(enums.ReconciliationStatus)
CreditLevel = strawberry.enum(enums.CreditLevel)
ImportStatus = strawberry.enum(enums.ImportStatus)
