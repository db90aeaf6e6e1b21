"""The committer's raw write path (``quai.orders.services.rows``) writes exactly the rows the ORM writes.

Column by column, on whichever database the suite runs (SQLite by default, PostgreSQL with DATABASE_URL): an
order, its lines and its outbox events inserted by ``rows_insert`` / ``events_insert`` against the same values
through ``Model.objects.create`` / ``bulk_create`` / ``events_record_many``; then a whole order written by the batch
path (``orders_write_many``) against the same order written alone by the ORM path (``order_write``), with ids mapped.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.models import OutboxEvent, StateTransition
from quai.core.outbox import events_record_many
from quai.inventory.models import Reservation
from quai.orders.events import OrderReceived
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services import order_create
from quai.orders.services import rows as rows_module
from quai.orders.services.intake import order_validate
from quai.orders.services.intake_batched import IntakeItem, orders_write_many
from quai.orders.services.rows import events_insert, model_rows_insert, rows_insert
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db

# Text a hand-written statement could get wrong: quotes, backslashes, a JSON-looking string, accents, emoji, a
# newline, percent signs (a placeholder's look-alike).
AWKWARD = 'L\'Atelier "Zoé" \\ 100 % {"a": 1} — 🎁\nligne 2 %s %%'


def _columns(model: type[Any], pk: int, skip: set[str]) -> dict[str, Any]:
    return {key: value for key, value in model.objects.filter(pk=pk).values().get().items() if key not in skip}


def _order_values(merchant: Any, external_id: str) -> dict[str, Any]:
    now = clock.now().replace(microsecond=123456)
    return {
        "merchant_id": merchant.pk,
        "channel": "shopify",
        "external_id": external_id,
        "status": OrderStatus.RECEIVED,
        "priority": "vip",
        "currency": "EUR",
        "shopper_name": AWKWARD,
        "shopper_email": "zoe@example.fr",
        "shopper_phone": "+33612345678",
        "ship_company": "",
        "address_line1": "12 rue de la Roquette",
        "address_line2": AWKWARD,
        "postcode": "20000",
        "city": "Ajaccio",
        "region": "",
        "country": "FR",
        "carrier_service": "colissimo_home",
        "promise_id": "P-1",
        "promised_from": date(2026, 12, 24),
        "promised_to": None,
        "gift_message": AWKWARD,
        "notes": "",
        "shipping_total": Decimal("4.90"),
        "lines_total": Decimal("9999999999.99"),
        "total": Decimal("0.01"),
        "release_after": now + timedelta(minutes=15),
        "fingerprint": "f" * 64,
        "created_at": now,
        "updated_at": now,
    }


def test_an_order_row_inserted_raw_is_the_row_the_orm_inserts(merchant):
    orm = Order.objects.create(**_order_values(merchant, "ORM"))
    [(pk, external_id)] = rows_insert(Order, [_order_values(merchant, "RAW")], returning=("id", "external_id"))
    assert external_id == "RAW"
    # updated_at is auto_now: the ORM stamps it with the insert's own time, the batch with the batch's (as before).
    skip = {"id", "external_id", "updated_at"}
    assert _columns(Order, pk, skip) == _columns(Order, orm.pk, skip)
    assert _columns(Order, pk, skip)["shopper_name"] == AWKWARD


def test_an_order_whose_key_is_taken_is_skipped_and_returns_nothing(merchant):
    Order.objects.create(**_order_values(merchant, "TAKEN"))
    returned = rows_insert(
        Order,
        [_order_values(merchant, "TAKEN"), _order_values(merchant, "FREE")],
        returning=("external_id",),
        skip_conflicts=True,
    )
    assert returned == [("FREE",)]
    assert Order.objects.filter(external_id="TAKEN").count() == 1


def test_lines_inserted_raw_are_the_lines_bulk_create_inserts_with_their_ids_set(merchant):
    order = Order.objects.create(**_order_values(merchant, "LINES"))
    sku = SkuFactory(merchant=merchant, code="ÉTÉ-1")

    def lines(first: int) -> list[OrderLine]:
        return [
            OrderLine(
                order=order,
                position=first + index,
                sku=sku,
                sku_code=sku.code,
                quantity=2**31 - 1 if index == 0 else 1,
                unit_price=Decimal("19.90") if index else Decimal("0.00"),
                reservation_id=None if index == 0 else 2**40,
                reserved_quantity=0 if index == 0 else 1,
                backordered_quantity=2**31 - 1 if index == 0 else 0,
            )
            for index in range(3)
        ]

    by_orm, raw = lines(1), lines(11)
    OrderLine.objects.bulk_create(by_orm)
    model_rows_insert(raw)
    assert all(line.pk is not None and not line._state.adding for line in raw)
    assert len({line.pk for line in raw}) == 3
    for orm_line, raw_line in zip(by_orm, raw, strict=True):
        assert raw_line.pk == OrderLine.objects.get(order=order, position=raw_line.position).pk
        assert _columns(OrderLine, raw_line.pk, {"id", "position"}) == _columns(
            OrderLine, orm_line.pk, {"id", "position"}
        )


def _received(order_id: int) -> OrderReceived:
    return OrderReceived(
        order_id=order_id,
        channel="shopify",
        external_id=AWKWARD,
        priority="vip",
        currency="EUR",
        total="1234567.89",
        carrier_service="colissimo_home",
        lines=[{"sku_code": "ÉTÉ-1", "quantity": 3}, {"sku_code": AWKWARD, "quantity": 1}],
    )


def test_events_inserted_raw_are_the_rows_events_record_many_writes_in_order_with_one_nudge(merchant, monkeypatch):
    nudges: list[int] = []
    monkeypatch.setattr(rows_module, "outbox_nudge", lambda: nudges.append(1))
    events = [(_received(7), merchant.pk), (_received(8), None)]
    event_ids = events_record_many(events)
    stored = {row.event_id: row for row in OutboxEvent.objects.filter(event_id__in=event_ids)}
    by_outbox = [stored[event_id] for event_id in event_ids]
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    events_insert(events)
    raw = list(OutboxEvent.objects.filter(id__gt=before).order_by("id"))
    assert len(raw) == 2 and nudges == [1]
    skip = {"id", "event_id", "occurred_at"}
    for orm_row, raw_row in zip(by_outbox, raw, strict=True):
        assert _columns(OutboxEvent, raw_row.pk, skip) == _columns(OutboxEvent, orm_row.pk, skip)
        assert raw_row.event_id != orm_row.event_id
    assert raw[0].occurred_at == raw[1].occurred_at  # one time for the batch, as events_record_many
    assert [row.aggregate_id for row in raw] == ["7", "8"]


def _written(order: Order) -> dict[str, Any]:
    """Every row one order's intake wrote, ids replaced by their role, times and external id left out."""
    reservations = list(Reservation.objects.filter(document_id__startswith=f"{order.pk}/").order_by("document_id"))
    held = {str(r.pk): f"<reservation {r.document_id[-1]}>" for r in reservations}

    def role(key: str, value: Any, within: dict[str, Any]) -> Any:
        kind = within.get("aggregate") if key == "aggregate_id" else key
        if kind in ("order_id", "order") and str(value) == str(order.pk):
            return "<order>"
        if kind in ("reservation_id", "reservation") and str(value) in held:
            return held[str(value)]
        if key == "document_id" and isinstance(value, str) and value.startswith(f"{order.pk}/"):
            return "<order>" + value[len(str(order.pk)) :]
        return value

    def mapped(value: Any) -> Any:
        """Ids by role under the keys that hold one (at any depth: the events' payloads too)."""
        if isinstance(value, dict):
            return {key: role(key, mapped(item), value) for key, item in value.items() if key != "external_id"}
        if isinstance(value, list):
            return [mapped(item) for item in value]
        return value

    times = {"id", "created_at", "updated_at", "release_after", "at", "occurred_at", "event_id", "fingerprint"}
    row = _columns(Order, order.pk, times | {"external_id"})
    lines = [
        mapped({k: v for k, v in line.items() if k not in times})
        for line in OrderLine.objects.filter(order=order).order_by("position").values()
    ]
    reservation_rows = [
        mapped({k: v for k, v in item.items() if k not in times})
        for item in Reservation.objects.filter(pk__in=[r.pk for r in reservations]).order_by("document_id").values()
    ]
    steps = [
        mapped({k: v for k, v in item.items() if k not in times})
        for item in StateTransition.objects.filter(aggregate="order", aggregate_id=str(order.pk)).values()
    ]
    aggregates = [("order", str(order.pk))] + [("reservation", str(r.pk)) for r in reservations]
    events = [
        mapped({k: v for k, v in item.items() if k not in times})
        for item in OutboxEvent.objects.order_by("id").values()
        if (item["aggregate"], item["aggregate_id"]) in aggregates
    ]
    return {"order": row, "lines": lines, "reservations": reservation_rows, "steps": steps, "events": events}


