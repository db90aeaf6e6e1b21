"""Reading events back is the relay's most repeated step: an event class's field types are worked out once, not for
every event read (``typing.get_type_hints`` evaluates each annotation anew: it was a fifth of the relay's time)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

import pytest

from quai.core import events
from quai.core.events import Event, event_from_payload


@dataclass(frozen=True)
class ShelfLabelled(Event):
    """A shelf got its label (a test event)."""

    name: ClassVar[str] = "test.shelf_labelled"
    aggregate: ClassVar[str] = "shelf"

    shelf_id: int
    code: str
    printer: str | None = None

    @property
    def aggregate_id(self) -> int:
        return self.shelf_id


def test_an_event_class_s_field_types_are_read_once_for_every_event_read_back(monkeypatch):
    calls: list[type] = []
    real = typing.get_type_hints

    def counted(obj, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(events, "_shapes", {})
    monkeypatch.setattr(events.typing, "get_type_hints", counted)
    read = [event_from_payload("test.shelf_labelled", {"shelf_id": n, "code": f"A-{n}"}) for n in range(50)]
    assert read[7] == ShelfLabelled(shelf_id=7, code="A-7")
    assert calls == [ShelfLabelled]
    with pytest.raises(ValueError, match="no field"):  # the shape read once still refuses a field it does not have
        event_from_payload("test.shelf_labelled", {"shelf_id": 1, "code": "A", "colour": "red"})


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (datetime, "2030-01-07T09:30:15.123456+00:00"),
        (date, "2030-01-07"),
        (Decimal, "9.90"),
        (UUID, "12345678-1234-5678-1234-567812345678"),
        (int | None, None),
        (Decimal | None, "1.5"),
        (int | str, "x"),
        (tuple[str, ...], ["a", "b"]),
        (list[Decimal], ["1", "2.5"]),
        (frozenset[int], [1, 2]),
        (dict[str, date], {"a": "2030-01-01"}),
        (dict[str, list[UUID]] | None, {"k": ["12345678-1234-5678-1234-567812345678"]}),
        (list[date | None], ["2030-01-01", None]),
        (str, "plain"),
        (typing.Any, {"left": "as is"}),
        (datetime, None),
    ],
)
def test_a_field_s_converter_made_once_reads_a_value_back_as_the_type_walk_does(hint, value):  # type: ignore[no-untyped-def]
    assert events._converter(hint)(value) == events._from_json(hint, value)
    assert type(events._converter(hint)(value)) is type(events._from_json(hint, value))
