"""The outbox in the back office: every event, read-only, filterable by name and by whether it was relayed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from quai.core.models import HandledEvent, OutboxEvent


class RelayedFilter(admin.SimpleListFilter):
    title = _("relayed")
    parameter_name = "relayed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Relayed")), ("no", _("Pending")), ("failing", _("Failing"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(relayed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(relayed_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(relayed_at__isnull=True, attempts__gt=0)
        return queryset


class HandledEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = HandledEvent
    extra = 0
    can_delete = False
    readonly_fields = ("handler", "handled_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "name", "merchant_id", "aggregate", "aggregate_id", "occurred_at", "relayed_at", "attempts")
    list_filter = ("name", RelayedFilter)
    search_fields = ("=event_id", "=aggregate_id", "name")
    date_hierarchy = "occurred_at"
    inlines = [HandledEventInline]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
