"""Event-sale reads, always inside a merchant scope."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from quai.campaigns.models import Campaign
from quai.core.errors import NotFound
from quai.tenants.scope import Scope


def campaign_list(*, scope: Scope, status: str | None = None) -> QuerySet[Campaign]:
    qs = Campaign.objects.within(scope).select_related("site", "zone")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-starts_at", "-id")


def campaign_get(*, scope: Scope, campaign_id: int) -> Campaign:
    try:
        return Campaign.objects.within(scope).select_related("site", "zone", "staffing_plan").get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise NotFound(
            _("Campaign not found."), code="campaign_not_found", details={"campaign_id": campaign_id}
        ) from None
