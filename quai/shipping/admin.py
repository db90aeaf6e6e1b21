"""Back office of shipping: carrier accounts and the SSCC sequence are configured here; shipments, manifests and
tracking events are read-only (the pack station, the truck screen and the carriers write them)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin, code_html
from quai.core.crypto import credentials_parse
from quai.shipping import domain, selectors, services
from quai.shipping.models import (
    CarrierAccount,
    Manifest,
    Shipment,
    ShipmentStatus,
    SsccSequence,
    TrackingEventRecord,
)

SENDER_FIELDS = (
    "sender_name",
    "sender_line1",
    "sender_postcode",
    "sender_city",
    "sender_country",
    "sender_phone",
    "sender_email",
)


class SecretTextarea(forms.Textarea):
    """A text area that never renders its value: a form shown again after an error does not echo a secret."""

    def format_value(self, value: Any) -> str | None:
        return None


class CarrierAccountForm(forms.ModelForm):
    """Credentials are write-only: typed as ``key=value`` lines, merged into the stored ones (an empty value removes
    the key), never shown back; the settings refuse them, so no password sits in clear in the JSON."""

    new_credentials = forms.CharField(
        label=_("Credentials to set"),
        required=False,
        widget=SecretTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_("One key=value per line (password, okapi_key, private_key); stored encrypted, never shown."),
    )

    class Meta:
        model = CarrierAccount
        fields = [  # every column but ``credentials``, which only ``new_credentials`` writes
            "code",
            "name",
            "kind",
            "active",
            "settings",
            *SENDER_FIELDS,
        ]

    def clean_settings(self) -> Any:
        settings = self.cleaned_data.get("settings")
        if not isinstance(settings, dict):
            raise ValidationError(_("The settings are a JSON object of names and values."))
        secrets = sorted(set(settings) & domain.CARRIER_SECRET_KEYS)
        if secrets:
            raise ValidationError(
                _("%(names)s: a secret goes in the credentials to set (stored encrypted), not in the settings.")
                % {"names": ", ".join(secrets)}
            )
        return settings

    def clean_new_credentials(self) -> dict[str, str]:
        try:
            values = credentials_parse(self.cleaned_data.get("new_credentials") or "")
        except ValueError:
            raise ValidationError(_("Write each credential as key=value.")) from None
        unknown = sorted(set(values) - domain.CARRIER_SECRET_KEYS)
        if unknown:
            raise ValidationError(
                _("%(names)s: not a carrier credential (one of %(known)s).")
                % {"names": ", ".join(unknown), "known": ", ".join(sorted(domain.CARRIER_SECRET_KEYS))}
            )
        return values


@admin.register(CarrierAccount)
class CarrierAccountAdmin(admin.ModelAdmin):
    form = CarrierAccountForm
    list_display = ("code", "name", "kind", "active", "sender_city")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")
    readonly_fields = ("credential_names",)
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "active", "settings")}),
        (_("Credentials"), {"fields": ("credential_names", "new_credentials")}),
        (
            _("Sender"),
            {"fields": SENDER_FIELDS},
        ),
    )

    @admin.display(description=_("Credentials set"))
    def credential_names(self, carrier: CarrierAccount) -> str:
        names = selectors.carrier_credential_names(carrier) if carrier.pk else []
        return ", ".join(f"{name} ••••••" for name in names) or "—"

    def save_model(self, request: HttpRequest, obj: CarrierAccount, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changes = form.cleaned_data.get("new_credentials") or {}
        if changes:
            services.carrier_credentials_set(carrier=obj, changes=changes)


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
