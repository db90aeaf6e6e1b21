"""Delivery promise HTTP API: the checkout's question, the product pages' lead times, the configuration.

A merchant asks about its own SKUs only: another merchant's SKU is ``unknown_sku`` exactly like a missing one.
Every refusal is a 4xx with a code (docs/ERRORS.md); the rule itself cannot raise (``quai.promise.domain``).
"""

# No "from __future__ import annotations" here: Ninja reads the annotations at runtime.
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field as NinjaField
from ninja import Query, Router, Schema

from quai.core.errors import QuaiError, ValidationFailed
from quai.promise import services
from quai.promise.schemas import ConfigIn, ConfigLoadOut, LeadTimeOut, PromiseIn, PromiseOut
from quai.tenants.auth import principal_of
from quai.tenants.scope import Scope

router = Router(tags=["promise"])

#: How long a product page may keep a lead time (seconds): the cut-off moves it at most once a day, the backlog
#: by minutes.
LEAD_TIME_MAX_AGE = 60


def _unserved_message(code: str) -> str:
    if code == "zone_not_served":
        return _("This service does not deliver to this destination.")
    return _("This service has no ship day left in the warehouse's calendar.")


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        instant = None
    if instant is None or instant.utcoffset() is None:
        raise ValidationFailed(
            _("The instant must be ISO 8601 with its UTC offset, e.g. 2025-03-10T10:00:00+01:00."),
            code="invalid_instant",
            details={"at": value},
        )
    return instant


def _merchant_id(request: HttpRequest, merchant_id: int | None) -> int:
    """The merchant the request asks for. A merchant's own key needs no read: its authentication already checked
    the merchant is active (the checkout's hot path makes no query once warm); staff name one, which must exist."""
    principal = principal_of(request)
    if principal.merchant_id is not None:
        principal.scope(merchant_id)  # another merchant named: answered as if it did not exist
        return principal.merchant_id
    return principal.merchant_for(merchant_id).pk


@router.post("", response=PromiseOut)
def promise_ask(request: HttpRequest, payload: PromiseIn) -> dict[str, Any]:
    """For each carrier service: available now or from which date, ship date, delivery dates at the confidence,
    the cut-off and the seconds left before it, the price, and a ``promise_id`` to send back with the order."""
    quote = services.promise_quote(
        merchant_id=_merchant_id(request, payload.merchant_id),
        lines=[(line.sku, line.quantity) for line in payload.lines],
        country=payload.destination.country,
        postcode=payload.destination.postcode,
        services=payload.services,
        at=_instant(payload.at),
    )
    result = quote.result
    return {
        "at": result.at,
        "zone": result.zone.code,
        "available_now": result.stock.available_now,
        "available_from": result.stock.available_from,
        "options": [{**option.__dict__, "promise_id": quote.tokens[option.service]} for option in result.options],
        "unserved": [
            {"service": u.service, "code": u.code, "message": _unserved_message(u.code)} for u in result.unserved
        ],
    }


class LeadTimeFilters(Schema):
    merchant_id: int | None = None
    sku: list[str] = NinjaField(..., max_length=50)
    country: str = NinjaField("FR", max_length=2)
    postcode: str = NinjaField("75001", max_length=20)


@router.get("/lead-times", response=list[LeadTimeOut])
def lead_times(request: HttpRequest, response: HttpResponse, filters: Query[LeadTimeFilters]) -> list[dict[str, Any]]:
    """Per SKU, one unit to a destination (mainland France unless told): the fastest service's dates. Cacheable
    for a minute by the shop (``Cache-Control: private``: the answer is this merchant's)."""
    merchant_id = _merchant_id(request, filters.merchant_id)
    answers = []
    for code in dict.fromkeys(filters.sku):
        try:
            quote = services.promise_quote(
                merchant_id=merchant_id, lines=[(code, 1)], country=filters.country, postcode=filters.postcode
            )
        except QuaiError as error:
            if error.code != "out_of_stock":
                raise
            answers.append(
                {
                    "sku": code,
                    "available_now": False,
                    "available_from": None,
                    "service": None,
                    "ship_date": None,
                    "delivery_earliest": None,
                    "delivery_latest": None,
                }
            )
            continue
        best = quote.result.options[0]
        answers.append(
            {
                "sku": code,
                "available_now": quote.result.stock.available_now,
                "available_from": quote.result.stock.available_from,
                "service": best.service,
                "ship_date": best.ship_date,
                "delivery_earliest": best.delivery_earliest,
                "delivery_latest": best.delivery_latest,
            }
        )
    response["Cache-Control"] = f"private, max-age={LEAD_TIME_MAX_AGE}"
    return answers


@router.get("/config", response=dict[str, Any])
def config_get(request: HttpRequest) -> dict[str, Any]:
    """The whole configuration as a document ``PUT /config`` and ``manage.py promise_config load`` take (staff)."""
    Scope.all_merchants(principal_of(request))
    return services.promise_config_dump()


@router.put("/config", response=ConfigLoadOut)
def config_put(request: HttpRequest, payload: ConfigIn) -> dict[str, int]:
    """Load a configuration document (staff): all of it is checked first, nothing is written unless it is right."""
    Scope.all_merchants(principal_of(request))
    return services.promise_config_load(document=payload.dict())
