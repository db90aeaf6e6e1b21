"""Back office of packing: parcels read-only (the pack station writes them), with their items and photo."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin, code_html
from quai.packing.models import Parcel, ParcelItem


class ParcelItemInline(admin.TabularInline):
    model = ParcelItem
    fields = ("sku_code", "name", "lot", "expected", "scanned")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Parcel)
class ParcelAdmin(ReadOnlyAdmin):
    list_display = ("parcel_column", "status", "packaging_code", "weight_column", "carrier_code", "closed_at")
    list_filter = ("status", "carrier_code", "merchant")
    search_fields = ("order_reference", "tote_code")
    list_select_related = ("merchant",)
    exclude = ("photo",)
    readonly_fields = ("photo_column",)
    inlines = [ParcelItemInline]

    @admin.display(description=_("order"), ordering="order_reference")
    def parcel_column(self, parcel: Parcel) -> SafeString:
        return format_html("{}<br><small>#{}</small>", code_html(parcel.order_reference), parcel.pk)

    @admin.display(description=_("measured weight (g)"))
    def weight_column(self, parcel: Parcel) -> str:
        if parcel.measured_weight_g is None:
            return "—"
        return f"{parcel.measured_weight_g} / {parcel.expected_weight_g or '—'}"

    @admin.display(description=_("photo of the open parcel"))
    def photo_column(self, parcel: Parcel) -> SafeString | str:
        if not parcel.photo:
            return "—"
        url = reverse("packing_ops:parcel_photo_view", args=[parcel.pk])
        return format_html('<a href="{0}" target="_blank"><img src="{0}" alt="" style="max-width: 360px"></a>', url)
