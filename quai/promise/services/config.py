"""Promise configuration from one document (JSON): the file command, the API and the demo load it the same way.

The format (docs/PROMISE.md has it in full, ``quai/promise/config/demo.json`` is the demo site's)::

    {"sites": [{
        "site": "PAR1",                                      # a warehouse site's code (it must exist)
        "calendar": {"time_zone": "Europe/Paris", "opening_days": [1, 2, 3, 4, 5, 6],
                     "opens_at": "08:00", "closes_at": "18:00"},   # optional: written to the warehouse site
        "holidays": {"country": "FR", "subdivision": ""},
        "works_public_holidays": false,
        "confidence": 0.95, "kept_rate_threshold": 0.95, "widened_confidence": 0.99, "putaway_hours": 2,
        "merchants": ["demo"],                               # merchant codes; [] or absent: every merchant
        "closures": [{"day": "2025-05-30", "reason": "Ascension bridge"}],
        "capacity": {"pick": 200, "pack": 300},              # order lines per hour of opening time
        "services": [{
            "code": "colissimo", "name": "Colissimo", "carrier": "colissimo",
            "cutoffs": {"mon": "15:00", "tue": "15:00", "sat": "11:00"},   # or ISO weekday numbers "1"…"7"
            "delivery_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat"],
            "pickup_point": false, "price": "6.90", "currency": "EUR",
            "transit": {"FR-MAINLAND": [[1, 0.8], [2, 0.97], [3, 1.0]], "FR-CORSICA": [[2, 0.6], [4, 1.0]]}
        }]
    }]}

Loading replaces what a site lists (closures, capacities, transit seeds) and deactivates its services the document
no longer names; the transit observed and the lanes' kept counts stay with their lane. The whole document is
checked first and every problem reported with its path; nothing is written unless all of it is right.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils.translation import gettext as _

from quai.core.errors import ValidationFailed
from quai.promise import domain, selectors
from quai.promise.models import CarrierService, PromiseSite, SiteClosure, Stage, StageCapacity, TransitLane
from quai.tenants.models import Merchant
from quai.warehouse import services as warehouse_services
from quai.warehouse.models import Site

WEEKDAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_ZONE = re.compile(r"^(FR-(MAINLAND|CORSICA|COM|97[1-6])|[A-Z]{2})$")


class _Checker:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    def weekday(self, path: str, value: Any) -> int | None:
        if isinstance(value, str) and value.lower()[:3] in WEEKDAY_NAMES:
            return WEEKDAY_NAMES[value.lower()[:3]]
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if 1 <= number <= 7 and not isinstance(value, bool):
            return number
        self.fail(path, _("%(value)r is not a weekday (mon…sun or 1…7).") % {"value": value})
        return None

    def time(self, path: str, value: Any) -> time | None:
        try:
            return time.fromisoformat(str(value))
        except ValueError:
            self.fail(path, _("%(value)r is not a time (HH:MM).") % {"value": value})
            return None

    def share(self, path: str, value: Any, default: str) -> Decimal | None:
        try:
            share = Decimal(str(value if value is not None else default))
        except InvalidOperation:
            share = Decimal(-1)
        if not 0 < share <= 1:
            self.fail(path, _("%(value)r is not a share between 0 and 1.") % {"value": value})
            return None
        return share


def _checked_site(check: _Checker, index: int, data: Any) -> dict[str, Any] | None:
    path = f"sites[{index}]"
    if not isinstance(data, Mapping):
        check.fail(path, _("Each site is an object."))
        return None
    out: dict[str, Any] = {}
    site = Site.objects.filter(code=str(data.get("site", ""))).first()
    if site is None:
        check.fail(f"{path}.site", _("No warehouse site has the code %(code)r.") % {"code": data.get("site")})
    out["site"] = site
    calendar = data.get("calendar") or {}
    out["calendar"] = {}
    if "time_zone" in calendar:
        try:
            ZoneInfo(str(calendar["time_zone"]))
            out["calendar"]["time_zone"] = str(calendar["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            check.fail(f"{path}.calendar.time_zone", _("Unknown time zone %(tz)r.") % {"tz": calendar["time_zone"]})
    if "opening_days" in calendar:
        days = [check.weekday(f"{path}.calendar.opening_days", d) for d in calendar["opening_days"]]
        out["calendar"]["opening_days"] = sorted({d for d in days if d})
    for key in ("opens_at", "closes_at"):
        if key in calendar:
            out["calendar"][key] = check.time(f"{path}.calendar.{key}", calendar[key])
    holidays = data.get("holidays") or {}
    out["holiday_country"] = str(holidays.get("country", "FR")).upper()
    out["holiday_subdivision"] = str(holidays.get("subdivision", "") or "")
    try:
        domain.public_holidays(out["holiday_country"], out["holiday_subdivision"], 2025)
    except ValueError:
        check.fail(
            f"{path}.holidays",
            _("The holidays library knows no holidays for %(country)s %(subdivision)s.")
            % {"country": out["holiday_country"], "subdivision": out["holiday_subdivision"]},
        )
    out["works_public_holidays"] = bool(data.get("works_public_holidays", False))
    out["confidence"] = check.share(f"{path}.confidence", data.get("confidence"), "0.95")
    out["kept_rate_threshold"] = check.share(f"{path}.kept_rate_threshold", data.get("kept_rate_threshold"), "0.95")
    out["widened_confidence"] = check.share(f"{path}.widened_confidence", data.get("widened_confidence"), "0.99")
    try:
        out["putaway_hours"] = Decimal(str(data.get("putaway_hours", 0)))
        if out["putaway_hours"] < 0:
            raise InvalidOperation
    except InvalidOperation:
        check.fail(f"{path}.putaway_hours", _("The putaway time is a number of hours, not negative."))
    codes = [str(c) for c in data.get("merchants") or []]
    merchants = list(Merchant.objects.filter(code__in=codes))
    for missing in sorted(set(codes) - {m.code for m in merchants}):
        check.fail(f"{path}.merchants", _("No merchant has the code %(code)r.") % {"code": missing})
    out["merchants"] = merchants
    out["closures"] = []
    for i, closure in enumerate(data.get("closures") or []):
        try:
            day = date.fromisoformat(str(closure["day"]))
            out["closures"].append((day, str(closure.get("reason", ""))[:200]))
        except (KeyError, TypeError, ValueError):
            check.fail(f"{path}.closures[{i}]", _('A closure is {"day": "YYYY-MM-DD", "reason": …}.'))
    out["capacity"] = {}
    for stage, rate in (data.get("capacity") or {}).items():
        if stage not in Stage.values or not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            check.fail(
                f"{path}.capacity.{stage}", _("Capacity is lines per hour (a whole number above zero) of pick or pack.")
            )
        else:
            out["capacity"][stage] = rate
    out["services"] = [
        _checked_service(check, f"{path}.services[{i}]", s) for i, s in enumerate(data.get("services") or [])
    ]
    seen = [s["code"] for s in out["services"] if s]
    if len(seen) != len(set(seen)):
        check.fail(f"{path}.services", _("Each service code appears once per site."))
    return out


def _checked_service(check: _Checker, path: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        check.fail(path, _("Each service is an object."))
        return {}
    code = str(data.get("code", ""))
    if not re.fullmatch(r"[a-z0-9_-]{1,30}", code):
        check.fail(f"{path}.code", _("A service code is 1–30 lower-case letters, digits, - or _."))
    cutoffs: dict[str, str] = {}
    for day, value in (data.get("cutoffs") or {}).items():
        weekday, at = check.weekday(f"{path}.cutoffs", day), check.time(f"{path}.cutoffs.{day}", value)
        if weekday and at:
            cutoffs[str(weekday)] = at.strftime("%H:%M")
    if not cutoffs:
        check.fail(f"{path}.cutoffs", _("A service needs at least one pick-up cut-off."))
    delivery = sorted(
        {d for d in (check.weekday(f"{path}.delivery_weekdays", v) for v in data.get("delivery_weekdays") or []) if d}
    )
    if not delivery:
        check.fail(f"{path}.delivery_weekdays", _("A service delivers on at least one weekday."))
    transit: dict[str, list[list[float]]] = {}
    for zone, steps in (data.get("transit") or {}).items():
        if not _ZONE.match(str(zone)):
            check.fail(
                f"{path}.transit.{zone}",
                _("%(zone)r is not a zone (FR-MAINLAND, FR-CORSICA, FR-971…FR-976, FR-COM or a country code).")
                % {"zone": zone},
            )
            continue
        try:
            pairs = tuple((int(d), float(s)) for d, s in steps)
            problem = domain.transit_problem(pairs)
        except (TypeError, ValueError):
            pairs, problem = (), "not a list of [days, share]"
        if problem:
            check.fail(f"{path}.transit.{zone}", _("Not a transit distribution: %(problem)s.") % {"problem": problem})
        else:
            transit[str(zone)] = [[d, s] for d, s in pairs]
    price = data.get("price")
    try:
        price = None if price in (None, "") else Decimal(str(price))
    except InvalidOperation:
        check.fail(f"{path}.price", _("The price is a decimal number."))
    return {
        "code": code,
        "name": str(data.get("name") or code)[:100],
        "carrier": str(data.get("carrier", ""))[:50],
        "cutoffs": cutoffs,
        "delivery_weekdays": delivery,
        "pickup_point": bool(data.get("pickup_point", False)),
        "price": price,
        "currency": str(data.get("currency", "EUR")).upper()[:3],
        "transit": transit,
    }


def promise_config_load(*, document: Any) -> dict[str, int]:
    """Check the whole document, then write it in one transaction (see the module docstring for the format)."""
    check = _Checker()
    if not isinstance(document, Mapping) or not isinstance(document.get("sites"), list):
        check.fail("", _('The document is an object with a "sites" list.'))
        sites: list[dict[str, Any] | None] = []
    else:
        sites = [_checked_site(check, i, s) for i, s in enumerate(document["sites"])]
    if check.errors:
        raise ValidationFailed(
            _("The promise configuration has %(n)d problem(s).") % {"n": len(check.errors)},
            code="invalid_promise_config",
            details={"errors": check.errors},
        )
    counts = {"sites": 0, "services": 0, "lanes": 0, "closures": 0}
    with transaction.atomic():
        for site_data in sites:
            assert site_data is not None
            _write_site(site_data, counts)
    transaction.on_commit(selectors.snapshot_invalidate)
    return counts


def _write_site(data: dict[str, Any], counts: dict[str, int]) -> None:
    site: Site = data["site"]
    if data["calendar"]:
        warehouse_services.site_update(site=site, **data["calendar"])
    fields = {
        key: data[key]
        for key in (
            "holiday_country",
            "holiday_subdivision",
            "works_public_holidays",
            "confidence",
            "kept_rate_threshold",
            "widened_confidence",
            "putaway_hours",
        )
    }
    promise_site, created = PromiseSite.objects.select_for_update().get_or_create(site=site, defaults=fields)
    if not created:
        for key, value in fields.items():
            setattr(promise_site, key, value)
        promise_site.version += 1
        promise_site.save()
    promise_site.merchants.set(data["merchants"])
    SiteClosure.objects.filter(promise_site=promise_site).delete()
    SiteClosure.objects.bulk_create(
        SiteClosure(promise_site=promise_site, day=day, reason=reason) for day, reason in dict(data["closures"]).items()
    )
    StageCapacity.objects.filter(promise_site=promise_site).exclude(stage__in=list(data["capacity"])).delete()
    for stage, rate in data["capacity"].items():
        StageCapacity.objects.update_or_create(
            promise_site=promise_site, stage=stage, defaults={"lines_per_hour": rate}
        )
    listed = [s["code"] for s in data["services"]]
    CarrierService.objects.filter(promise_site=promise_site).exclude(code__in=listed).update(active=False)
    for service_data in data["services"]:
        transit = service_data.pop("transit")
        service, _created = CarrierService.objects.update_or_create(
            promise_site=promise_site, code=service_data["code"], defaults={**service_data, "active": True}
        )
        TransitLane.objects.filter(service=service).exclude(zone__in=list(transit)).delete()
        for zone, steps in transit.items():
            TransitLane.objects.update_or_create(service=service, zone=zone, defaults={"seed": steps})
            counts["lanes"] += 1
        counts["services"] += 1
    counts["sites"] += 1
    counts["closures"] += len(data["closures"])


def promise_config_dump() -> dict[str, Any]:
    """The configuration as a document ``promise_config_load`` takes back (what the API's GET answers)."""
    sites = []
    for promise_site in PromiseSite.objects.select_related("site").prefetch_related(
        "merchants", "closures", "capacities", "services__lanes"
    ):
        site = promise_site.site
        sites.append(
            {
                "site": site.code,
                "calendar": {
                    "time_zone": site.time_zone,
                    "opening_days": list(site.opening_days),
                    "opens_at": str(site.opens_at)[:5],
                    "closes_at": str(site.closes_at)[:5],
                },
                "holidays": {"country": promise_site.holiday_country, "subdivision": promise_site.holiday_subdivision},
                "works_public_holidays": promise_site.works_public_holidays,
                "confidence": float(promise_site.confidence),
                "kept_rate_threshold": float(promise_site.kept_rate_threshold),
                "widened_confidence": float(promise_site.widened_confidence),
                "putaway_hours": float(promise_site.putaway_hours),
                "merchants": sorted(m.code for m in promise_site.merchants.all()),
                "closures": [{"day": c.day.isoformat(), "reason": c.reason} for c in promise_site.closures.all()],
                "capacity": {c.stage: c.lines_per_hour for c in promise_site.capacities.all()},
                "services": [
                    {
                        "code": s.code,
                        "name": s.name,
                        "carrier": s.carrier,
                        "cutoffs": dict(s.cutoffs),
                        "delivery_weekdays": list(s.delivery_weekdays),
                        "pickup_point": s.pickup_point,
                        "price": str(s.price) if s.price is not None else None,
                        "currency": s.currency,
                        "transit": {lane.zone: lane.seed for lane in s.lanes.all()},
                    }
                    for s in promise_site.services.all()
                    if s.active
                ],
            }
        )
    return {"sites": sites}
