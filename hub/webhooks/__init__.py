"""Outbound webhooks to merchants: the outbox, subscriptions, and signed deliveries."""
