"""Every write to orders: intake (validate, then write once per external id), allocation to stock through the
inventory's reservations, and the lifecycle (cancel, hold, address, release), each status change through
``order_transition``. One module per sub-domain; this package re-exports their public names."""

from quai.orders.services.allocation import (
    DOCUMENT_TYPE,
    backorders_allocate,
    line_document_id,
    on_stock_changed,
    order_backorder_allocate,
)
from quai.orders.services.csv_import import order_csv_text, order_import, order_import_errors_csv
from quai.orders.services.intake import (
    DraftLine,
    OrderCreated,
    OrderDraft,
    address_validate,
    order_create,
    order_validate,
)
from quai.orders.services.lifecycle import (
    order_address_change,
    order_cancel,
    order_hold,
    order_locked,
    order_policy_get,
    order_policy_set,
    order_release,
    order_release_hold,
    orders_release_due,
)
from quai.orders.services.transitions import ORDER_MACHINE, order_transition

__all__ = [
    "DOCUMENT_TYPE",
    "ORDER_MACHINE",
    "DraftLine",
    "OrderCreated",
    "OrderDraft",
    "address_validate",
    "backorders_allocate",
    "line_document_id",
    "on_stock_changed",
    "order_address_change",
    "order_backorder_allocate",
    "order_cancel",
    "order_create",
    "order_csv_text",
    "order_hold",
    "order_import",
    "order_import_errors_csv",
    "order_locked",
    "order_policy_get",
    "order_policy_set",
    "order_release",
    "order_release_hold",
    "order_transition",
    "order_validate",
    "orders_release_due",
]
