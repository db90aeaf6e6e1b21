"""The relay's rebuild of an event from its payload (``event_from_payload``'s per-class builder, which skips the
converters that change nothing and the frozen ``__init__``) equals the plain form (every field converted, the class's
``__init__``) for every registered event: same class, same fields, each value of the same type and equal — dates,
decimals, uuids and nested lists and dicts included — with its optional fields given, None or left to their
defaults; and a payload off that path (an unknown field, a required one missing) fails as before."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Union
from uuid import UUID

import pytest
from django.apps import apps

from quai.core import events
from quai.core.events import event_from_payload, event_payload, registered_events


def _sample(hint: Any, seed: int) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _sample(options[0], seed)
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return origin([_sample(item, seed), _sample(item, seed + 1)])
    if origin is dict:
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        return {"k": _sample(item, seed), "l": _sample(item, seed + 1)}
    if hint is bool:
        return seed % 2 == 0
    if hint is int:
        return 1000 + seed
    if hint is float:
        return 1.25 + seed
    if hint is str:
        return f"s{seed}"
    if hint is datetime:
        return datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC) + timedelta(minutes=seed)
    if hint is date:
        return date(2026, 12, 4) + timedelta(days=seed)
    if hint is Decimal:
        return Decimal("12.340") + seed
    if hint is UUID:
        return UUID(int=seed + 1)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return next(iter(hint))
    # Any, object: what JSON holds (a handler's free-form dict)
    return {"qty": seed, "sku": f"A-{seed}", "at": [1, "b", None], "nested": {"x": 1.5}}


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def _deep_types(value: Any) -> Any:
    if isinstance(value, dict):
        return (dict, {k: _deep_types(v) for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return (type(value), [_deep_types(v) for v in value])
    return (type(value), value)


def _assert_same(fast: Any, plain: Any) -> None:
    assert type(fast) is type(plain)
    assert fast == plain
    assert hash(fast) == hash(plain) if _hashable(plain) else True
    for field in dataclasses.fields(plain):
        assert _deep_types(getattr(fast, field.name)) == _deep_types(getattr(plain, field.name)), field.name
    assert list(vars(fast)) == list(vars(plain))  # the same attributes, in the same order


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _payloads(cls: type[events.Event]) -> list[dict[str, Any]]:
    """Three payloads of ``cls``: every field given; optional fields None; fields with defaults left out."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    full = {f.name: _sample(hints[f.name], i) for i, f in enumerate(fields)}
    nones = {name: (None if _optional(hints[name]) else value) for name, value in full.items()}
    defaults = {
        f.name: full[f.name]
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return [event_payload(cls(**values)) for values in (full, nones)] + [event_payload(cls(**defaults))]


def _every_event() -> list[type[events.Event]]:
    """Every application's events, imported (an app's ``events`` module is not always imported by Django's setup)."""
    for app in apps.get_app_configs():
        if importlib.util.find_spec(f"{app.name}.events") is not None:
            importlib.import_module(f"{app.name}.events")
    return [cls for cls in registered_events() if cls.__module__.startswith("quai.") and ".tests" not in cls.__module__]


EVENTS = _every_event()


def test_every_application_s_events_are_checked_and_take_the_builder_s_path():
    assert len(EVENTS) > 55
    assert not [cls.name for cls in EVENTS if isinstance(events._builder(cls), functools.partial)]


@pytest.mark.parametrize("cls", EVENTS, ids=[cls.name for cls in EVENTS])
def test_the_rebuild_equals_the_plain_form_for_every_registered_event(cls):
    for payload in _payloads(cls):
        for _round in range(2):  # the builder made on the first read, used on the second
            fast = event_from_payload(cls.name, dict(payload), schema_version=cls.schema_version)
            plain = events._from_fields(cls, dict(payload))
            _assert_same(fast, plain)
        omitted = {k: v for k, v in payload.items() if k in {f.name for f in dataclasses.fields(plain)}}
        assert event_payload(fast) == event_payload(plain) == omitted | event_payload(plain)


@pytest.mark.parametrize("cls", EVENTS, ids=[cls.name for cls in EVENTS])
def test_a_payload_off_the_path_fails_as_the_plain_form_does(cls):
    payload = _payloads(cls)[0]
    with pytest.raises(ValueError, match="has no field"):
        event_from_payload(cls.name, payload | {"no_such_field": 1}, schema_version=cls.schema_version)
    required = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if required:
        short = {k: v for k, v in payload.items() if k != required[0]}
        with pytest.raises(TypeError):
            event_from_payload(cls.name, short, schema_version=cls.schema_version)


def test_a_default_factory_gives_each_event_its_own_value():
    with_factory = [
        cls
        for cls in EVENTS
        if any(f.default_factory is not dataclasses.MISSING for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    ]
    assert with_factory
    for cls in with_factory:
        payload = _payloads(cls)[2]
        one = event_from_payload(cls.name, dict(payload), schema_version=cls.schema_version)
        two = event_from_payload(cls.name, dict(payload), schema_version=cls.schema_version)
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.default_factory is not dataclasses.MISSING:
                assert getattr(one, field.name) == getattr(two, field.name)
                assert getattr(one, field.name) is not getattr(two, field.name)


def test_an_aware_datetime_keeps_its_offset():
    cls = next(
        cls
        for cls in EVENTS
        if any(typing.get_type_hints(cls)[f.name] is datetime for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    )
    payload = _payloads(cls)[0]
    name = next(f.name for f in dataclasses.fields(cls) if typing.get_type_hints(cls)[f.name] is datetime)  # type: ignore[arg-type]
    moment = datetime(2026, 12, 4, 23, 0, tzinfo=timezone(timedelta(hours=1)))
    payload[name] = moment.isoformat()
    fast = event_from_payload(cls.name, payload, schema_version=cls.schema_version)
    assert getattr(fast, name) == moment and getattr(fast, name).utcoffset() == timedelta(hours=1)


def test_an_envelope_of_a_row_equals_the_one_its_init_builds():
    row = types.SimpleNamespace(
        event_id=UUID(int=7),
        name="order.received",
        schema_version=2,
        occurred_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        merchant_id=None,
        aggregate="order",
        aggregate_id="42",
        payload={},
    )
    fields = [f.name for f in dataclasses.fields(events.Envelope)]
    built = events.Envelope(**{name: getattr(row, name) for name in fields})
    envelope = events.Envelope.of(row)
    assert envelope == built and hash(envelope) == hash(built)
    assert list(vars(envelope).items()) == list(vars(built).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.name = "other"  # type: ignore[misc]
