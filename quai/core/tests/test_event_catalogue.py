"""docs/EVENTS.md is what the registry generates: a new event, field or version cannot ship undocumented."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from django.core.management import CommandError, call_command

from quai.core.event_catalogue import catalogue_markdown, catalogue_path, catalogued_events, event_section, type_name
from quai.core.events import Event


def test_docs_events_md_is_what_the_registry_generates():
    assert catalogue_path().read_text(encoding="utf-8") == catalogue_markdown(), (
        "docs/EVENTS.md is out of date: run `manage.py events_catalogue` and commit it"
    )


def test_the_catalogue_lists_every_apps_events_and_no_test_event():
    names = {cls.name for cls in catalogued_events()}
    assert {"inventory.stock_changed", "catalog.sku_created", "inbound.asn_received"} <= names
    assert not any(name.startswith("test.") for name in names)


def test_each_event_shows_its_version_aggregate_docstring_and_typed_fields():
    section = event_section(_event("inventory.count_task_changed"))
    assert "### `inventory.count_task_changed`" in section
    assert "Schema version 1 · aggregate `count_task`" in section
    assert "A cycle count moved along its state machine" in section
    assert "| `sku_id` | int \\| None |  |" in section
    assert "| `sku_code` | str | `''` |" in section


def test_types_read_as_a_merchant_expects_them():
    assert type_name(int | None) == "int | None"
    assert type_name(list[dict[str, object]]) == "list[dict[str, object]]"


def test_an_event_without_a_docstring_cannot_be_catalogued():
    @dataclass(frozen=True)
    class Silent(Event):
        name: ClassVar[str] = "test.silent"
        aggregate_id: int

    with pytest.raises(ValueError, match="docstring"):
        event_section(Silent)


def test_the_command_check_fails_when_the_file_is_out_of_date(tmp_path):
    stale = tmp_path / "EVENTS.md"
    stale.write_text("# Event catalogue\n", encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("events_catalogue", "--check", "--output", str(stale))
    call_command("events_catalogue", "--output", str(stale))
    call_command("events_catalogue", "--check", "--output", str(stale))
    assert stale.read_text(encoding="utf-8") == catalogue_markdown()


def _event(name: str) -> type[Event]:
    return next(cls for cls in catalogued_events() if cls.name == name)
