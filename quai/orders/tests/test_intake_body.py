"""Reading an order's body: the shortcuts taken for plain JSON give the answers the full reading gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from quai.orders import schemas
from quai.orders.api import OrderBatchIn
from quai.orders.schemas import OrderCreateIn

from .conftest import order_data

pytestmark = pytest.mark.django_db

BODIES: list[Any] = [
    order_data("B-1"),
    order_data("B-2", promise={"id": "P", "delivery_from": "2026-12-01", "delivery_by": None}, priority="vip"),
    order_data("B-3", lines=[{"sku": "A", "quantity": "2"}, {"sku": "", "quantity": 1.5, "unit_price": "1.234"}]),
    order_data("B-4", shopper="Camille", shipping_address=["12 rue"], lines="SHIRT-M"),
    order_data("B-5", lines=[5, None, {"sku": "A", "quantity": True}], promise=[]),
    order_data("B-6", merchant_id="3", priority="urgent", currency="EURO", shipping_total=-1),
    {"external_id": "B-7"},
    {"external_id": "B-8", "shopper": {}, "shipping_address": {}, "lines": [{}], "unknown": {"x": 1}},
    [],
    "not an object",
]


def _reading(schema: Any, body: Any) -> Any:
    try:
        return ("valid", schema.model_validate(body).model_dump())
    except ValidationError as error:
        # Everything the API's answer is made of (quai/api.py _validation_error); "input" is the object validated,
        # the dict itself or Ninja's getter around it.
        return ("refused", [{k: v for k, v in e.items() if k != "input"} for e in error.errors(include_url=False)])


@pytest.mark.parametrize("index", range(len(BODIES)))
def test_a_body_read_as_a_dict_is_validated_and_refused_as_through_ninja_s_getter(index: int, monkeypatch) -> None:
    body = BODIES[index]
    as_dict = _reading(OrderCreateIn, body)
    batch_as_dict = _reading(OrderBatchIn, {"orders": [body, order_data("B-0")]})
    monkeypatch.setattr(schemas, "BODY_AS_DICT", False)
    assert as_dict == _reading(OrderCreateIn, body)
    assert batch_as_dict == _reading(OrderBatchIn, {"orders": [body, order_data("B-0")]})


def _post_raw(api: Any, raw: bytes) -> Any:
    return api.client.post("/api/v1/orders", data=raw, content_type="application/json", headers=api.headers)


def _refused_field(response: Any) -> list[str]:
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "invalid_input"
    return [field["field"] for field in response.json()["error"]["details"]["fields"]]


def test_a_surrogate_sent_as_raw_utf8_bytes_is_refused_as_its_escape_is(api) -> None:
    # json.loads decodes bytes with "surrogatepass": 0xED 0xA0 0x80 is a lone surrogate, with no backslash in sight.
    raw = json.dumps(order_data("RAW-1", notes="NOTE")).encode().replace(b"NOTE", b"ab\xed\xa0\x80")
    assert _refused_field(_post_raw(api, raw)) == ["notes"]


def test_a_nul_in_a_body_sent_as_utf16_is_refused(api) -> None:
    raw = json.dumps(order_data("RAW-2", notes="a\x00b")).encode("utf-16")
    assert _refused_field(_post_raw(api, raw)) == ["notes"]
