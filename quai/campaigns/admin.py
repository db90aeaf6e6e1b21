from django.contrib import admin

from quai.campaigns.models import Campaign, CampaignAsn, CampaignSku


class CampaignSkuInline(admin.TabularInline):
    model = CampaignSku
    extra = 0
    raw_id_fields = ("sku",)


class CampaignAsnInline(admin.TabularInline):
    model = CampaignAsn
    extra = 0
    raw_id_fields = ("asn",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "site", "status", "starts_at", "ends_at")
    list_filter = ("status", "site")
    # The status moves only through the campaign services (state machine with its audit and event).
    readonly_fields = ("status", "zone", "staffing_plan", "warnings", "checked_at")
    inlines = [CampaignSkuInline, CampaignAsnInline]
