"""Outbound webhooks: subscriptions (``subscriptions``) and deliveries (``deliveries``); shop connections
(``connections`` for their set-up, then one module per step of the sync engine: ``inbound``, ``processing``,
``polling``, ``stock_out``, ``reconcile``, ``pushes``, ``sweep``); the public names here."""

from quai.integrations.services.connections import (
    connection_adapter,
    connection_config,
    connection_create,
    connection_delete,
    connection_health,
    connection_inbound_url,
    connection_subscribe,
    connection_task,
    connection_update,
    connections_get_any,
    connections_pollable,
    connections_stock_pushing,
)
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
from quai.integrations.services.inbound import Answer, Unauthorised, connection_receive
from quai.integrations.services.polling import connection_poll
from quai.integrations.services.processing import inbound_delivery_process, inbound_delivery_retry, on_sku_created
from quai.integrations.services.pushes import (
    call_create,
    connection_push_fulfilment,
    connection_push_refund,
    connector_call_run,
)
from quai.integrations.services.reconcile import ReconcileReport, connection_stock_reconcile
from quai.integrations.services.shipments import on_shipment_shipped
from quai.integrations.services.stock_out import connection_stock_levels, connection_stock_push, on_stock_event
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
from quai.integrations.services.sweep import connections_sweep_due

__all__ = [
    "PING_EVENT",
    "Answer",
    "ReconcileReport",
    "Unauthorised",
    "WebhookUrlNotPublic",
    "call_create",
    "connection_adapter",
    "connection_config",
    "connection_create",
    "connection_delete",
    "connection_health",
    "connection_inbound_url",
    "connection_poll",
    "connection_push_fulfilment",
    "connection_push_refund",
    "connection_receive",
    "connection_stock_levels",
    "connection_stock_push",
    "connection_stock_reconcile",
    "connection_subscribe",
    "connection_task",
    "connection_update",
    "connections_get_any",
    "connections_pollable",
    "connections_stock_pushing",
    "connections_sweep_due",
    "connector_call_run",
    "inbound_delivery_process",
    "inbound_delivery_retry",
    "on_shipment_shipped",
    "on_sku_created",
    "on_stock_event",
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
