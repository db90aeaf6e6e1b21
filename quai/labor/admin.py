from django.contrib import admin

from quai.labor.models import Shift, Skill, StaffingPlan, StaffingPlanCell, StaffMember, Standard


class SkillInline(admin.TabularInline):
    model = Skill
    extra = 0


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "site", "active")
    list_filter = ("site", "active")
    inlines = [SkillInline]


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ("staff", "activity", "zone", "starts_at", "ends_at")
    list_filter = ("site", "activity")


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
