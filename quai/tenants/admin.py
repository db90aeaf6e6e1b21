from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from quai.core import clock
from quai.core.errors import ValidationFailed
from quai.tenants import services
from quai.tenants.models import ApiKey, Merchant, MerchantUser, Operator


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["name", "legal_name", "siret", "vat_number"]


class MerchantUserInline(admin.TabularInline):
    model = MerchantUser
    extra = 0
    autocomplete_fields = ["user"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MerchantAdminForm(forms.ModelForm):
    """The same SIRET and VAT checks as the API, shown as form errors."""

    class Meta:
        model = Merchant
        fields = [
            "code",
            "name",
            "legal_name",
            "status",
            "default_currency",
            "siret",
            "vat_number",
            "contact_name",
            "contact_email",
            "contact_phone",
        ]

    def _checked(self, field: str, clean: Any) -> str:
        try:
            return str(clean(self.cleaned_data.get(field, "")))
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_siret(self) -> str:
        return self._checked("siret", services.siret_clean)

    def clean_vat_number(self) -> str:
        return self._checked("vat_number", services.vat_number_clean)


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "legal_name", "siret", "status", "default_currency", "created_at"]
    list_filter = ["status", "default_currency"]
    search_fields = ["code", "name", "legal_name", "siret", "vat_number", "contact_email"]
    inlines = [MerchantUserInline, ApiKeyInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "legal_name", "status", "default_currency"]}),
        (_("Registration"), {"fields": ["siret", "vat_number"]}),
        (_("Contact"), {"fields": ["contact_name", "contact_email", "contact_phone"]}),
    ]

    form = MerchantAdminForm


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "merchant", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["merchant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "merchant__name", "merchant__code"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at", "created_by"]
    fields = ["merchant", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are revoked, never deleted: their history explains past calls

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = services.api_key_create(merchant=obj.merchant, name=obj.name, created_by=request.user)
        obj.pk = issued.api_key.pk
        obj.prefix = issued.api_key.prefix
        messages.warning(
            request,
            _("Copy this key now, it will not be shown again: %(secret)s") % {"secret": issued.secret},
        )

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for key in queryset.filter(revoked_at=None):
            services.api_key_revoke(api_key_id=key.pk)
            count += 1
        messages.success(request, _("%(count)d key(s) revoked at %(time)s.") % {"count": count, "time": clock.now()})
