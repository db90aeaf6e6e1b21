"""Back office for the catalog. Saves go through the catalog services, so the admin obeys the API's rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from quai.catalog import cleaning, selectors, services
from quai.catalog.models import Barcode, PackagingType, Sku
from quai.core.errors import QuaiError


class SkuAdminForm(forms.ModelForm):
    """Runs the services' checks (GTIN, duplicate code or barcode, stale version) as form errors."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Sku
        fields = ["merchant", "version", *cleaning.SKU_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        merchant = cleaned.get("merchant") or (self.instance.merchant if self.instance.pk else None)
        if merchant is None:
            return cleaned
        row = {name: cleaned.get(name) for name in cleaning.SKU_FIELDS if name in cleaned}
        if self.instance.pk:
            row = {name: value for name, value in row.items() if name in self.changed_data}
        target = Sku.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        if target is not None and cleaned.get("version") not in (None, target.version):
            raise forms.ValidationError(
                _("This SKU was changed by someone else since you opened it: reload the page."),
                code="stale_version",
            )
        for error in services.sku_row_check(merchant=merchant, row=row, sku=target):
            field = error.field if error.field in self.fields else None
            self.add_error(field, forms.ValidationError(error.message, code=error.code))
        return cleaned


class BarcodeInline(admin.TabularInline):
    model = Barcode
    extra = 1
    fields = ("code", "kind", "is_primary")
    readonly_fields = ("is_primary",)
    verbose_name = _("barcode")
    verbose_name_plural = _("barcodes (the primary one follows the SKU's GTIN)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Barcode]:
        return super().get_queryset(request).order_by("-is_primary", "code")


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin):
    form = SkuAdminForm
    inlines = [BarcodeInline]
    list_display = ["code", "name", "merchant", "gtin", "status", "lot_tracked", "expiry_tracked", "hazmat"]
    list_filter = [
        "merchant",
        "status",
        "lot_tracked",
        "expiry_tracked",
        "serial_tracked",
        "fragile",
        "hazmat",
    ]
    search_fields = ["code", "name", "gtin", "barcodes__code"]
    list_select_related = ["merchant"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["merchant", "code", "name", "description", "status", "version"]}),
        (_("Identification"), {"fields": ["gtin", "hs_code", "country_of_origin"]}),
        (_("Dimensions and weight"), {"fields": ["length_mm", "width_mm", "height_mm", "weight_g"]}),
        (_("Handling"), {"fields": ["lot_tracked", "expiry_tracked", "serial_tracked", "fragile", "hazmat"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Sku | None = None) -> list[str]:
        # A SKU never changes merchant: its stock, orders and barcodes belong to that merchant.
        return [*self.readonly_fields, "merchant"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Sku, form: SkuAdminForm, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in cleaning.SKU_FIELDS if name in form.cleaned_data}
        if change:
            data = {name: value for name, value in values.items() if name in form.changed_data}
            version = form.cleaned_data.get("version") or Sku.objects.get(pk=obj.pk).version
            saved = services.sku_update(sku=obj, version=version, data=data)
        else:
            saved = services.sku_create(merchant=form.cleaned_data["merchant"], **values)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Barcode:  # pragma: no cover - the only inline
            super().save_formset(request, form, formset, change)
            return
        sku = form.instance
        # The admin's change message reads these three lists, which formset.save() would have filled.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        with transaction.atomic():
            for inline_form in formset.forms:
                instance = inline_form.instance
                if inline_form in formset.deleted_forms:
                    if instance.pk:
                        services.barcode_remove(barcode=instance)
                        formset.deleted_objects.append(instance)
                    continue
                if not inline_form.has_changed():
                    continue
                if instance.pk:
                    services.barcode_remove(barcode=Barcode.objects.get(pk=instance.pk))
                added = services.barcode_add(
                    sku=sku, code=inline_form.cleaned_data["code"], kind=inline_form.cleaned_data["kind"]
                )
                if instance.pk:
                    formset.changed_objects.append((added, inline_form.changed_data))
                else:
                    formset.new_objects.append(added)

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Sku | None = None) -> Any:
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            yield _checked_barcode_formset(formset), inline


def _checked_barcode_formset(base: Any) -> Any:
    """The barcode inline with the services' checks run in ``clean``, so problems show as form errors."""

    class CheckedBarcodeFormSet(base):
        def clean(self) -> None:
            super().clean()
            sku = self.instance
            for inline_form in self.forms:
                if not hasattr(inline_form, "cleaned_data") or not inline_form.has_changed():
                    continue
                instance = inline_form.instance
                if (
                    instance.pk
                    and instance.is_primary
                    and (inline_form in self.deleted_forms or inline_form.has_changed())
                ):
                    inline_form.add_error(None, _("The primary barcode follows the SKU's GTIN: change the GTIN."))
                    continue
                if inline_form in self.deleted_forms or not inline_form.cleaned_data.get("code"):
                    continue
                try:
                    code, _kind = cleaning.barcode_clean(
                        inline_form.cleaned_data["code"], inline_form.cleaned_data.get("kind")
                    )
                except QuaiError as exc:
                    inline_form.add_error("code", exc.message)
                    continue
                if not sku.pk:
                    continue  # a new SKU's barcodes are checked by barcode_add when it is saved
                holders = selectors.code_holders(merchant_id=sku.merchant_id, forms=cleaning.code_forms(code))
                for holder in holders:
                    if holder.is_barcode and holder.code == instance.code and holder.sku_id == sku.pk:
                        continue  # the row being edited itself
                    if not holder.is_barcode and holder.sku_id == sku.pk:
                        continue  # a SKU may answer to its own code as a barcode too
                    inline_form.add_error(
                        "code",
                        _("This code already belongs to SKU '%(sku)s' of this merchant.") % {"sku": holder.sku_code},
                    )
                    break

    return CheckedBarcodeFormSet


class PackagingTypeAdminForm(forms.ModelForm):
    """The services' checks (dimensions, weights, cost, code shared with the operator) as form errors."""

    class Meta:
        model = PackagingType
        fields = ["merchant", *cleaning.PACKAGING_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            values = cleaning.packaging_values_clean(
                {name: cleaned[name] for name in cleaning.PACKAGING_FIELDS if name in cleaned}
            )
            merchant = cleaned.get("merchant")
            services.packaging_code_check(
                code=values["code"], merchant_id=merchant.pk if merchant else None, exclude_pk=self.instance.pk
            )
            cleaning.packaging_weights_check(tare_weight_g=values["tare_weight_g"], max_weight_g=values["max_weight_g"])
        except QuaiError as exc:
            field = exc.details.get("field")
            self.add_error(field if field in self.fields else None, exc.message)
        return cleaned


@admin.register(PackagingType)
class PackagingTypeAdmin(admin.ModelAdmin):
    form = PackagingTypeAdminForm
    list_display = [
        "code",
        "name",
        "kind",
        "merchant",
        "inner_length_mm",
        "inner_width_mm",
        "inner_height_mm",
        "max_weight_g",
        "cost",
        "active",
    ]
    list_filter = ["kind", "active", ("merchant", admin.EmptyFieldListFilter), "merchant"]
    search_fields = ["code", "name"]
    readonly_fields = ["version", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: PackagingType, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in cleaning.PACKAGING_FIELDS if name in form.cleaned_data}
        if change:
            data = {name: value for name, value in values.items() if name in form.changed_data}
            saved = services.packaging_type_update(packaging_type=obj, version=obj.version, data=data)
        else:
            saved = services.packaging_type_create(merchant=form.cleaned_data.get("merchant"), **values)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()
