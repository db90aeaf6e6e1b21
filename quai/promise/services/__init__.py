"""Promise services: quoting and tracking (``promises``), configuration (``config``)."""

from quai.promise.services.config import promise_config_dump, promise_config_load
from quai.promise.services.promises import (
    PromiseUnavailable,
    Quote,
    backlog_recount,
    backlog_step,
    on_order_changed,
    on_order_received,
    on_shipment_delivered,
    on_shipment_shipped,
    on_shipment_tracking_event,
    promise_quote,
    promise_record_for_order,
    promise_token,
    promise_token_read,
    promise_watch,
)

__all__ = [
    "PromiseUnavailable",
    "Quote",
    "backlog_recount",
    "backlog_step",
    "on_order_changed",
    "on_order_received",
    "on_shipment_delivered",
    "on_shipment_shipped",
    "on_shipment_tracking_event",
    "promise_config_dump",
    "promise_config_load",
    "promise_quote",
    "promise_record_for_order",
    "promise_token",
    "promise_token_read",
    "promise_watch",
]
