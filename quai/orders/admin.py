"""Orders in the back office: read-only (orders come from shops, the API and imports; they change through the
services, never by editing a row), with their lines and their status history; order policies are edited here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from quai.core.admin import state_history_table
from quai.orders.models import Order, OrderLine, OrderPolicy, OrderStatus
from quai.orders.services import ORDER_MACHINE


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("position", "sku_code", "quantity", "unit_price", "reserved_quantity", "backordered_quantity")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "external_id",
        "channel",
        "merchant",
        "status",
        "hold_reason",
        "priority",
        "carrier_service",
        "promised_to",
        "total",
        "currency",
        "created_at",
    )
    list_filter = ("status", "priority", "carrier_service", "hold_reason", "channel", "merchant")
    search_fields = ("external_id", "shopper_name", "shopper_email", "merchant__code")
    date_hierarchy = "created_at"
    list_select_related = ("merchant",)
    inlines = (OrderLineInline,)
    fieldsets = (
        (None, {"fields": ("merchant", "channel", "external_id", "status", "held_from", "hold_reason", "priority")}),
        (_("Shopper"), {"fields": ("shopper_name", "shopper_email", "shopper_phone")}),
        (
            _("Shipping address"),
            {"fields": ("ship_company", "address_line1", "address_line2", "postcode", "city", "region", "country")},
        ),
        (
            _("Delivery"),
            {"fields": ("carrier_service", "promise_id", "promised_from", "promised_to", "release_after")},
        ),
        (_("Amounts"), {"fields": ("currency", "lines_total", "shipping_total", "total")}),
        (_("Messages"), {"fields": ("gift_message", "notes")}),
        (_("History"), {"fields": ("status_history", "version", "created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [str(name) for _title, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from the shops, the API and imports, through the intake service

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # status, hold, address and cancellation change through the services (API, agent console)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("status history"))
    def status_history(self, order: Order) -> str:
        return state_history_table(
            aggregate=ORDER_MACHINE.aggregate, aggregate_id=order.pk, labels=dict(OrderStatus.choices)
        )


@admin.register(OrderPolicy)
class OrderPolicyAdmin(admin.ModelAdmin):
    list_display = ("merchant", "release_buffer_minutes", "split_shipments", "updated_at")
    list_filter = ("split_shipments",)
    search_fields = ("merchant__code", "merchant__name")
