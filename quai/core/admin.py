"""The outbox and the state-transition audit trail in the back office, read-only.

The outbox lists every event, filterable by name and by whether it was relayed. ``state_history_table`` renders one
record's status history for the admin page of the app that owns the record (ASNs, count tasks…).

Core imports no app, yet a supervisor reads a merchant's name, not its id: the tenants app registers a lookup
(``merchant_labels_register``) in its ``AppConfig.ready()``, and the outbox list asks it once per page for the
merchants on that page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from quai.core.models import HandledEvent, OutboxEvent, StateTransition
from quai.core.selectors import state_history


class _ReadOnly:
    """No add, change or delete: the rows change through the services (or never: audit trails)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(_ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    """A back-office page to read, never to write."""


class ReadOnlyInline(_ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    """A page's rows of another model, to read, never to write (no empty form, no delete box)."""

    extra = 0
    can_delete = False


def code_html(value: str) -> SafeString:
    """A code (SKU, location, lot, order reference) on one line: the back office never breaks one in the middle."""
    return format_html('<span style="white-space: nowrap">{}</span>', value)


MerchantLabels = Callable[[Iterable[int]], dict[int, str]]
_merchant_labels: list[MerchantLabels] = []


def merchant_labels_register(lookup: MerchantLabels) -> None:
    """Set the lookup that names merchants by id (one query for all the ids given); registering again replaces it."""
    _merchant_labels[:] = [lookup]


def merchant_labels(ids: Iterable[int]) -> dict[int, str]:
    """The names of the merchants ``ids``; an id the lookup does not know (or no lookup at all) is left out."""
    wanted = sorted(set(ids))
    if not wanted or not _merchant_labels:
        return {}
    return _merchant_labels[0](wanted)


def state_history_table(*, aggregate: str, aggregate_id: int | str | None, labels: Mapping[str, Any]) -> str:
    """One record's status history as a read-only HTML table (when, from, to, who, why), oldest step first.

    The audit rows live in core (``core.StateTransition``), which has no foreign key to the record: an inline cannot
    reach them, so the owning app's admin shows this table in a read-only field. ``labels`` names each status in
    words (the model's ``TextChoices``); a status it does not know is shown as stored. A record not yet saved
    (``aggregate_id`` None) has no history.
    """
    steps = state_history(aggregate=aggregate, aggregate_id=aggregate_id) if aggregate_id else []
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                date_format(localtime(step.at), "SHORT_DATETIME_FORMAT"),
                labels.get(step.from_status, step.from_status),
                labels.get(step.to_status, step.to_status),
                step.actor_label,
                step.reason,
            )
            for step in steps
        ),
    )
    if not rows:
        return str(_("No status change yet."))
    table: SafeString = format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        _("when"),
        _("from"),
        _("to"),
        _("who"),
        _("why"),
        rows,
    )
    return table


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
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "name",
        "merchant_column",
        "aggregate",
        "aggregate_id",
        "occurred_at",
        "relayed_at",
        "attempts",
    )
    list_filter = ("name", RelayedFilter)
    search_fields = ("=event_id", "=aggregate_id", "name")
    date_hierarchy = "occurred_at"
    inlines = [HandledEventInline]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # One look-up for the merchants of the whole page, not one per row. The page's rows are evaluated here and
        # kept in the queryset's cache, so each carries its label to the column below (nothing shared between
        # requests: the admin instance is).
        changelist = super().get_changelist_instance(request)
        events = list(changelist.result_list)
        labels = merchant_labels(event.merchant_id for event in events if event.merchant_id is not None)
        for event in events:
            event.merchant_label = labels.get(event.merchant_id) if event.merchant_id is not None else None
        return changelist

    @admin.display(description=_("merchant"), ordering="merchant_id")
    def merchant_column(self, event: OutboxEvent) -> str:
        if event.merchant_id is None:
            return "—"
        label = getattr(event, "merchant_label", None)
        return label or f"#{event.merchant_id}"


@admin.register(StateTransition)
class StateTransitionAdmin(ReadOnlyAdmin):
    """Every status change of every state machine (who, when, from, to, why), read-only: it is the audit trail."""

    list_display = (
        "at",
        "aggregate",
        "aggregate_id",
        "from_status",
        "to_status",
        "transition",
        "actor_label",
        "reason",
    )
    list_filter = ("aggregate", "to_status")
    search_fields = ("=aggregate_id", "=event_id", "actor_label")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in StateTransition._meta.fields]
