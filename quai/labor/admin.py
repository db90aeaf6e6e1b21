from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from quai.labor import services
from quai.labor.models import Shift, Skill, StaffingPlan, StaffingPlanCell, StaffMember, Standard
from quai.warehouse.admin import ServiceErrorsAsMessages


class SkillInline(admin.TabularInline):
    model = Skill
    extra = 0


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "site", "active")
    list_filter = ("site", "active")
    inlines = [SkillInline]


@admin.register(Shift)
class ShiftAdmin(ServiceErrorsAsMessages):
    """A shift is added through ``shift_create`` (the skill, one shift at a time, 16 hours at most; the site is the
    person's) or deleted: an edit would skip those checks."""

    list_display = ("staff", "activity", "zone", "starts_at", "ends_at")
    list_filter = ("site", "activity")
    fields = ("staff", "activity", "zone", "starts_at", "ends_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Shift, form: Any, change: bool) -> None:
        saved = services.shift_create(
            staff=obj.staff, activity=obj.activity, zone=obj.zone, starts_at=obj.starts_at, ends_at=obj.ends_at
        )
        obj.pk, obj.site_id = saved.pk, saved.site_id
        obj._state.adding = False


@admin.register(Standard)
class StandardAdmin(admin.ModelAdmin):
    list_display = ("site", "activity", "zone", "lines_per_hour")
    list_filter = ("site", "activity")


class CellInline(admin.TabularInline):
    model = StaffingPlanCell
    extra = 0
    can_delete = False
    readonly_fields = ("hour", "zone", "activity", "workload_lines", "lines_per_hour", "heads")

    def has_add_permission(self, request, obj=None):
        return False  # plans are computed, never typed


@admin.register(StaffingPlan)
class StaffingPlanAdmin(admin.ModelAdmin):
    list_display = ("__str__", "site", "source", "starts_at", "ends_at", "created_at")
    list_filter = ("site", "source")
    readonly_fields = ("site", "source", "starts_at", "ends_at", "utilisation", "lines_per_order", "inputs", "replaces")
    inlines = [CellInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # computed by labour's services (a forecast, a campaign's plan, a re-plan), never typed: was a 500
