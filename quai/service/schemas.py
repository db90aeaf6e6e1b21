"""Shapes of the customer-service API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt


class CustomerOut(Schema):
    id: int
    merchant_id: int
    name: str
    email: str
    phone: str
    language: str
    trusted: bool
    erased_at: datetime | None
    created_at: datetime


class TicketCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the ticket is for.")
    channel: Literal["api", "shop"] = Field("api", description="api, or shop for an event a shop forwarded.")
    subject: str = Field("", max_length=250)
    body: str = Field(..., min_length=1, max_length=100_000)
    email: str = Field("", max_length=254)
    name: str = Field("", max_length=200)
    phone: str = Field("", max_length=40)
    order_ids: list[StrictInt] = Field(default_factory=list, max_length=20)


class TicketMessageOut(Schema):
    id: int
    kind: str
    author_label: str
    body: str
    message_id: str
    send_state: str
    automatic: bool
    problems: list[Any]
    attachments: list[Any]
    created_at: datetime


class TicketOut(Schema):
    id: int
    merchant_id: int
    reference: str
    subject: str
    channel: str
    status: str
    category: str
    suggested_category: str
    customer_id: int | None
    requester_email: str
    language: str
    order_ids: list[int]
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    auto_answered: bool
    escalation: str
    version: int
    created_at: datetime

    @staticmethod
    def resolve_order_ids(obj: Any) -> list[int]:
        return sorted(obj.orders.values_list("pk", flat=True))


class TicketDetailOut(TicketOut):
    messages: list[TicketMessageOut]
    sla: dict[str, str]

    @staticmethod
    def resolve_messages(obj: Any) -> list[Any]:
        return list(obj.messages.order_by("created_at", "id"))

    @staticmethod
    def resolve_sla(obj: Any) -> dict[str, str]:
        from quai.service.services import sla_clocks

        return sla_clocks(obj)


class TicketReplyIn(Schema):
    body: str = Field(..., min_length=1, max_length=100_000)
    resolve: StrictBool = False


class TicketNoteIn(Schema):
    body: str = Field(..., min_length=1, max_length=100_000)


class TicketStatusIn(Schema):
    status: Literal["open", "pending", "resolved", "closed"]
    reason: str = Field("", max_length=1000)


class LineIn(Schema):
    line_id: StrictInt
    quantity: StrictInt = Field(..., ge=1)


class RmaCreateIn(Schema):
    order_id: StrictInt
    lines: list[LineIn] = Field(..., min_length=1, max_length=500)
    reason: str = Field(..., max_length=20)
    kind: Literal["return", "exchange"] = "return"
    note: str = Field("", max_length=2000)
    ticket_id: StrictInt | None = None


class RmaLineOut(Schema):
    order_line_id: int
    sku_code: str
    quantity: int


class RmaOut(Schema):
    id: int
    merchant_id: int
    reference: str
    order_id: int
    kind: str
    reason: str
    status: str
    replacement_order_id: int | None
    label_requested_at: datetime | None
    lines: list[RmaLineOut]

    @staticmethod
    def resolve_lines(obj: Any) -> list[Any]:
        return list(obj.lines.all())


class RmaStatusIn(Schema):
    status: Literal["label_requested", "in_transit", "received", "closed", "cancelled"]
    reason: str = Field("", max_length=1000)


class RefundCreateIn(Schema):
    order_id: StrictInt
    amount: Decimal = Field(..., gt=0, max_digits=12, decimal_places=2)
    reason: str = Field(..., min_length=1, max_length=500)
    ticket_id: StrictInt | None = None
    rma_id: StrictInt | None = None


class RefundOut(Schema):
    id: int
    merchant_id: int
    order_id: int
    amount: Decimal
    currency: str
    reason: str
    state: str
    external_id: str
    push_error: str
    created_at: datetime


class ReshipIn(Schema):
    order_id: StrictInt
    lines: list[LineIn] = Field(..., min_length=1, max_length=500)
    reason: str = Field(..., min_length=1, max_length=500)
    paid_by: Literal["merchant", "warehouse", "carrier", "shopper"]
    ticket_id: StrictInt | None = None


class ReshipOut(Schema):
    order_id: int
    external_id: str
    status: str
