"""Reading events back is the relay's most repeated step: an event class's field types are worked out once, not for
every event read (``typing.get_type_hints`` evaluates each annotation anew: it was a fifth of the relay's time)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import ClassVar

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
