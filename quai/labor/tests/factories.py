from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from quai.labor import services
from quai.labor.models import StaffingPlan, StaffMember
from quai.tenants.tests.factories import StaffUserFactory
from quai.warehouse.tests.factories import SiteFactory


def staff_member(username: str = "", site: Any = None) -> StaffMember:
    user = StaffUserFactory(username=username) if username else StaffUserFactory()
    return services.staff_create(user=user, site=site or SiteFactory())


def plan_for(site: Any = None, orders: float = 100) -> StaffingPlan:
    site = site or SiteFactory()
    services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("100"))
    services.standard_set(site=site, activity="pack", lines_per_hour=Decimal("120"))
    services.standard_set(site=site, activity="ship", lines_per_hour=Decimal("300"))
    return services.staffing_plan_create(
        site=site,
        forecast=[services.ForecastHour(hour=datetime(2030, 1, 7, 9, tzinfo=UTC), orders=orders)],
        lines_per_order=2,
    )


# Labour's rows are the 3PL's, not a merchant's: the merchant argument is ignored, and a merchant key gets 403 on
# every labour route anyway (staff only).
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "staff_id": lambda merchant: staff_member().pk,
    "plan_id": lambda merchant: plan_for().pk,
}
