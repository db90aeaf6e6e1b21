"""The intake routes answer through ``schema_dumper`` instead of the response model's validation: the same JSON."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from ninja import Field, Schema
from ninja.responses import NinjaJSONEncoder
from pydantic import ValidationError

from quai.catalog.tests.factories import SkuFactory
from quai.orders import selectors
from quai.orders.api import OrderBatchOut
from quai.orders.models import OrderStatus
from quai.orders.schemas import OrderDetailOut, OrderLineOut, OrderOut, TimelineEntryOut, schema_dumper
from quai.tenants.scope import Scope

from .conftest import order_data


def _model_json(schema: type[Schema], obj: Any) -> str:
    """What Ninja answers for ``obj`` under ``schema``: its validation, then its dump, then its encoder."""
    return json.dumps(schema.model_validate(obj).model_dump(), cls=NinjaJSONEncoder)


def _dumped_json(schema: type[Schema], obj: Any) -> str:
    return json.dumps(schema_dumper(schema)(obj), cls=NinjaJSONEncoder)


@pytest.fixture
def orders(api: Any, merchant: Any, stock: Any) -> list[int]:
    plenty, scarce = SkuFactory(merchant=merchant, code="SHIRT-M"), SkuFactory(merchant=merchant, code="SCARCE")
    stock(plenty, 20)
    stock(scarce, 1)
    bodies = [
        order_data("ANS-1"),
        order_data("ANS-2", lines=[{"sku": "SCARCE", "quantity": 3, "unit_price": "0.10"}], shipping_total="0"),
        order_data(
            "ANS-3",
            priority="express",
            gift_message="Joyeux anniversaire « Zoé » 🎂\nligne 2 \\ %s",
            notes='"quoted"',
            promise={"id": "P-1", "delivery_from": "2026-12-10", "delivery_by": "2026-12-12"},
            shipping_address={
                "company": "Ça & Là",
                "line1": "1 rue X",
                "postcode": "2a004",
                "city": "Ajaccio",
                "region": "Corse",
                "country": "fr",
            },
            lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "99999.99"}, {"sku": "SCARCE", "quantity": 1}],
        ),
    ]
    return [api.post("orders", body).json()["id"] for body in bodies]


def test_an_order_s_detail_dumped_is_the_response_model_s_to_the_byte(orders: list[int], merchant: Any) -> None:
    for order_id in orders:
        read = selectors.order_detail(scope=Scope.merchant(merchant.pk), order_id=order_id)
        assert _dumped_json(OrderDetailOut, read) == _model_json(OrderDetailOut, read)
        # Its amounts and times already as the encoder writes them: encoding it calls no encoder's default.
        assert json.dumps(schema_dumper(OrderDetailOut)(read)) == _model_json(OrderDetailOut, read)


def test_a_batch_answer_dumped_is_the_response_model_s_to_the_byte(orders: list[int], merchant: Any) -> None:
    scope = Scope.merchant(merchant.pk)
    answer = {
        "results": [
            {"index": 0, "status": 201, "order": selectors.order_get(scope=scope, order_id=orders[0])},
            {"index": 1, "status": 404, "error": {"code": "sku_not_found", "message": "x", "details": {"n": 1}}},
            {"index": 2, "status": 200, "order": selectors.order_get(scope=scope, order_id=orders[2])},
        ]
    }
    assert _dumped_json(OrderBatchOut, answer) == _model_json(OrderBatchOut, answer)


def test_the_intake_answers_are_what_a_read_of_the_order_answers(api: Any, orders: list[int]) -> None:
    for order_id in orders:
        detail = api.get(f"orders/{order_id}")  # Ninja's own validation and dump
        assert detail.status_code == 200
    resent = api.post("orders", order_data("ANS-1"))
    assert resent.status_code == 200
    assert resent.content == api.get(f"orders/{orders[0]}").content
    assert resent["Content-Type"] == api.get(f"orders/{orders[0]}")["Content-Type"]


class _Inner(Schema):
    label: str
    when: date | None = None


class _Odd(Schema):
    count: int
    amount: Decimal
    status: str
    note: str = "default note"
    inner: _Inner | None = None
    items: list[_Inner]
    extra: dict[str, Any] | None = None
    renamed: str = Field(..., alias="source_name")

    @staticmethod
    def resolve_status(obj: Any) -> Any:
        return obj["raw_status"]


def test_values_not_of_their_field_s_exact_type_are_converted_as_the_model_converts_them() -> None:
    odd = {
        "count": 3,
        "amount": 7,  # an int where a Decimal is declared: "7", not 7
        "raw_status": OrderStatus.ALLOCATED,  # a str enum: its value
        "inner": {"label": "x", "when": "2026-12-01"},  # a date as text: parsed
        "items": ({"label": "tuple item"},),  # a tuple for a list
        "extra": {"a": Decimal("1.50")},
        "source_name": "by alias",
    }
    assert _dumped_json(_Odd, odd) == _model_json(_Odd, odd)
    assert json.loads(_dumped_json(_Odd, odd))["amount"] == "7"


def test_a_value_the_model_refuses_is_refused_with_the_model_s_error() -> None:
    with pytest.raises(ValidationError):
        schema_dumper(_Odd)({"count": "many", "amount": 1, "raw_status": "x", "items": [], "source_name": "s"})
    with pytest.raises(ValidationError):  # a required field missing
        schema_dumper(_Odd)({"count": 1, "amount": 1, "raw_status": "x", "items": []})


def test_an_order_s_detail_is_its_order_fields_then_its_lines_and_timeline() -> None:
    # The intake answer is dumped in these three parts (quai/orders/api.py, _created_answer).
    assert list(OrderDetailOut.model_fields) == [*OrderOut.model_fields, "lines", "timeline"]
    assert OrderDetailOut.model_fields["lines"].annotation == list[OrderLineOut]
    assert OrderDetailOut.model_fields["timeline"].annotation == list[TimelineEntryOut]


def test_an_accepted_order_s_answer_is_a_read_of_it_to_the_byte(api: Any, merchant: Any, stock: Any) -> None:
    stock(SkuFactory(merchant=merchant, code="SHIRT-M"), 5)
    stock(SkuFactory(merchant=merchant, code="SCARCE"), 1)
    for body in (
        order_data("BYTES-1"),
        order_data(
            "BYTES-2",
            promise={"id": "P-2", "delivery_from": "2026-12-10"},
            lines=[{"sku": "SCARCE", "quantity": 2, "unit_price": "3"}, {"sku": "shirt-m", "quantity": 1}],
        ),
    ):
        created = api.post("orders", body)
        assert created.status_code == 201
        assert created.content == api.get(f"orders/{created.json()['id']}").content
