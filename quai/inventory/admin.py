"""Stock in the back office: the ledger and quantities read-only (services are the only writers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from quai.inventory.models import (
    MoveTask,
    Reservation,
    ReservationAllocation,
    StockLevel,
    StockMovement,
    StockPolicy,
    StockQuantity,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "occurred_at",
        "kind",
        "merchant",
        "sku",
        "lot",
        "from_location",
        "to_location",
        "quantity",
        "actor",
    )
    list_filter = ("kind", "merchant", "to_status")
    search_fields = ("sku__code", "lot", "serial", "document_id", "reason")
    list_select_related = ("merchant", "sku", "from_location", "to_location", "actor")
    date_hierarchy = "occurred_at"


@admin.register(StockQuantity)
class StockQuantityAdmin(ReadOnlyAdmin):
    list_display = ("location", "merchant", "sku", "lot", "expiry", "status", "on_hand", "reserved", "counted")
    list_filter = ("status", "counted", "merchant")
    search_fields = ("sku__code", "location__code", "lot")
    list_select_related = ("merchant", "sku", "location")


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "sku", "on_hand", "reserved", "available")
    list_filter = ("merchant",)
    search_fields = ("sku__code",)
    list_select_related = ("merchant", "sku")


class AllocationInline(admin.TabularInline):
    model = ReservationAllocation
    extra = 0
    can_delete = False
    readonly_fields = ("location", "lot", "expiry", "quantity", "consumed_quantity", "created_at")
    exclude = ("stock",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "merchant",
        "sku",
        "status",
        "quantity",
        "consumed_quantity",
        "released_quantity",
        "created_at",
    )
    list_filter = ("status", "merchant")
    search_fields = ("sku__code", "document_id")
    list_select_related = ("merchant", "sku")
    inlines = [AllocationInline]


@admin.register(StockPolicy)
class StockPolicyAdmin(admin.ModelAdmin):
    list_display = ("merchant", "sku", "safety_buffer", "min_shelf_life_days")
    list_filter = ("merchant",)
    raw_id_fields = ("sku",)


@admin.register(MoveTask)
class MoveTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "sku", "from_location", "to_location", "quantity", "status", "created_at")
    list_filter = ("status",)
