"""Orders in the back office: read-only (orders come from shops, the API and imports; they change through the
services, never by editing a row), with their lines and their status history; order policies are edited here.
The order list has an "Import orders from a CSV file" page (``order_import``, the same service as the command)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin, code_html, state_history_table
from quai.core.errors import QuaiError
from quai.orders import services
from quai.orders.models import Order, OrderLine, OrderPolicy, OrderStatus
from quai.orders.services import ORDER_MACHINE
from quai.tenants.models import Merchant


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("position", "sku_code", "quantity", "unit_price", "reserved_quantity", "backordered_quantity")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderImportForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("name"), label=_("merchant"))
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "One row per order line: external_id, channel, priority, currency, shopper_name, shopper_email, "
            "shopper_phone, address_company, address_line1, address_line2, postcode, city, region, country, "
            "carrier_service, promise_id, delivery_from, delivery_by, shipping_total, gift_message, notes, sku, "
            "quantity, unit_price. Rows with the same external_id make one order."
        ),
    )
    dry_run = forms.BooleanField(label=_("Check only (write nothing)"), required=False)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    # Read-only: orders come from the shops, the API and imports through the intake service; status, hold, address
    # and cancellation change through the services (API, agent console).
    change_list_template = "admin/orders/order/change_list.html"
    # A desk screen (1366 px) beside the navigation and the filters: seven short columns, the detail that goes with
    # a value written small under it (channel, hold reason, promised date), the currency with the amount.
    list_display = ("reference", "merchant", "state", "priority", "delivery", "amount", "created_at")
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

    @admin.display(description=_("order"), ordering="external_id")
    def reference(self, order: Order) -> str:
        return format_html("{}<br><small>{}</small>", code_html(order.external_id), order.channel)

    @admin.display(description=_("delivery"), ordering="promised_to")
    def delivery(self, order: Order) -> str:
        if order.promised_to is None:
            return order.carrier_service or "—"
        return format_html(
            "{}<br><small>{}</small>",
            order.carrier_service or "—",
            _("promised by %(date)s") % {"date": date_format(order.promised_to)},
        )

    @admin.display(description=_("status"), ordering="status")
    def state(self, order: Order) -> str:
        if order.hold_reason:
            return format_html("{}<br><small>{}</small>", order.get_status_display(), order.get_hold_reason_display())
        return str(order.get_status_display())

    @admin.display(description=_("total"), ordering="total")
    def amount(self, order: Order) -> str:
        return f"{number_format(order.total, 2)} {order.currency}"

    @admin.display(description=_("status history"))
    def status_history(self, order: Order) -> str:
        return state_history_table(
            aggregate=ORDER_MACHINE.aggregate, aggregate_id=order.pk, labels=dict(OrderStatus.choices)
        )

    def get_urls(self) -> list[Any]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="orders_order_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV of orders: each order imported on its own, the problems listed per row on the page."""
        if not request.user.has_perm("orders.add_order"):
            messages.error(request, _("You may not import orders."))
            return HttpResponseRedirect(reverse("admin:orders_order_changelist"))
        form = OrderImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            try:
                report = services.order_import(
                    merchant=form.cleaned_data["merchant"],
                    text=form.cleaned_data["file"].read(),
                    dry_run=form.cleaned_data["dry_run"],
                    actor=request.user,
                )
            except QuaiError as exc:  # a file that is not UTF-8
                messages.error(request, exc.message)
            else:
                counts = {
                    "created": report.count("created"),
                    "valid": report.count("valid"),
                    "already": report.count("already_there"),
                    "refused": report.count("refused"),
                }
                summary = (
                    _(
                        "Check only, nothing written: %(valid)d order(s) would be created, "
                        "%(already)d already there, %(refused)d refused."
                    )
                    if report.dry_run
                    else _("%(created)d order(s) created, %(already)d already there, %(refused)d refused.")
                ) % counts
                if report.errors:
                    messages.warning(request, summary)
                else:
                    messages.success(request, summary)
                    if not report.dry_run:
                        return HttpResponseRedirect(reverse("admin:orders_order_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import orders from a CSV file"),
            "form": form,
            "errors": report.errors if report else [],
            "errors_csv": services.order_import_errors_csv(report.errors) if report and report.errors else "",
        }
        return TemplateResponse(request, "admin/orders/order/import.html", context)


@admin.register(OrderPolicy)
class OrderPolicyAdmin(admin.ModelAdmin):
    list_display = ("merchant", "release_buffer_minutes", "split_shipments", "updated_at")
    list_filter = ("split_shipments",)
    search_fields = ("merchant__code", "merchant__name")