def test_an_order_written_by_the_batch_path_has_exactly_the_rows_of_the_orm_path(merchant, stock):
    hot = SkuFactory(merchant=merchant, code="HOT-1")
    mug = SkuFactory(merchant=merchant, code="MUG-2")
    stock(hot, 4)
    stock(mug, 100)

    def body(external_id: str) -> dict[str, Any]:
        return order_data(
            external_id,
            priority="vip",
            gift_message=AWKWARD,
            promise={"id": "P-9", "delivery_from": "2026-12-22", "delivery_by": "2026-12-24"},
            lines=[
                {"sku": "MUG-2", "quantity": 1, "unit_price": "9.90"},
                {"sku": "HOT-1", "quantity": 2, "unit_price": "19.90"},
            ],
        )

    alone = order_create(merchant=merchant, data=body("ALONE"), actor="shop", release_buffer_minutes=15)
    draft = order_validate(merchant=merchant, data=body("BATCHED"))
    with transaction.atomic():
        [together] = orders_write_many(
            [IntakeItem(draft=draft, actor="shop", release_buffer_minutes=15, received_at=clock.now())], None
        )
    assert together.created and together.order.status == "allocated"  # type: ignore[union-attr]
    assert _written(together.order) == _written(alone.order)  # type: ignore[union-attr]
    # The answer is built from what was written: the lines' ids are the stored ones.
    stored = dict(OrderLine.objects.filter(order=together.order).values_list("position", "id"))  # type: ignore[union-attr]
    assert {line.position: line.pk for line in together.lines} == stored  # type: ignore[union-attr]


