"""Back office of the picking floor: release a wave ("add wave" runs ``wave_release``), follow batches with their
route drawn on the site map, and the short picks the supervisor is told about."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin
from quai.fulfillment import domain, services
from quai.fulfillment.models import PickBatch, PickShortage, PickTask, ReleaseLimit, Wave
from quai.orders.models import Priority


class WaveReleaseForm(forms.ModelForm):
    carrier_services = forms.CharField(
        label=_("carrier services"), required=False, help_text=_("Comma-separated; empty: every service.")
    )
    priorities = forms.MultipleChoiceField(
        label=_("priorities"), choices=Priority.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    promised_by = forms.DateField(label=_("promised by"), required=False)
    totes = forms.IntegerField(label=_("totes per cart"), min_value=1, max_value=40, initial=8)

    class Meta:
        model = Wave
        fields = ["site", "capacity"]


@admin.register(Wave)
class WaveAdmin(admin.ModelAdmin):
    list_display = ["__str__", "site", "order_count", "capacity", "scheduled", "created_by", "created_at"]
    list_filter = ["site", "scheduled"]
    form = WaveReleaseForm
    readonly_fields = ["criteria", "order_count", "skipped", "held", "scheduled", "created_by", "created_at", "status"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            kwargs["form"] = forms.ModelForm
            kwargs["fields"] = []
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Wave, form: Any, change: bool) -> None:
        """ "Add wave" releases one: the supervisor's criteria, capped by the capacity (the next N)."""
        data = form.cleaned_data
        wave = services.wave_release(
            site=data["site"],
            criteria=domain.WaveCriteria(
                carrier_services=frozenset(s.strip() for s in data["carrier_services"].split(",") if s.strip()),
                promised_by=data["promised_by"],
                priorities=frozenset(data["priorities"]),
                capacity=data["capacity"],
            ),
            cart=domain.Cart(totes=data["totes"]),
            actor=request.user,
        )
        obj.pk = wave.pk
        obj._state.adding = False
        for held in wave.held:
            self.message_user(request, str(held["message"]), level=messages.WARNING)


class PickTaskInline(admin.TabularInline):
    model = PickTask
    fields = ("sequence", "order_id", "sku", "location", "lot", "tote", "quantity", "picked_quantity", "status", "note")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PickBatch)
class PickBatchAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "wave", "zone", "status", "operator", "route_m", "s_shape_m", "order_by_order_m"]
    list_filter = ["status", "site", "routing"]
    inlines = [PickTaskInline]
    readonly_fields = ["route_map"]

    @admin.display(description=_("route"))
    def route_map(self, obj: PickBatch) -> str:
        url = reverse("api-v1:batch_route", kwargs={"batch_id": obj.pk})
        return format_html('<img src="{}" alt="" style="max-width:100%">', url)


@admin.register(PickShortage)
class PickShortageAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "order_id", "location", "missing_quantity", "status", "reported_by", "reported_at"]
    list_filter = ["status"]


@admin.register(ReleaseLimit)
class ReleaseLimitAdmin(ReadOnlyAdmin):
    """Release limits are set and cleared by services (an event sale opening and closing): shown, not edited."""

    list_display = ["source", "merchant", "site", "orders_per_hour", "lines_per_hour", "valid_from", "valid_until"]
    list_filter = ["site"]
