"""Outbound webhooks: subscriptions (``subscriptions``) and deliveries (``deliveries``); the public names here."""

from quai.integrations.services.deliveries import (
    PING_EVENT,
    webhook_attempt_record,
    webhook_deliveries_claim,
    webhook_deliveries_nudge,
    webhook_deliveries_send_due,
    webhook_delivery_replay,
    webhook_delivery_send,
    webhook_fan_out,
    webhook_subscription_ping,
)
from quai.integrations.services.subscriptions import (
    WebhookUrlNotPublic,
    private_urls_allowed,
    webhook_event_types_clean,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate_secret,
    webhook_subscription_secrets,
    webhook_subscription_update,
    webhook_url_check,
)

__all__ = [
    "PING_EVENT",
    "WebhookUrlNotPublic",
    "private_urls_allowed",
    "webhook_attempt_record",
    "webhook_deliveries_claim",
    "webhook_deliveries_nudge",
    "webhook_deliveries_send_due",
    "webhook_delivery_replay",
    "webhook_delivery_send",
    "webhook_event_types_clean",
    "webhook_fan_out",
    "webhook_subscription_create",
    "webhook_subscription_delete",
    "webhook_subscription_ping",
    "webhook_subscription_rotate_secret",
    "webhook_subscription_secrets",
    "webhook_subscription_update",
    "webhook_url_check",
]
