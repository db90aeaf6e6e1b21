"""Every write to stock: movements (the ledger), quantities, the SKU-level counter, reservations, counts.

One module per sub-domain — ``movements`` (the ledger writes), ``reservations``, ``availability`` (incoming
sources, which places count, stock policies), ``move_tasks`` (emptying a zone), ``counts`` (cycle counts) — and
this package re-exports their public names, so callers import ``quai.inventory.services`` as one module.

Concurrency rules (the same on SQLite and PostgreSQL), kept by every sub-module:

- every quantity changes by a guarded single-statement update (``UPDATE … SET x = x ± n WHERE … AND guard``);
  zero rows updated means "not enough" and becomes ``InsufficientStock`` (code ``insufficient_stock``), and the
  check constraints of ``models.py`` back the guards up;
- rows are always taken in one global order, so two transactions never wait on each other in a circle:
  zone (shared key lock) → reservation → stock quantities (primary-key order) → stock level;
- a reservation is one guarded update of the merchant-SKU ``StockLevel`` row, issued *last* in its transaction
  so the hot row is held only for that statement and the commit;
- SQLite ignores ``SELECT … FOR UPDATE``; its transactions open ``IMMEDIATE`` (settings), so writers queue up.

Every service records its events in the outbox in the same transaction as the change. Reads live in
``quai.inventory.selectors``, which never imports this package.
"""

from quai.inventory.services.availability import (
    CountingSyncReport,
    IncomingSource,
    incoming_sources,
    register_incoming_source,
    stock_counting_sync,
    stock_policy_set,
    unregister_incoming_source,
)
from quai.inventory.services.counts import (
    COUNT_REASON,
    CountedItem,
    count_approve,
    count_line_set,
    count_reject,
    count_scan,
    count_submit,
    count_task_cancel,
    count_task_create,
    count_task_transition,
)
from quai.inventory.services.move_tasks import move_task_complete, zone_close_check, zone_empty_tasks
from quai.inventory.services.movements import stock_adjust, stock_count, stock_move, stock_receive, zone_is_active
from quai.inventory.services.parcels import parcel_stock_pack, parcel_stock_ship  # noqa: F401
from quai.inventory.services.reservations import (
    ALLOCATABLE_ZONE_KINDS,
    LockedLevels,
    ReservationRequest,
    reservation_allocate,
    reservation_consume,
    reservation_create,
    reservation_move,
    reservation_release,
    reservation_shrink,
    reservations_create_many,
    stock_levels_lock,
)
from quai.inventory.services.totes import reservation_pick_to, reservation_release_at  # noqa: F401

__all__ = [
    "ALLOCATABLE_ZONE_KINDS",
    "COUNT_REASON",
    "CountedItem",
    "CountingSyncReport",
    "IncomingSource",
    "LockedLevels",
    "ReservationRequest",
    "count_approve",
    "count_line_set",
    "count_reject",
    "count_scan",
    "count_submit",
    "count_task_cancel",
    "count_task_create",
    "count_task_transition",
    "incoming_sources",
    "move_task_complete",
    "register_incoming_source",
    "reservation_allocate",
    "reservation_consume",
    "reservation_create",
    "reservation_move",
    "reservation_release",
    "reservation_shrink",
    "reservations_create_many",
    "stock_adjust",
    "stock_count",
    "stock_counting_sync",
    "stock_levels_lock",
    "stock_move",
    "stock_policy_set",
    "stock_receive",
    "unregister_incoming_source",
    "zone_close_check",
    "zone_empty_tasks",
    "zone_is_active",
]
