"""Back office of the promise: sites' calendars, closures and capacity, carrier services with their cut-offs and
transit lanes (checked as the configuration document is), and the recorded promises (read only)."""

from __future__ import annotations

from datetime import time
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from quai.core.admin import ReadOnlyAdmin
from quai.promise import domain, selectors
from quai.promise.models import (
    CarrierService,
    PromiseRecord,
    PromiseSite,
    SiteClosure,
    StageCapacity,
    TransitLane,
)


def _weekday_ok(value: Any) -> bool:
    try:
        return 1 <= int(value) <= 7 and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


class CarrierServiceForm(forms.ModelForm):
    class Meta:
        model = CarrierService
        fields = (
            "promise_site",
            "code",
            "name",
            "carrier",
            "cutoffs",
            "delivery_weekdays",
            "pickup_point",
            "price",
            "currency",
            "active",
        )

    def clean_cutoffs(self) -> dict[str, str]:
        cutoffs = self.cleaned_data["cutoffs"]
        if not isinstance(cutoffs, dict) or not cutoffs:
            raise forms.ValidationError(_('Give at least one cut-off: {"1": "15:00"} (ISO weekday → HH:MM).'))
        clean: dict[str, str] = {}
        for day, value in cutoffs.items():
            try:
                at = time.fromisoformat(str(value))
            except ValueError:
                at = None
            if not _weekday_ok(day) or at is None:
                raise forms.ValidationError(
                    _("%(day)s → %(value)s is not a weekday (1–7) and a time.") % {"day": day, "value": value}
                )
            clean[str(int(day))] = at.strftime("%H:%M")
        return clean

    def clean_delivery_weekdays(self) -> list[int]:
        days = self.cleaned_data["delivery_weekdays"]
        if not isinstance(days, list) or not days or not all(_weekday_ok(d) for d in days):
            raise forms.ValidationError(_("Delivery weekdays are ISO weekdays: [1, 2, 3, 4, 5, 6]."))
        return sorted({int(d) for d in days})


class TransitLaneForm(forms.ModelForm):
    class Meta:
        model = TransitLane
        fields = ("zone", "seed", "widened", "kept", "broken")

    def clean_seed(self) -> list[list[float]]:
        seed = self.cleaned_data["seed"]
        try:
            steps = tuple((int(d), float(s)) for d, s in seed)
            problem = domain.transit_problem(steps)
        except (TypeError, ValueError):
            steps, problem = (), "[[days, share], …]"
        if problem:
            raise forms.ValidationError(_("Not a transit distribution: %(problem)s.") % {"problem": problem})
        return [[d, s] for d, s in steps]


class _InvalidatesSnapshot:
    """Every configuration saved here reaches the promises at once (this process) or within a minute (others): the
    site's ``version`` rises with each save, so the stamp the other processes check (``selectors.site_configs``)
    moves even for an inline row changed in place (a closure's day, a lane's seed)."""

    def save_model(self, request: Any, obj: Any, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        site_id = obj.pk if isinstance(obj, PromiseSite) else getattr(obj, "promise_site_id", None)
        if site_id is not None:
            PromiseSite.objects.filter(pk=site_id).update(version=F("version") + 1)
        transaction.on_commit(selectors.snapshot_invalidate)


class ClosureInline(admin.TabularInline):
    model = SiteClosure
    extra = 0


class CapacityInline(admin.TabularInline):
    model = StageCapacity
    extra = 0


@admin.register(PromiseSite)
class PromiseSiteAdmin(_InvalidatesSnapshot, admin.ModelAdmin):
    list_display = ("site", "holiday_country", "holiday_subdivision", "confidence", "kept_rate_threshold")
    fields = (
        "site",
        ("holiday_country", "holiday_subdivision", "works_public_holidays"),
        ("confidence", "kept_rate_threshold", "widened_confidence"),
        "putaway_hours",
        "merchants",
    )
    filter_horizontal = ("merchants",)
    inlines = (ClosureInline, CapacityInline)

    def save_related(self, request: Any, form: Any, formsets: Any, change: Any) -> None:
        super().save_related(request, form, formsets, change)
        transaction.on_commit(selectors.snapshot_invalidate)


class TransitLaneInline(admin.TabularInline):
    model = TransitLane
    form = TransitLaneForm
    extra = 0
    readonly_fields = ("kept", "broken")


@admin.register(CarrierService)
class CarrierServiceAdmin(_InvalidatesSnapshot, admin.ModelAdmin):
    form = CarrierServiceForm
    list_display = ("code", "name", "carrier", "promise_site", "pickup_point", "price", "active")
    list_filter = ("promise_site", "carrier", "active")
    inlines = (TransitLaneInline,)

    def save_related(self, request: Any, form: Any, formsets: Any, change: Any) -> None:
        super().save_related(request, form, formsets, change)
        transaction.on_commit(selectors.snapshot_invalidate)


@admin.register(PromiseRecord)
class PromiseRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "order",
        "merchant",
        "service",
        "zone",
        "ship_date",
        "delivery_by",
        "status",
        "cause",
        "shipped_on_time",
    )
    list_filter = ("status", "cause", "source", "service")
    search_fields = ("order__external_id", "promise_id")
    date_hierarchy = "ship_date"
