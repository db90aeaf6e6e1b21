"""Promise services: quote a cart, record the promise on an order, follow it to kept or broken, load configuration.

- ``promise_quote`` gathers the snapshot (cached, ``quai.promise.selectors``), the cart's stock, and runs the pure
  rule. It writes nothing: each option carries a ``promise_id``, a signed token of what was promised (site, service,
  zone, dates), so the order that follows can prove which promise the checkout showed without a row per quote.
- ``promise_record_for_order`` runs on ``order.received``: it keeps the promise the shop passed (its token, or its
  dates) or computes one at the order's intake instant.
- Shipments are told by events of the shipping app, subscribed by name (``shipment.shipped``,
  ``shipment.tracking_event``, ``shipment.delivered``), never imported: shipping sits above promise.
- ``promise_watch`` (periodic) marks orders at risk of missing their ship-by cut-off and breaks the promises whose
  last promised day passed undelivered; each decided promise counts in its lane, which widens its confidence when
  its kept rate falls under the threshold.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.events import Envelope
from quai.core.outbox import event_record, events_record_many
from quai.core.rows import model_rows_insert, rows_insert, rows_update
from quai.orders.domain import AddressProblem
from quai.orders.selectors import order_get
from quai.promise import domain, selectors
from quai.promise.events import (
    PromiseAtRisk,
    PromiseBroken,
    PromiseKept,
    PromiseLaneWidened,
    PromiseRecorded,
    PromiseReforecast,
)
from quai.promise.models import BacklogDelta, PromiseRecord, PromiseSource, PromiseStatus, TransitLane
from quai.tenants.scope import Scope

logger = logging.getLogger(__name__)

MAX_LINES = 200


class PromiseUnavailable(QuaiError):
    status = 409
    code = "promise_not_configured"


# --- Quoting ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    result: domain.PromiseResult
    config: selectors.SiteConfig
    tokens: Mapping[str, str]


def _address_error(problem: AddressProblem, country: str, postcode: str) -> ValidationFailed:
    if problem.code == "country_invalid":
        return ValidationFailed(
            _("%(country)s is not a country code (ISO 3166-1 alpha-2, e.g. FR).") % {"country": country},
            code="invalid_country",
            details={"country": country},
        )
    example = problem.params.get("example", "")
    return ValidationFailed(
        _("%(postcode)r is not a postcode of %(country)s (e.g. %(example)s).")
        % {"postcode": postcode, "country": country.upper(), "example": example or "—"},
        code="invalid_postcode",
        details={"country": country.upper(), "postcode": postcode, "example": example},
    )


_PROBLEM_MESSAGES = {
    "out_of_stock": (Conflict, lambda p: _("%(sku)s is out of stock and no delivery announces it.") % p),
    "invalid_quantity": (ValidationFailed, lambda p: _("The quantity of %(sku)s must be above zero.") % p),
    "invalid_instant": (ValidationFailed, lambda p: _("The instant needs a UTC offset (e.g. 2025-03-10T10:00+01:00).")),
    "service_unavailable": (
        ValidationFailed,
        lambda p: _("The carrier service %(service)s is not offered from this warehouse.") % p,
    ),
    "empty_cart": (ValidationFailed, lambda p: _("The cart has no line.")),
}


def _problem_error(problem: domain.Problem) -> QuaiError:
    cls, message = _PROBLEM_MESSAGES[problem.code]
    return cls(message(dict(problem.params)), code=problem.code, details=dict(problem.params))


def promise_quote(
    *,
    merchant_id: int,
    lines: Sequence[tuple[str, int]],
    country: str,
    postcode: str,
    services: Sequence[str] | None = None,
    at: datetime | None = None,
    release_at: datetime | None = None,
) -> Quote:
    """The promise of each service for ``lines`` ((SKU code, quantity), the merchant's) sent to the destination.

    The cart's work starts once the merchant's release buffer is over: ``release_at`` when the order exists (its
    own end of buffer, fixed at intake), else the buffer the merchant's policy sets now."""
    result, config = _quote_result(
        merchant_id=merchant_id,
        config=selectors.site_config_for(merchant_id),
        lines=lines,
        country=country,
        postcode=postcode,
        services=services,
        at=at,
        release_at=release_at,
    )
    tokens = {
        option.service: promise_token(merchant_id=merchant_id, config=config, zone=result.zone.code, option=option)
        for option in result.options
    }
    return Quote(result=result, config=config, tokens=tokens)


def _quote_result(
    *,
    merchant_id: int,
    config: selectors.SiteConfig | None,
    lines: Sequence[tuple[str, int]],
    country: str,
    postcode: str,
    services: Sequence[str] | None,
    at: datetime | None,
    release_at: datetime | None,
    drains: domain.CartDrains | None = None,
    snapshots: dict[tuple[int, int | None, timedelta | None], domain.Snapshot] | None = None,
) -> tuple[domain.PromiseResult, selectors.SiteConfig]:
    """``promise_quote``'s result without its tokens (what recording an order's promise reads: signing each option
    was a tenth of it), for ``config``, the merchant's site (``selectors.site_config_for``), with that site.
    ``snapshots``: a relay batch's snapshots by (site, merchant when the buffer is the merchant's, buffer)."""
    if not lines:
        raise ValidationFailed(_("The cart has no line."), code="empty_cart")
    if len(lines) > MAX_LINES:
        raise ValidationFailed(_("A cart has at most %(n)d lines.") % {"n": MAX_LINES}, code="too_many_lines")
    for code, quantity in lines:
        if quantity <= 0:
            raise ValidationFailed(
                _("The quantity of %(sku)s must be above zero.") % {"sku": code},
                code="invalid_quantity",
                details={"sku": code, "quantity": quantity},
            )
    zone = domain.destination_zone(country, postcode)
    if isinstance(zone, AddressProblem):
        raise _address_error(zone, country, postcode)
    if config is None:
        raise PromiseUnavailable(_("No warehouse is configured to promise dates for this merchant."))
    quantities: dict[str, int] = {}
    for code, quantity in lines:
        quantities[code] = quantities.get(code, 0) + quantity
    stock = selectors.stock_of(merchant_id=merchant_id, codes=quantities, quantities=quantities)
    unknown = [code for code in quantities if code not in stock]
    if unknown:
        raise NotFound(
            _("Unknown SKU: %(skus)s.") % {"skus": ", ".join(unknown)}, code="unknown_sku", details={"skus": unknown}
        )
    cart = [
        domain.CartLine(code, quantity, on_hand=stock[code].available, incoming=stock[code].incoming or ())
        for code, quantity in quantities.items()
    ]
    instant = at or clock.now()
    buffer = None if release_at is None else max(release_at - instant, timedelta(0))
    # A relay batch's orders read the site's backlog and labour's hours through caches that do not move within
    # it (their clock is the relay's): its snapshot per site and release buffer is made once, not per order.
    key = (config.promise_site_id, merchant_id if buffer is None else None, buffer)
    snapshot = None if snapshots is None else snapshots.get(key)
    if snapshot is None:
        snapshot = selectors.snapshot_for(config, merchant_id=merchant_id, release_buffer=buffer)
        if snapshots is not None:
            snapshots[key] = snapshot
    try:
        result = domain.promise_compute(snapshot, lines=cart, zone=zone, at=instant, services=services, drains=drains)
    except domain.NoDate:
        raise PromiseUnavailable(
            _("This warehouse's calendar leaves no ship day: check its cut-offs and closures."), code="no_ship_date"
        ) from None
    if isinstance(result, domain.Problem):
        raise _problem_error(result)
    if not result.options:
        raise ValidationFailed(
            _("No carrier service of this warehouse delivers to %(country)s %(postcode)s.")
            % {"country": zone.country, "postcode": zone.postcode},
            code="destination_not_served",
            details={"zone": zone.code, "services": [u.service for u in result.unserved]},
        )
    return result, config


# --- Tokens -------------------------------------------------------------------------------------------------------

_TOKEN_SALT = "quai.promise.token"


def _day(value: date) -> str:
    return value.strftime("%y%m%d")


def _sign(value: str) -> str:
    digest = salted_hmac(_TOKEN_SALT, value, algorithm="sha256").digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def promise_token(*, merchant_id: int, config: selectors.SiteConfig, zone: str, option: domain.ServiceOption) -> str:
    """``p1.<merchant>.<site>.<service>.<zone>.<ship>.<from>.<by>.<signature>`` (≤ 100 characters: it goes in the
    order's ``promise_id``). The signature proves Quai made it, for this merchant."""
    body = ".".join(
        (
            "p1",
            str(merchant_id),
            str(config.promise_site_id),
            option.service,
            zone,
            _day(option.ship_date),
            _day(option.delivery_earliest),
            _day(option.delivery_latest),
        )
    )
    return f"{body}.{_sign(body)}"


@dataclass(frozen=True)
class TokenPromise:
    merchant_id: int
    promise_site_id: int
    service: str
    zone: str
    ship_date: date
    delivery_from: date
    delivery_by: date


def promise_token_read(token: str) -> TokenPromise | None:
    """What a token promised, or None when it is not one of ours (forged, altered, another format)."""
    parts = token.split(".")
    if len(parts) != 9 or parts[0] != "p1":
        return None
    body, signature = ".".join(parts[:8]), parts[8]
    if not constant_time_compare(_sign(body), signature):
        return None
    try:
        ship, start, end = (datetime.strptime(p, "%y%m%d").date() for p in parts[5:8])
        return TokenPromise(int(parts[1]), int(parts[2]), parts[3], parts[4], ship, start, end)
    except ValueError:
        return None


# --- Recording on the order ---------------------------------------------------------------------------------------


def on_order_received(event: Any, envelope: Envelope) -> None:
    """``order.received``: record the promise the shop showed, or compute one (idempotent: one per order)."""
    on_orders_received([(event, envelope)])


def on_orders_received(items: Sequence[tuple[Any, Envelope]]) -> None:
    """``order.received``, the relay's batch form: every order of the batch recorded at once (see
    ``promises_record_for_orders``), what ``on_order_received`` does for each in turn."""
    promises_record_for_orders(
        orders=[(int(event.order_id), envelope.merchant_id) for event, envelope in items if envelope.merchant_id]
    )


def promise_record_for_order(*, merchant_id: int, order_id: int) -> PromiseRecord | None:
    """Record the order's promise once. The shop's token wins; then the dates the shop passed (their ship date is
    computed, since the warehouse must meet it); else the promise computed at the order's intake instant. An order
    Quai cannot promise (no site, an unserved zone, no stock anywhere) is recorded as the shop's dates or not at all.
    """
    existing = PromiseRecord.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing
    order = order_get(scope=Scope.merchant(merchant_id), order_id=order_id)
    values = _promise_values(merchant_id=merchant_id, order=selectors.OrderToPromise.of(order))
    if values is None:
        return None
    with transaction.atomic():
        record, created = PromiseRecord.objects.get_or_create(order_id=order_id, defaults=values)
        if created:
            event_record(_recorded_event(record), merchant_id=merchant_id)
    return record


def promises_record_for_orders(*, orders: Sequence[tuple[int, int]]) -> list[PromiseRecord]:
    """``promise_record_for_order`` for many ``(order id, merchant id)`` at once, in a handful of queries whatever
    their number: the records that exist, the orders with their lines, each merchant's stock for all its carts in
    one read (the quotes then hit the cache), one insert of the records and one of their ``promise.recorded``
    events. Returns the records created. An order missing (or another merchant's) raises ``order_not_found`` as the
    single form does; a record another relay wrote first fails the insert: the relay then runs the single form."""
    wanted: dict[int, int] = {}
    for order_id, merchant_id in orders:
        wanted.setdefault(order_id, merchant_id)
    if not wanted:
        return []
    # The orders with their lines, each saying whether its promise exists (a record implies its order: cascade).
    found = selectors.orders_to_promise(scope=Scope.system("promise intake"), order_ids=list(wanted))
    missing = [order_id for order_id in wanted if order_id not in found or not found[order_id].promised]
    if not missing:
        return []
    skus: dict[int, list[tuple[int, str]]] = {}
    for order_id in missing:
        order = found.get(order_id)
        if order is None or order.merchant_id != wanted[order_id]:
            raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": order_id})
        skus.setdefault(order.merchant_id, []).extend(
            (sku_id, code) for sku_id, (code, _quantity) in zip(order.sku_ids, order.lines, strict=True)
        )
    # The configuration and labour's roster as they are now (one query of stamps; read again only if they moved).
    selectors.caches_check()
    for merchant_id, merchant_skus in skus.items():
        # No site promises for the merchant: no quote follows (``_promise_values``), so no stock to read for one.
        if selectors.site_config_for(merchant_id) is not None:
            selectors.stock_warm(merchant_id=merchant_id, skus=merchant_skus)
    records = []
    # Per merchant (its site's calendar, backlog and labour's hours): the batch's orders placed at one instant
    # share their drain behind the backlog.
    drains: dict[int, domain.CartDrains] = {}
    snapshots: dict[tuple[int, int | None, timedelta | None], domain.Snapshot] = {}
    for order_id in missing:
        merchant_id = wanted[order_id]
        values = _promise_values(
            merchant_id=merchant_id,
            order=found[order_id],
            drains=drains.setdefault(merchant_id, domain.CartDrains()),
            snapshots=snapshots,
        )
        if values is not None:
            records.append(PromiseRecord(order_id=order_id, **values))
    if not records:
        return []
    with transaction.atomic(savepoint=False):
        # ``bulk_create``'s rows, pks set, without compiling its statement again per batch.
        model_rows_insert(records)
        events_record_many([(_recorded_event(record), record.merchant_id) for record in records])
    return records


def _promise_values(
    *,
    merchant_id: int,
    order: selectors.OrderToPromise,
    drains: domain.CartDrains | None = None,
    snapshots: dict[tuple[int, int | None, timedelta | None], domain.Snapshot] | None = None,
) -> dict[str, Any] | None:
    """The recorded promise's fields for ``order``, or None when there is nothing to record."""
    config = selectors.site_config_for(merchant_id)
    token = promise_token_read(order.promise_id) if order.promise_id else None
    if token is not None and token.merchant_id != merchant_id:
        token = None
    values: dict[str, Any] = {"promise_id": order.promise_id}
    computed: domain.ServiceOption | None = None
    zone = ""
    if config is not None:
        wanted = [token.service] if token else ([order.carrier_service] if order.carrier_service else None)
        try:
            result, _config = _quote_result(
                merchant_id=merchant_id,
                config=config,
                lines=order.lines,
                country=order.country,
                postcode=order.postcode,
                services=wanted,
                at=order.created_at,
                release_at=order.release_after,
                drains=drains,
                snapshots=snapshots,
            )
            computed = result.options[0]
            zone = result.zone.code
        except QuaiError as error:
            logger.info("order %s: no promise computed at intake (%s)", order.pk, error.code)
    if token is not None:
        values.update(
            source=PromiseSource.SHOP,
            service=token.service,
            zone=token.zone,
            ship_date=token.ship_date,
            delivery_from=token.delivery_from,
            delivery_by=token.delivery_by,
        )
    elif order.promised_to is not None:
        values.update(source=PromiseSource.SHOP, delivery_from=order.promised_from, delivery_by=order.promised_to)
    elif computed is not None:
        values.update(
            source=PromiseSource.INTAKE,
            delivery_from=computed.delivery_earliest,
            delivery_by=computed.delivery_latest,
        )
    else:
        return None
    if computed is not None:
        values.setdefault("service", computed.service)
        values.setdefault("zone", zone)
        values.setdefault("ship_date", computed.ship_date)
        values["carrier"] = computed.carrier
        values["confidence"] = Decimal(str(computed.confidence)).quantize(Decimal("0.001"))
        if values["ship_date"] == computed.ship_date:
            values["ship_by"] = computed.cutoff
    values["merchant_id"] = merchant_id
    values["promise_site_id"] = config.promise_site_id if config else None
    return values


def _recorded_event(record: PromiseRecord) -> PromiseRecorded:
    return PromiseRecorded(
        order_id=record.order_id,
        source=record.source,
        service=record.service,
        ship_date=_iso(record.ship_date),
        delivery_from=_iso(record.delivery_from),
        delivery_by=_iso(record.delivery_by),
    )


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


# --- Shipments (events of the shipping app, by name) --------------------------------------------------------------


def _record_for(order_id: Any) -> PromiseRecord | None:
    try:
        return PromiseRecord.objects.select_related("promise_site__site", "order").get(order_id=int(order_id))
    except (PromiseRecord.DoesNotExist, TypeError, ValueError):
        return None


def _order_key(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class _Followed:
    """A record the shipment handlers follow, with what they read of its order and site."""

    record: PromiseRecord
    time_zone: str
    country: str
    postcode: str
    hold_reason: str


def _records_for(order_ids: Iterable[Any]) -> dict[int | None, _Followed]:
    """``_record_for`` for many orders in one read: the records found, by order id. The rows come as tuples, each
    record built from its own columns (``Model.from_db``) and its order's and site's few columns kept beside it:
    the order, site and warehouse built into every record were three quarters of a carrier's day of handlers."""
    ids = {key for key in (_order_key(value) for value in order_ids) if key is not None}
    if not ids:
        return {}
    rows = PromiseRecord.objects.filter(order_id__in=ids).values_list(*_RECORD_FIELDS, *_RECORD_RELATED)
    width = len(_RECORD_FIELDS)
    found: dict[int | None, _Followed] = {}
    for row in rows:
        record = PromiseRecord.from_db(DEFAULT_DB_ALIAS, _RECORD_FIELDS, row[:width])
        time_zone, country, postcode, hold_reason = row[width:]
        zone_name = time_zone if record.promise_site_id is not None else _DEFAULT_ZONE
        found[record.order_id] = _Followed(record, zone_name, country, postcode, hold_reason)
    return found


#: What the shipment handlers read of a record: all of its own columns, of its site and order only these.
_RECORD_FIELDS = tuple(field.attname for field in PromiseRecord._meta.concrete_fields)
_RECORD_RELATED = ("promise_site__site__time_zone", "order__country", "order__postcode", "order__hold_reason")
_DEFAULT_ZONE = "Europe/Paris"


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _site_zone_name(record: PromiseRecord) -> str:
    return record.promise_site.site.time_zone if record.promise_site else _DEFAULT_ZONE


def on_shipment_shipped(event: Any, envelope: Envelope) -> None:
    """``shipment.shipped`` (order_id, shipped_at): measure "shipped on time" apart from delivery."""
    on_shipments_shipped([(event, envelope)])


def on_shipments_shipped(items: Sequence[tuple[Any, Envelope]]) -> None:
    """``shipment.shipped``, the relay's batch form (and the single form's body): the records read once, each
    event applied in turn (an order told twice is shipped at its first), the changed records written in one
    update."""
    with transaction.atomic():
        records = _records_for(getattr(event, "order_id", None) for event, _envelope in items)
        changed: dict[int, PromiseRecord] = {}
        for event, _envelope in items:
            followed = records.get(_order_key(getattr(event, "order_id", None)))
            if followed is None or followed.record.shipped_at is not None:
                continue
            record = followed.record
            record.shipped_at = _instant(event.shipped_at)
            if record.ship_date is not None:
                record.shipped_on_time = domain.shipped_on_time(
                    shipped_at=record.shipped_at, ship_date=record.ship_date, time_zone=followed.time_zone
                )
            if record.status == PromiseStatus.AT_RISK:
                record.status, record.at_risk_since = PromiseStatus.PENDING, None
            changed[record.pk] = record
        _records_update(changed.values(), ["shipped_at", "shipped_on_time", "status", "at_risk_since"])


def on_shipment_tracking_event(event: Any, envelope: Envelope) -> None:
    """``shipment.tracking_event`` (order_id, status, occurred_at, estimated_delivery): a carrier's new estimate
    past the promised date re-forecasts the delivery and tells the merchant (and the shopper) before it passes."""
    estimated = getattr(event, "estimated_delivery", None)
    if not estimated:
        return
    new_date = (
        estimated if isinstance(estimated, date) and not isinstance(estimated, datetime) else _instant(estimated).date()
    )
    with transaction.atomic():
        record = _record_for(getattr(event, "order_id", None))
        if record is None or record.delivery_by is None or record.status in (PromiseStatus.KEPT, PromiseStatus.BROKEN):
            return
        if new_date <= record.delivery_by or record.forecast_date == new_date:
            return
        record.forecast_date = new_date
        if record.status == PromiseStatus.PENDING:
            record.status, record.at_risk_since = PromiseStatus.AT_RISK, clock.now()
        record.save(update_fields=["forecast_date", "status", "at_risk_since"])
        event_record(
            PromiseReforecast(
                order_id=record.order_id, delivery_by=record.delivery_by.isoformat(), forecast_date=new_date.isoformat()
            ),
            merchant_id=record.merchant_id,
        )


def on_shipment_delivered(event: Any, envelope: Envelope) -> None:
    """``shipment.delivered`` (order_id, delivered_at): kept or broken, with its cause; counts in the lane and teaches
    it the transit observed."""
    on_shipments_delivered([(event, envelope)])


def on_shipments_delivered(items: Sequence[tuple[Any, Envelope]]) -> None:
    """``shipment.delivered``, the relay's batch form (and the single form's body): the records and their lanes
    read once (the lanes locked, in id order), each event decided in turn in memory — an order told twice is
    decided at its first, a lane counts every outcome in the order they came and says each change of its widening
    where it happens — then one update of the records, one of the lanes and one insert of the events, in the order
    the events were decided."""
    with transaction.atomic():
        records = _records_for(getattr(event, "order_id", None) for event, _envelope in items)
        lanes = _lanes_for(
            [
                followed.record
                for followed in records.values()
                if followed.record.delivered_at is None and followed.record.delivery_by is not None
            ]
        )
        events: list[tuple[Any, int | None]] = []
        decided: dict[int, PromiseRecord] = {}
        touched: dict[int, TransitLane] = {}
        for event, _envelope in items:
            followed = records.get(_order_key(getattr(event, "order_id", None)))
            if followed is None:
                continue
            record = followed.record
            if record.delivered_at is not None or record.delivery_by is None:
                continue
            delivered_at = _instant(event.delivered_at)
            delivered_on = delivered_at.astimezone(domain._zone_info(followed.time_zone)).date()
            record.delivered_at = delivered_at
            decided[record.pk] = record
            if record.status in (PromiseStatus.KEPT, PromiseStatus.BROKEN):
                continue  # broken by the watch already: the cause stays
            status, cause = domain.delivery_outcome(
                delivered_on=delivered_on,
                promised_by=record.delivery_by,
                shipped_on_time=record.shipped_on_time is not False,
                hold_reason=followed.hold_reason,
            )
            record.status, record.cause, record.closed_on = status, cause, delivered_on
            events.append((_decided_event(record, status, cause), record.merchant_id))
            lane = lanes.get(_lane_key(record))
            if lane is None:
                continue
            touched[lane.pk] = lane
            widened = _lane_counted(lane, kept=status == domain.KEPT)
            if widened is not None:
                events.append((widened, None))
            if record.shipped_at is not None:
                _transit_observed(lane, followed, record.shipped_at, delivered_on)
        _records_update(decided.values(), ["delivered_at", "status", "cause", "closed_on"])
        for lane in touched.values():  # a few lanes per batch (carrier services × zones)
            lane.save(update_fields=["kept", "broken", "widened", "observed", "updated_at"])
        if touched:
            # A lane's outcomes change its observed transit or its widening: the configuration, nothing else.
            transaction.on_commit(selectors.config_invalidate)
        events_record_many(events)


def _records_update(records: Iterable[PromiseRecord], fields: Sequence[str]) -> None:
    """Write ``fields`` of ``records`` in one statement (``quai.core.rows.rows_update``). Was one ORM update per
    distinct set of values: a carrier's day delivers each parcel at its own instant, so that was an update per
    record or nearly (1,255 statements for 4,099 deliveries in a 5,000-order day, a tenth of the relay's)."""
    rows_update(list(records), fields)


def _decided_event(record: PromiseRecord, status: str, cause: str) -> PromiseKept | PromiseBroken:
    delivery_by = record.delivery_by.isoformat() if record.delivery_by else ""
    if status == domain.KEPT:
        return PromiseKept(
            order_id=record.order_id, delivery_by=delivery_by, shipped_on_time=bool(record.shipped_on_time)
        )
    return PromiseBroken(
        order_id=record.order_id, delivery_by=delivery_by, cause=cause, shipped_on_time=record.shipped_on_time
    )


def _decide(record: PromiseRecord, status: str, cause: str, *, decided_on: date) -> None:
    record.status, record.cause, record.closed_on = status, cause, decided_on
    record.save(update_fields=["delivered_at", "status", "cause", "closed_on"])
    event_record(_decided_event(record, status, cause), merchant_id=record.merchant_id)
    _lane_count(record, kept=status == domain.KEPT)


def _lane_key(record: PromiseRecord) -> tuple[int, str, str] | None:
    if record.promise_site_id is None or not record.service or not record.zone:
        return None
    return (record.promise_site_id, record.service, record.zone)


def _lanes_for(records: Iterable[PromiseRecord]) -> dict[tuple[int, str, str] | None, TransitLane]:
    """The lanes of these records, locked in id order and read in one query, by (promise site, service, zone)."""
    keys = {key for key in (_lane_key(record) for record in records) if key is not None}
    if not keys:
        return {}
    found = (
        TransitLane.objects.select_for_update()
        .select_related("service__promise_site__site")
        .filter(
            service__promise_site_id__in={key[0] for key in keys},
            service__code__in={key[1] for key in keys},
            zone__in={key[2] for key in keys},
        )
        .order_by("pk")
    )
    lanes: dict[tuple[int, str, str] | None, TransitLane] = {}
    for lane in found:
        key = (lane.service.promise_site_id, lane.service.code, lane.zone)
        if key in keys:
            lanes.setdefault(key, lane)
    return lanes


def _lane_of(record: PromiseRecord) -> TransitLane | None:
    if record.promise_site_id is None or not record.service or not record.zone:
        return None
    return (
        TransitLane.objects.select_for_update()
        .select_related("service__promise_site__site")
        .filter(service__promise_site_id=record.promise_site_id, service__code=record.service, zone=record.zone)
        .first()
    )


#: Outcomes a lane needs before its kept rate says anything.
LANE_MIN_OUTCOMES = 20


def _lane_count(record: PromiseRecord, *, kept: bool) -> None:
    lane = _lane_of(record)
    if lane is None:
        return
    widened = _lane_counted(lane, kept=kept)
    lane.save(update_fields=["kept", "broken", "widened", "updated_at"])
    if widened is not None:
        event_record(widened)
        transaction.on_commit(selectors.config_invalidate)


def _lane_counted(lane: TransitLane, *, kept: bool) -> PromiseLaneWidened | None:
    """Count one outcome in the lane (in memory): the event to tell when the lane's widening changed, else None."""
    if kept:
        lane.kept += 1
    else:
        lane.broken += 1
    site = lane.service.promise_site
    total = lane.kept + lane.broken
    confidence = domain.lane_confidence(
        kept=lane.kept,
        total=total,
        threshold=float(site.kept_rate_threshold),
        base=float(site.confidence),
        widened=float(site.widened_confidence),
        min_outcomes=LANE_MIN_OUTCOMES,
    )
    widened = confidence > float(site.confidence)
    changed = widened != lane.widened
    lane.widened = widened
    if not changed:
        return None
    return PromiseLaneWidened(
        lane_id=lane.pk,
        site=site.site.code,
        service=lane.service.code,
        zone=lane.zone,
        kept_rate=round(lane.kept / total, 4),
        confidence=confidence,
        widened=widened,
    )


def _transit_observed(lane: TransitLane, followed: _Followed, shipped_at: datetime, delivered_on: date) -> None:
    """Teach the lane (in memory) the transit days one parcel took."""
    shipped_on = shipped_at.astimezone(domain._zone_info(followed.time_zone)).date()
    zone = domain.DestinationZone(
        code=lane.zone,
        country=followed.country,
        postcode=followed.postcode,
        holiday_country=followed.country,
    )
    days = domain.transit_days_between(
        shipped_on, delivered_on, delivery_weekdays=frozenset(lane.service.delivery_weekdays), zone=zone
    )
    observed = dict(lane.observed or {})
    observed[str(days)] = int(observed.get(str(days), 0)) + 1
    lane.observed = observed


# --- The watch ----------------------------------------------------------------------------------------------------


_WATCH = Scope.system("promise watch")


def promise_watch() -> dict[str, int]:
    """Mark the orders that will miss their ship-by cut-off (and tell the merchant), clear those that no longer
    will, and break the promises whose last promised day passed undelivered. Periodic (``tasks.promise_watch``)."""
    now = clock.now()
    flagged = cleared = broken = 0
    backlog_compact()
    backlog_recount()
    for config in selectors.site_configs():
        records = selectors.open_records(scope=_WATCH, promise_site_id=config.promise_site_id)
        if not records:
            continue
        calendar = config.snapshot.calendar
        open_orders = [
            domain.OpenOrder(r.order_id, int(getattr(r, "line_count", 0)), r.ship_by, release_at=r.order.release_after)
            for r in records
            if r.ship_by
        ]
        # The capacity the promise reads (labour's hours where it knows them), so the watch flags what the promise
        # would not have promised, not what the configured figure alone says.
        capacity = replace(config.snapshot.capacity, hourly=selectors.labour_capacity_for(config))
        risky = set(domain.orders_at_risk(calendar, capacity, open_orders, now))
        for record in records:
            if record.order_id in risky and record.status == PromiseStatus.PENDING:
                _flag_at_risk(record, now)
                flagged += 1
            elif record.order_id not in risky and record.status == PromiseStatus.AT_RISK and not record.forecast_date:
                PromiseRecord.objects.filter(pk=record.pk).update(status=PromiseStatus.PENDING, at_risk_since=None)
                cleared += 1
    for record in selectors.overdue_records(scope=_WATCH, today=clock.today()):
        with transaction.atomic():
            locked = (
                PromiseRecord.objects.select_for_update(of=("self",))
                .select_related("order", "promise_site__site")
                .get(pk=record.pk)
            )
            if locked.status not in (PromiseStatus.PENDING, PromiseStatus.AT_RISK):
                continue
            zone_name = _site_zone_name(locked)
            if locked.delivery_by is None or locked.delivery_by >= clock.today(zone_name):
                continue
            _, cause = domain.delivery_outcome(
                delivered_on=clock.today(zone_name),
                promised_by=locked.delivery_by,
                shipped_on_time=locked.shipped_at is not None and locked.shipped_on_time is not False,
                hold_reason=locked.order.hold_reason,
                stock_short=locked.shipped_at is None and locked.order.status == "backordered",
            )
            _decide(locked, domain.BROKEN, cause, decided_on=clock.today(zone_name))
            broken += 1
    return {"at_risk": flagged, "cleared": cleared, "broken": broken}


def _flag_at_risk(record: PromiseRecord, now: datetime) -> None:
    with transaction.atomic():
        updated = PromiseRecord.objects.filter(pk=record.pk, status=PromiseStatus.PENDING).update(
            status=PromiseStatus.AT_RISK, at_risk_since=now
        )
        if updated:
            hold = record.order.hold_reason
            cause = domain.HOLD_CAUSES.get(hold, domain.Cause.CUSTOMER_HOLD) if hold else domain.Cause.WAREHOUSE_LATE
            event_record(
                PromiseAtRisk(
                    order_id=record.order_id,
                    ship_by=record.ship_by.isoformat() if record.ship_by else "",
                    delivery_by=_iso(record.delivery_by),
                    cause=cause,
                ),
                merchant_id=record.merchant_id,
            )


# --- The backlog ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacklogStep:
    """One ``order.status_changed``: the order's lines leave ``from_status`` and join ``to_status``."""

    merchant_id: int
    order_id: int
    from_status: str
    to_status: str


def on_order_changed(event: Any, envelope: Envelope) -> None:
    """``order.status_changed``: move the order's lines between the backlog's statuses."""
    on_orders_changed([(event, envelope)])


def on_orders_changed(items: Sequence[tuple[Any, Envelope]]) -> None:
    """``order.status_changed``, the relay's batch form: every step of the batch in one read and one insert."""
    backlog_apply(
        steps=[
            BacklogStep(envelope.merchant_id, int(event.order_id), str(event.from_status), str(event.to_status))
            for event, envelope in items
            if envelope.merchant_id is not None
        ]
    )


def backlog_apply(*, steps: Sequence[BacklogStep]) -> int:
    """Append the net moves of ``steps`` to the backlog (only the statuses the promise counts,
    ``selectors.TRACKED_STATUSES``): one read of the orders' line counts and one insert, whatever the number of
    steps, and no row updated, so two relays never wait on each other. A step of an order that is gone (or not
    the merchant's) moves nothing. Returns how many rows it appended. The outbox runs it once per event."""
    tracked = selectors.TRACKED_STATUSES
    moving = [
        step
        for step in steps
        if step.from_status != step.to_status and (step.from_status in tracked or step.to_status in tracked)
    ]
    if not moving:
        return 0
    counts = selectors.order_line_counts(
        scope=Scope.system("promise backlog"), order_ids=[step.order_id for step in moving]
    )
    net: dict[tuple[int, str], int] = {}
    for step in moving:
        found = counts.get(step.order_id)
        if found is None or found[0] != step.merchant_id:
            continue
        lines = found[1]
        for status, sign in ((step.from_status, -1), (step.to_status, 1)):
            if status in tracked:
                key = (step.merchant_id, status)
                net[key] = net.get(key, 0) + sign * lines
    rows = [{"merchant_id": merchant_id, "status": status, "lines": n} for (merchant_id, status), n in net.items() if n]
    if rows:
        rows_insert(BacklogDelta, rows)
        transaction.on_commit(selectors.backlog_invalidate)
    return len(rows)


def backlog_compact() -> int:
    """Fold the backlog's rows into one per merchant and status (``promise_watch`` runs it); returns how many rows
    it folded. It deletes the rows and re-inserts the sums of exactly the rows its ``DELETE … RETURNING`` removed,
    in one transaction: a move a relay appends meanwhile is not seen and stays, a reader sees the rows before or
    after (the same sums), and a second compaction at once re-inserts only what it deleted itself. It takes no lock
    a relay waits on (appending never touches an existing row)."""
    rows = BacklogDelta.objects.order_by()
    if rows.count() <= rows.values("merchant_id", "status").distinct().count():
        return 0
    table = connection.ops.quote_name(BacklogDelta._meta.db_table)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} RETURNING merchant_id, status, lines")
            deleted = cursor.fetchall()
        sums: dict[tuple[int, str], int] = {}
        for merchant_id, status, lines in deleted:
            sums[(merchant_id, status)] = sums.get((merchant_id, status), 0) + lines
        BacklogDelta.objects.bulk_create(
            [BacklogDelta(merchant_id=m, status=s, lines=n) for (m, s), n in sums.items() if n]
        )
    return len(deleted)


def backlog_recount() -> int:
    """Append the corrections that bring the backlog's sums to the count of the orders themselves
    (``promise_watch`` runs it): repairs orders written without their events (a bulk load) and a step counted
    twice when it raced a recount. Returns how many (merchant, status) it corrected."""
    scope = Scope.system("promise backlog recount")
    counted = selectors.backlog_counted_from_orders(scope=scope)
    summed = selectors.backlog_sums(scope=scope)
    corrections = [
        BacklogDelta(merchant_id=merchant_id, status=status, lines=counted.get(key, 0) - summed.get(key, 0))
        for key in sorted(set(counted) | set(summed))
        for merchant_id, status in (key,)
        if counted.get(key, 0) != summed.get(key, 0)
    ]
    if corrections:
        BacklogDelta.objects.bulk_create(corrections)
        transaction.on_commit(selectors.backlog_invalidate)
    return len(corrections)