def test_a_backordered_order_written_by_the_batch_path_has_exactly_the_rows_of_the_orm_path(merchant, stock):
    hot = SkuFactory(merchant=merchant, code="HOT-1")
    stock(hot, 3)
    body = order_data("X", lines=[{"sku": "HOT-1", "quantity": 2, "unit_price": "19.90"}], notes=AWKWARD)
    alone = order_create(merchant=merchant, data={**body, "external_id": "ALONE"}, release_buffer_minutes=15)
    assert alone.order.status == "allocated"
    alone_short = order_create(
        merchant=merchant, data={**body, "external_id": "ALONE-SHORT"}, release_buffer_minutes=15
    )
    stock(hot, 1)  # one unit for the batch's order too: both orders are one unit short
    draft = order_validate(merchant=merchant, data={**body, "external_id": "BATCHED-SHORT"})
    with transaction.atomic():
        [together] = orders_write_many(
            [IntakeItem(draft=draft, actor=None, release_buffer_minutes=15, received_at=clock.now())], None
        )
    assert alone_short.order.status == together.order.status == "backordered"  # type: ignore[union-attr]
    assert _written(together.order) == _written(alone_short.order)  # type: ignore[union-attr]


def test_the_batch_path_no_longer_goes_through_the_orm_for_its_own_rows(merchant, stock, monkeypatch):
    sku = SkuFactory(merchant=merchant, code="MUG-2")
    stock(sku, 10)

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("an ORM insert of intake's own rows on the batch path")

    monkeypatch.setattr(OrderLine.objects, "bulk_create", refused)
    draft = order_validate(
        merchant=merchant, data=order_data("RAW-ONLY", lines=[{"sku": "MUG-2", "quantity": 1, "unit_price": "1"}])
    )
    with transaction.atomic():
        [outcome] = orders_write_many(
            [IntakeItem(draft=draft, actor=None, release_buffer_minutes=15, received_at=clock.now())], None
        )
    assert outcome.created  # type: ignore[union-attr]
    assert OrderLine.objects.filter(order=outcome.order).count() == 1  # type: ignore[union-attr]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-parameter form is PostgreSQL's")
