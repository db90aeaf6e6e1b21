"""Event sales in the back office, read-only: a campaign moves through its services (the API), which check its
curve, its zone and its capacity; an edit here went around all of them (dates, curve, throttle, SKUs of an open
sale). The capacity check reads in the reader's language."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from quai.campaigns.models import Campaign, CampaignAsn, CampaignSku
from quai.campaigns.services import warnings_worded
from quai.core.admin import ReadOnlyAdmin, ReadOnlyInline


class CampaignSkuInline(ReadOnlyInline):
    model = CampaignSku


class CampaignAsnInline(ReadOnlyInline):
    model = CampaignAsn


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "merchant", "site", "status", "starts_at", "ends_at")
    list_filter = ("status", "site")
    exclude = ("warnings",)
    readonly_fields = ("capacity_check",)
    inlines = [CampaignSkuInline, CampaignAsnInline]

    @admin.display(description=_("capacity warnings"))
    def capacity_check(self, obj: Campaign) -> str:
        worded = warnings_worded(obj.warnings)
        if not worded:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w["message"],) for w in worded)))
