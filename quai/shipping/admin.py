"""Back office of shipping: carrier accounts and the SSCC sequence are configured here; shipments, manifests and
tracking events are read-only (the pack station, the truck screen and the carriers write them)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin, code_html
from quai.shipping.models import (
    CarrierAccount,
    Manifest,
    Shipment,
    ShipmentStatus,
    SsccSequence,
    TrackingEventRecord,
)


@admin.register(CarrierAccount)
class CarrierAccountAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "active", "sender_city")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "active", "settings")}),
        (
            _("Sender"),
            {
                "fields": (
                    "sender_name",
                    "sender_line1",
                    "sender_postcode",
                    "sender_city",
                    "sender_country",
                    "sender_phone",
                    "sender_email",
                )
            },
        ),
    )


@admin.register(SsccSequence)
class SsccSequenceAdmin(admin.ModelAdmin):
    list_display = ("company_prefix", "extension_digit", "next_serial")

    def get_readonly_fields(self, request, obj=None):
        # A serial handed out must never come back: the next one only moves forward, through sscc_next.
        return ("next_serial",) if obj is not None else ()


class TrackingEventInline(admin.TabularInline):
    model = TrackingEventRecord
    fields = ("occurred_at", "status", "carrier_code", "description", "location")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ("tracking_column", "order_column", "carrier", "status", "weight_g", "created_at")
    list_filter = ("status", "carrier", "merchant")
    search_fields = ("tracking_number", "sscc", "order_reference")
    list_select_related = ("carrier", "merchant")
    exclude = ("label",)
    inlines = [TrackingEventInline]
    date_hierarchy = "created_at"

    @admin.display(description=_("tracking number"), ordering="tracking_number")
    def tracking_column(self, shipment: Shipment) -> SafeString:
        return format_html("{}<br><small>{}</small>", code_html(shipment.tracking_number), code_html(shipment.sscc))

    @admin.display(description=_("order"), ordering="order_reference")
    def order_column(self, shipment: Shipment) -> SafeString:
        label = reverse("packing_ops:parcel_label", args=[shipment.parcel_id])
        return format_html(
            '{}<br><a href="{}" target="_blank">{}</a>', code_html(shipment.order_reference), label, _("label")
        )


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdmin):
    list_display = ("number_column", "carrier", "status", "closed_at", "missing_count")
    list_filter = ("status", "carrier")
    search_fields = ("number",)
    exclude = ("document", "carrier_document")

    @admin.display(description=_("number"), ordering="number")
    def number_column(self, manifest: Manifest) -> SafeString:
        if not manifest.document:
            return code_html(manifest.number)
        url = reverse("packing_ops:manifest_document", args=[manifest.pk])
        return format_html('<a href="{}" target="_blank">{}</a>', url, code_html(manifest.number))

    @admin.display(description=_("missing parcels"))
    def missing_count(self, manifest: Manifest) -> int:
        return len(manifest.missing or [])


@admin.register(TrackingEventRecord)
class TrackingEventRecordAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "shipment", "status_column", "carrier_code", "description", "location")
    list_filter = ("status", "merchant")
    search_fields = ("shipment__tracking_number", "carrier_code", "description")
    list_select_related = ("shipment",)
    date_hierarchy = "occurred_at"

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, record: TrackingEventRecord) -> str:
        # The normalised scale in words; an event the carrier told but no status maps to shows its own code.
        labels = dict(ShipmentStatus.choices)
        return str(labels.get(record.status, record.status or "—"))
