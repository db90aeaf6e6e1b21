"""The event registry and subscriptions, without a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar

import pytest

from quai.core.events import (
    Event,
    event_class,
    event_from_payload,
    event_payload,
    registered_events,
    subscribe,
    subscribers_for,
    unsubscribe,
)


@dataclass(frozen=True)
class LabelPrinted(Event):
    """A label came out of a printer (a test event)."""

    name: ClassVar[str] = "test.label_printed"
    aggregate: ClassVar[str] = "label"

    label_id: int
    printed_on: date
    cost: Decimal
    copies: list[int]
    printer: str | None = None

    @property
    def aggregate_id(self) -> int:
        return self.label_id


def test_defining_an_event_registers_it_under_its_name():
    assert event_class("test.label_printed") is LabelPrinted
    assert LabelPrinted in registered_events()
    with pytest.raises(LookupError):
        event_class("test.never_defined")


def test_a_second_event_with_a_taken_name_is_refused_at_definition():
    with pytest.raises(ValueError, match="already taken"):

        @dataclass(frozen=True)
        class Impostor(Event):
            name: ClassVar[str] = "test.label_printed"
            aggregate_id: int

    assert event_class("test.label_printed") is LabelPrinted


def test_an_event_needs_a_dotted_name_and_an_aggregate_id():
    with pytest.raises(TypeError, match="name"):

        class Shouting(Event):
            name: ClassVar[str] = "LabelPrinted"
            aggregate_id: int

    with pytest.raises(TypeError, match="aggregate_id"):

        class Anonymous(Event):
            name: ClassVar[str] = "test.anonymous"


def test_a_payload_comes_back_as_the_typed_event_with_defaults_for_fields_added_later():
    event = LabelPrinted(label_id=1, printed_on=date(2030, 5, 6), cost=Decimal("0.12"), copies=[1, 2], printer="Z1")
    assert event_from_payload("test.label_printed", event_payload(event)) == event
    older = {"label_id": 1, "printed_on": "2030-05-06", "cost": "0.12", "copies": [1]}  # written before `printer`
    assert event_from_payload("test.label_printed", older).printer is None


def test_subscriptions_match_by_exact_name_by_prefix_or_everything():
    def handler(event: Event, envelope: object) -> None:
        return None

    try:
        subscribe("test.label_printed", "test.exact", handler)
        subscribe("test.*", "test.prefix", handler)
        subscribe("*", "test.all", handler)
        # Apps subscribe too (integrations' webhook fan-out takes "*"): only this test's keys are compared.
        mine = lambda name: [key for key in subscribers_for(name) if key.startswith("test.")]  # noqa: E731
        assert mine("test.label_printed") == ["test.exact", "test.prefix", "test.all"]
        assert mine("test.label_jammed") == ["test.prefix", "test.all"]
        assert "test.prefix" not in subscribers_for("testing.label_printed")  # a prefix stops at a dot
        unsubscribe("test.prefix")
        assert "test.prefix" not in subscribers_for("test.label_printed")
        for wrong in ("test", "test.", "te*", "Test.*", "test.*.x"):
            with pytest.raises(ValueError):
                subscribe(wrong, "test.wrong", handler)
    finally:
        for key in ("test.exact", "test.prefix", "test.all"):
            unsubscribe(key)
