"""Stock in the back office: the ledger and quantities read-only (services are the only writers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quai.core.admin import ReadOnlyAdmin, code_html, state_history_table
from quai.core.errors import QuaiError
from quai.inventory import services
from quai.inventory.models import (
    CountLine,
    CountTask,
    CountTaskStatus,
    MoveTask,
    Reservation,
    ReservationAllocation,
    StockLevel,
    StockMovement,
    StockPolicy,
    StockQuantity,
)
from quai.inventory.services.counts import COUNT_TASK_MACHINE


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    # Chosen for a desk screen (1366 px, beside the menu and the filters): one column per question a supervisor asks
    # (when, what happened and by whom, to what, how many, from where to where). The actor rides under the kind, the
    # merchant and the lot under the SKU code, the two locations share one column; the rest is on the movement's page.
    list_display = ("when_column", "kind_column", "sku_column", "quantity", "route_column")
    list_display_links = ("when_column",)
    list_filter = ("kind", "merchant", "to_status")
    search_fields = ("sku__code", "lot", "serial", "document_id", "reason")
    list_select_related = ("merchant", "sku", "from_location", "to_location", "actor")
    date_hierarchy = "occurred_at"

    @admin.display(description=gettext_lazy("occurred at"), ordering="occurred_at")
    def when_column(self, movement: StockMovement) -> SafeString:
        at = timezone.localtime(movement.occurred_at)
        return format_html("{}<br>{}", date_format(at, "SHORT_DATE_FORMAT"), time_format(at, "TIME_FORMAT"))

    @admin.display(description=gettext_lazy("kind"), ordering="kind")
    def kind_column(self, movement: StockMovement) -> SafeString:
        actor = movement.actor.get_username() if movement.actor else ""
        return format_html("{}<br><small>{}</small>", movement.get_kind_display(), actor)

    @admin.display(description=gettext_lazy("SKU"), ordering="sku__code")
    def sku_column(self, movement: StockMovement) -> SafeString:
        lot = format_html(" · {} {}", _("lot"), code_html(movement.lot)) if movement.lot else ""
        return format_html(
            "<strong>{}</strong>{}<br><small>{}</small>", code_html(movement.sku.code), lot, movement.merchant.name
        )

    @admin.display(description=gettext_lazy("from → to"))
    def route_column(self, movement: StockMovement) -> SafeString:
        ends = [end.code if end else "—" for end in (movement.from_location, movement.to_location)]
        return format_html("{}<br>{}", code_html(ends[0]), code_html(f"→ {ends[1]}"))


@admin.register(StockQuantity)
class StockQuantityAdmin(ReadOnlyAdmin):
    list_display = ("location", "merchant", "sku", "lot", "expiry", "status", "on_hand", "reserved", "counted")
    list_filter = ("status", "counted", "merchant")
    search_fields = ("sku__code", "location__code", "lot")
    list_select_related = ("merchant", "sku", "location")


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "sku", "on_hand", "reserved", "available")
    list_filter = ("merchant",)
    search_fields = ("sku__code",)
    list_select_related = ("merchant", "sku")


class AllocationInline(admin.TabularInline):
    model = ReservationAllocation
    extra = 0
    can_delete = False
    readonly_fields = ("location", "lot", "expiry", "quantity", "consumed_quantity", "created_at")
    exclude = ("stock",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "merchant",
        "sku",
        "status",
        "quantity",
        "consumed_quantity",
        "released_quantity",
        "created_at",
    )
    list_filter = ("status", "merchant")
    search_fields = ("sku__code", "document_id")
    list_select_related = ("merchant", "sku")
    inlines = [AllocationInline]


@admin.register(StockPolicy)
class StockPolicyAdmin(admin.ModelAdmin):
    list_display = ("merchant", "sku", "safety_buffer", "min_shelf_life_days")
    list_filter = ("merchant",)
    raw_id_fields = ("sku",)


@admin.register(MoveTask)
class MoveTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "sku", "from_location", "to_location", "quantity", "status", "created_at")
    list_filter = ("status",)


class CountLineInline(admin.TabularInline):
    model = CountLine
    extra = 0
    can_delete = False
    fields = (
        "sku",
        "lot",
        "expiry",
        "status",
        "counted_quantity",
        "expected_quantity",
        "reserved_quantity",
        "variance",
        "needs_approval",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


REVIEW_REASON_LABELS = {
    "variance_above_threshold": gettext_lazy("difference above the tolerance"),
    "below_reserved": gettext_lazy("fewer units counted than are reserved"),
}


def count_review_reason_label(reason: str) -> str:
    """A reason code of ``CountTask.review_reasons`` as a supervisor reads it (``apply_refused:<code>`` included)."""
    if reason.startswith("apply_refused:"):
        return _("could not be applied (%(code)s)") % {"code": reason.removeprefix("apply_refused:")}
    label = REVIEW_REASON_LABELS.get(reason)
    return reason if label is None else str(label)


def _count_decide(
    admin_: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[CountTask], *, approve: bool
) -> None:
    """Approve or reject each selected count through the services; every refusal is shown, the others go on."""
    done = 0
    for task in queryset.order_by("pk"):
        try:
            if approve:
                services.count_approve(task=task, actor=request.user)
            else:
                services.count_reject(task=task, actor=request.user, reason=_("Rejected in the back office."))
        except QuaiError as exc:
            admin_.message_user(request, f"#{task.pk}: {exc.message} [{exc.code}]", level=messages.ERROR)
        else:
            done += 1
    if done:
        text = _("%(count)d count(s) approved and applied.") if approve else _("%(count)d count(s) sent back.")
        admin_.message_user(request, text % {"count": done}, level=messages.SUCCESS)


@admin.register(CountTask)
class CountTaskAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "site",
        "location",
        "sku",
        "blind",
        "status",
        "review_reasons_column",
        "counted_by",
        "submitted_at",
        "decided_by",
    )
    list_filter = ("status", "blind", "site")
    search_fields = ("location__code", "sku__code")
    list_select_related = ("site", "location", "sku", "counted_by", "decided_by")
    inlines = [CountLineInline]
    actions = ["approve", "reject"]
    # The count's page shows the reasons in words, not the stored codes.
    exclude = ("review_reasons",)
    readonly_fields = ("review_reasons_column", "status_history")

    @admin.display(description=gettext_lazy("status history"))
    def status_history(self, task: CountTask) -> str:
        return state_history_table(
            aggregate=COUNT_TASK_MACHINE.aggregate, aggregate_id=task.pk, labels=dict(CountTaskStatus.choices)
        )

    @admin.display(description=gettext_lazy("why it waits for approval"))
    def review_reasons_column(self, task: CountTask) -> str:
        return "; ".join(count_review_reason_label(reason) for reason in task.review_reasons.split(",") if reason)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing a count (and running the actions on it) is allowed; its fields only change through the services.
        return obj is None and bool(request.user.is_staff)

    @admin.action(description=gettext_lazy("Approve and apply the selected counts"))
    def approve(self, request: HttpRequest, queryset: QuerySet[CountTask]) -> None:
        _count_decide(self, request, queryset, approve=True)

    @admin.action(description=gettext_lazy("Reject the selected counts (count again)"))
    def reject(self, request: HttpRequest, queryset: QuerySet[CountTask]) -> None:
        _count_decide(self, request, queryset, approve=False)
