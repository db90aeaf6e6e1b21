from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from quai.campaigns import services
from quai.campaigns.models import Campaign
from quai.warehouse.tests.factories import SiteFactory


def campaign_for(merchant: Any, code: str = "") -> Campaign:
    return services.campaign_create(
        merchant=merchant,
        site=SiteFactory(),
        code=code or f"sale-{merchant.code}",
        name="Vente privée",
        starts_at=datetime(2030, 3, 5, 7, tzinfo=UTC),
        ends_at=datetime(2030, 3, 7, 7, tzinfo=UTC),
    )


# Every path parameter of the campaign routes → a campaign of ``merchant``.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {"campaign_id": lambda merchant: campaign_for(merchant).pk}