def test_on_postgresql_a_raw_insert_is_one_statement_text_of_one_parameter_whatever_its_rows(merchant):
    # psycopg parses a statement of more than 50 parameters again on every call: a VALUES list of a batch's orders
    # (~30 columns each) always was one. The JSON form keeps one text and one parameter for 2 rows as for 40.
    sent: list[tuple[str, int]] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        for count in (2, 40):
            rows_insert(Order, [_order_values(merchant, f"N{count}-{index}") for index in range(count)])
    assert len(sent) == 2 and sent[0] == sent[1] and sent[0][1] == 1
    assert Order.objects.filter(external_id__startswith="N40-").count() == 40


def test_the_batch_s_order_instance_built_directly_is_the_one_order_keywords_build(merchant, monkeypatch):
    from quai.orders.services import intake_batched

    SkuFactory(merchant=merchant, code="MUG-2")
    draft = order_validate(
        merchant=merchant,
        data=order_data(
            "POS",
            gift_message=AWKWARD,
            promise={"id": "P-9", "delivery_from": "2026-12-22"},
            lines=[{"sku": "MUG-2", "quantity": 3, "unit_price": "9.90"}],
        ),
    )
    now = clock.now()
    built = intake_batched._order_row(draft, now=now, release_buffer_minutes=15)
    keywords = Order(**intake_batched._order_values(draft, now=now, release_buffer_minutes=15))
    assert {k: v for k, v in vars(built).items() if k != "_state"} == {
        k: v for k, v in vars(keywords).items() if k != "_state"
    }
    assert [type(value) for value in vars(built).values()] == [type(value) for value in vars(keywords).values()]
    assert vars(built._state) == vars(keywords._state)
    assert built.pk is None and built.version == keywords.version and built.hold_reason == keywords.hold_reason
    original = intake_batched._order_values
    monkeypatch.setattr(intake_batched, "_order_values", lambda *a, **k: {**original(*a, **k), "no_such_field": 1})
    with pytest.raises(TypeError):  # a value of no field is refused, as Order(**values) refuses it
        intake_batched._order_row(draft, now=now, release_buffer_minutes=15)


def _instance_state(instance: Any) -> tuple[Any, ...]:
    """Everything an instance holds: its attributes (names, values and types, in order) and its state."""
    attributes = {key: value for key, value in vars(instance).items() if key != "_state"}
    return (
        attributes,
        [(key, type(value)) for key, value in attributes.items()],
        {key: value for key, value in vars(instance._state).items() if key != "fields_cache"},
        instance._state.fields_cache,
    )


def test_the_batch_s_line_instance_built_directly_is_the_one_order_line_keywords_build(merchant):
    from quai.orders.services.intake_batched import _model_new

    sku = SkuFactory(merchant=merchant, code="MUG-3")
    order = Order.objects.create(**_order_values(merchant, "LINE"))
    values = {
        "position": 2,
        "sku_code": "MUG-3",
        "quantity": 3,
        "unit_price": Decimal("9.90"),
        "backordered_quantity": 3,
    }
    built = _model_new(OrderLine, values, {"order": order, "sku": sku})
    keywords = OrderLine(order=order, sku=sku, **values)
    assert _instance_state(built) == _instance_state(keywords)
    assert built.order is order and built.sku is sku and built.order_id == order.pk and built.pk is None
    assert _instance_state(_model_new(OrderLine, {**values, "order_id": order.pk, "sku_id": sku.pk})) == (
        _instance_state(OrderLine(order_id=order.pk, sku_id=sku.pk, **values))
    )


def test_a_model_built_directly_falls_back_to_init_where_init_would_do_more(merchant):
    from django.db.models.signals import post_init

    from quai.orders.services.intake_batched import _model_new

    order = Order.objects.create(**_order_values(merchant, "FALL"))
    with pytest.raises(TypeError):  # a value of no field, refused as OrderLine(**values) refuses it
        _model_new(OrderLine, {"position": 1, "no_such_field": 1})
    with pytest.raises(TypeError):  # a related row of no relation field
        _model_new(OrderLine, {"position": 1}, {"no_such_relation": order})
    with pytest.raises(ValueError):  # not an order: the descriptor's own check, as in OrderLine(order=...)
        _model_new(OrderLine, {"position": 1}, {"order": object()})  # type: ignore[dict-item]
    seen: list[Any] = []

    def listener(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(instance)

    post_init.connect(listener, sender=OrderLine)
    try:
        line = _model_new(OrderLine, {"position": 1}, {"order": order})
    finally:
        post_init.disconnect(listener, sender=OrderLine)
    assert seen == [line]  # a listener is called: the instance went through Model.__init__
