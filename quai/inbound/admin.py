"""Back office: ASNs (read, cancel, import from CSV), putaway and replenishment tasks, pick faces.

Writes go through the services, so the back office obeys the same rules as the API and the screens.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyInline, state_history_table
from quai.core.errors import QuaiError
from quai.inbound import services
from quai.inbound.models import (
    Asn,
    AsnLine,
    AsnStatus,
    DiscrepancyLine,
    DiscrepancyReport,
    HandlingUnit,
    PickFace,
    PutawayTask,
    ReplenishmentTask,
)
from quai.inbound.services.asns import ASN_MACHINE
from quai.tenants.models import Merchant


class AsnLineInline(ReadOnlyInline):
    model = AsnLine
    fields = ("sku", "lot", "expiry", "expected_quantity", "received_quantity", "damaged_quantity", "unexpected")


class HandlingUnitInline(ReadOnlyInline):
    model = HandlingUnit
    fields = ("kind", "sscc", "received_at")


class AsnImportForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("name"), label=_("merchant"))
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("Columns: reference, supplier, expected_at, site, sku, quantity, lot, expiry, sscc, unit_kind."),
    )


@admin.register(Asn)
class AsnAdmin(admin.ModelAdmin):
    list_display = ("reference", "merchant", "supplier", "expected_at", "site", "status", "created_at")
    list_filter = ("status", "site", "merchant")
    search_fields = ("reference", "supplier", "merchant__code", "handling_units__sscc")
    readonly_fields = (
        "merchant",
        "reference",
        "supplier",
        "expected_at",
        "site",
        "status",
        "notes",
        "receiving_location",
        "receiving_started_at",
        "closed_at",
        "status_history",
    )
    inlines = (AsnLineInline, HandlingUnitInline)
    actions = ("cancel_selected",)
    change_list_template = "admin/inbound/asn/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # ASNs come from the API, the CSV import (below) or the merchant's shop

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("status history"))
    def status_history(self, asn: Asn) -> str:
        return state_history_table(aggregate=ASN_MACHINE.aggregate, aggregate_id=asn.pk, labels=dict(AsnStatus.choices))

    def get_urls(self) -> list[Any]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="inbound_asn_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("inbound.add_asn"):
            messages.error(request, _("You may not import ASNs."))
            return HttpResponseRedirect(reverse("admin:inbound_asn_changelist"))
        form = AsnImportForm(request.POST or None, request.FILES or None)
        problems: dict[int, list[str]] = {}
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
                imported = services.asn_import(
                    merchant=form.cleaned_data["merchant"], rows=services.asn_csv_rows(text), actor=request.user
                )
            except UnicodeDecodeError:
                messages.error(request, _("The file is not UTF-8 text."))
            except QuaiError as exc:
                messages.error(request, exc.message)
                problems = exc.details.get("rows", {})
            else:
                messages.success(request, _("%(count)d ASN(s) imported.") % {"count": len(imported.asns)})
                return HttpResponseRedirect(reverse("admin:inbound_asn_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import ASNs from a CSV file"),
            "form": form,
            "problems": sorted(problems.items()),
        }
        return TemplateResponse(request, "admin/inbound/asn/import.html", context)

    @admin.action(description=_("Cancel the selected ASNs (announced only)"))
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Asn]) -> None:
        for asn in queryset:
            try:
                services.asn_cancel(asn=asn, actor=request.user, reason="cancelled in the back office")
            except QuaiError as exc:
                messages.error(request, f"{asn.reference}: {exc.message}")
            else:
                messages.success(request, _("%(ref)s cancelled.") % {"ref": asn.reference})


class DiscrepancyLineInline(ReadOnlyInline):
    model = DiscrepancyLine
    fields = ("sku", "kind", "expected_quantity", "received_quantity", "damaged_quantity", "difference")


@admin.register(DiscrepancyReport)
class DiscrepancyReportAdmin(admin.ModelAdmin):
    list_display = ("asn", "created_at", "expected_total", "received_total", "damaged_total")
    readonly_fields = ("asn", "closed_by", "created_at", "expected_total", "received_total", "damaged_total")
    inlines = (DiscrepancyLineInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PutawayTask)
class PutawayTaskAdmin(admin.ModelAdmin):
    list_display = ("code", "merchant", "sku", "lot", "quantity", "stock_status", "suggested_location", "status")
    list_filter = ("status", "stock_status")
    search_fields = ("sku__code", "asn__reference")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PickFace)
class PickFaceAdmin(admin.ModelAdmin):
    list_display = ("location", "merchant", "sku", "min_quantity", "max_quantity")
    search_fields = ("location__code", "sku__code")
    readonly_fields = ("merchant", "location", "sku")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # pick faces are set through the API (pick_face_set checks zone, SKU and min/max)

    def save_model(self, request: HttpRequest, obj: PickFace, form: Any, change: bool) -> None:
        try:
            services.pick_face_set(
                merchant=obj.merchant,
                location=obj.location,
                sku=obj.sku,
                min_quantity=obj.min_quantity,
                max_quantity=obj.max_quantity,
            )
        except QuaiError as exc:
            messages.error(request, exc.message)
        else:
            services.replenishment_check(location_ids=[obj.location_id])


@admin.register(ReplenishmentTask)
class ReplenishmentTaskAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "merchant",
        "sku",
        "from_location",
        "to_location",
        "quantity",
        "on_hand_at_creation",
        "status",
        "created_at",
    )
    list_filter = ("status",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
