"""Typed events: one base class, one registry, subscriptions by name or by prefix.

- An event is a frozen dataclass deriving from ``Event``, in the past tense, with class-level ``name``
  ("inventory.stock_changed": ``<app>.<what_happened>``), ``aggregate`` (what it is about: "sku", "asn") and
  ``schema_version`` (1 until its fields change incompatibly), and an ``aggregate_id`` (a field or a property).
  Defining the class registers it: ``event_class(name)`` finds it again, ``registered_events()`` lists them all, and
  a second class with a name already taken is an error at import time, so two apps can never publish different
  payloads under one name. A base that declares no ``name`` of its own (shared fields, a shared ``aggregate_id``)
  is abstract and is not registered.
- The schema version is called ``schema_version``, not ``version``, because ``version`` already means something in
  our payloads: the optimistic-locking version of the record an event reports (``SkuCreated.version``).
- ``event_from_row`` turns a stored outbox row back into its typed event. A row written under an older schema
  version is first brought up to date by the upcasters registered with ``register_upcaster`` (one per version
  step), so handlers only ever see the current shape. Fields added later with a default take it when an older row
  lacks them.
- Handlers receive ``(event, envelope)``: the typed event and its ``Envelope`` (event id, when it occurred, for
  which merchant), never the raw row. ``subscribe(pattern, key, fn)`` runs ``fn`` for every event whose name is
  ``pattern`` exactly, starts with ``pattern``'s prefix (``"order.*"``) or for every event (``"*"``). The ``key``
  names the handler for idempotency (``HandledEvent``), so it must stay the same across deployments. A handler
  that reads per event what it could read once for many (its subscribers, its merchants' settings) may also give a
  ``batch`` form: the relay then hands it all its events of one relay batch at once (``subscribe(..., batch=)``).

This module imports no model: the relay in ``quai.core.outbox`` reads the rows and dispatches through it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Protocol, Union
from uuid import UUID

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_PATTERN_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")


class Event:
    """Base of every domain event. Subclasses are ``@dataclass(frozen=True)`` and set ``name`` and ``aggregate``."""

    name: ClassVar[str]
    aggregate: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only a class that names itself is an event; a base without its own name only shares fields.
        if "name" in cls.__dict__:
            _register(cls)


_registry: dict[str, type[Event]] = {}


def _register(cls: type[Event]) -> None:
    name = cls.__dict__["name"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise TypeError(f"{cls.__qualname__}.name must look like 'app.something_happened', not {name!r}")
    version = cls.schema_version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TypeError(f"{cls.__qualname__}.schema_version must be an integer >= 1, not {version!r}")
    if not hasattr(cls, "aggregate_id") and "aggregate_id" not in _annotations(cls):
        raise TypeError(f"{cls.__qualname__} needs an aggregate_id (a field or a property)")
    existing = _registry.get(name)
    # Re-running the same class definition (a module reloaded by the autoreloader) replaces it; anything else
    # claiming a taken name is a second payload under one name, which receivers could not tell apart.
    if existing is not None and (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"event name {name!r} is already taken by {existing.__module__}.{existing.__qualname__}; "
            f"{cls.__module__}.{cls.__qualname__} must choose another"
        )
    _registry[name] = cls


def _annotations(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(inspect.get_annotations(klass))
    return merged


def event_class(name: str) -> type[Event]:
    """The event class registered under ``name``; ``LookupError`` when there is none."""
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"no event is registered under the name {name!r}") from None


def registered_events() -> list[type[Event]]:
    """Every registered event class, sorted by name."""
    return [_registry[name] for name in sorted(_registry)]


def aggregate_id_of(event: Event) -> str:
    value = getattr(event, "aggregate_id", "")
    return "" if value is None else str(value)


# --- payloads -------------------------------------------------------------------------------------------------


# Values ``_jsonable`` returns as they are, by exact type (a subclass, an ``IntEnum`` say, takes the long way).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def event_payload(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-ready values (dates as ISO strings, decimals and uuids as strings)."""
    names = _field_names.get(type(event))
    if names is None:
        if not isinstance(event, Event) or not dataclasses.is_dataclass(event):
            raise TypeError("an event must be an instance of a quai.core.events.Event dataclass")
        names = _field_names[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    payload = {}
    for name in names:
        value = getattr(event, name)
        payload[name] = value if type(value) in _SCALARS else _jsonable(value)
    return payload


# An event class's field names, in order, looked up once (``dataclasses.fields`` builds its list anew per call:
# ``event_payload`` runs for every event recorded, 26,000 in a simulated day of 1,000 orders).
_field_names: dict[type, tuple[str, ...]] = {}


def _from_json(hint: Any, value: Any) -> Any:
    """Turn a JSON value back into the field's declared type (the inverse of ``_jsonable`` for what we store)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _from_json(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return origin(_from_json(item, v) for v in value)
    if origin is dict:
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        return {k: _from_json(item, v) for k, v in value.items()}
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    if hint is Decimal:
        return Decimal(value)
    if hint is UUID:
        return UUID(value)
    return value


# --- reading rows back ------------------------------------------------------------------------------------------


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_upcasters: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(name: str, from_version: int, fn: Upcaster) -> None:
    """``fn(payload)`` turns a payload of ``name`` written at ``from_version`` into one of ``from_version + 1``.

    When an event's fields change incompatibly, bump its ``schema_version`` and register the step here (in the
    same ``events.py``): rows already in the outbox, written with the old shape, still reach handlers.
    """
    _upcasters[(name, from_version)] = fn


class StoredEvent(Protocol):
    """What ``event_from_row`` reads from an outbox row (``quai.core.models.OutboxEvent`` fits)."""

    event_id: UUID
    name: str
    schema_version: int
    merchant_id: int | None
    aggregate: str
    aggregate_id: str
    payload: Any
    occurred_at: datetime


@dataclass(frozen=True)
class Envelope:
    """What travels around an event: its id (the key receivers deduplicate on), when and for whom it happened."""

    event_id: UUID
    name: str
    schema_version: int
    occurred_at: datetime
    merchant_id: int | None
    aggregate: str
    aggregate_id: str

    @classmethod
    def of(cls, row: StoredEvent) -> Envelope:
        # What the frozen ``__init__`` sets, in its order, as one dict (its ``object.__setattr__`` per field was
        # most of this, once per event relayed); the relay's tests compare it with the ``__init__``'s.
        envelope = object.__new__(cls)
        envelope.__dict__.update(
            event_id=row.event_id,
            name=row.name,
            schema_version=row.schema_version,
            occurred_at=row.occurred_at,
            merchant_id=row.merchant_id,
            aggregate=row.aggregate,
            aggregate_id=row.aggregate_id,
        )
        return envelope


def event_from_payload(name: str, payload: Mapping[str, Any], *, schema_version: int = 1) -> Event:
    """The typed event ``name`` built from a stored payload written at ``schema_version``, upcast if older."""
    cls = event_class(name)
    data = dict(payload)
    if schema_version > cls.schema_version:
        raise ValueError(f"{name} v{schema_version} is newer than this code knows (v{cls.schema_version})")
    for version in range(schema_version, cls.schema_version):
        step = _upcasters.get((name, version))
        if step is None:
            raise LookupError(f"no upcaster registered for {name} from version {version} to {version + 1}")
        data = step(data)
    build = _builders.get(cls)
    if build is None:
        build = _builders[cls] = _builder(cls)
    return build(data)


def _from_fields(cls: type[Event], data: dict[str, Any]) -> Event:
    """The plain form: every field converted (``_converter``), the instance built by the class's ``__init__``."""
    converters, fields = _shape_of(cls)
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"{cls.name} v{cls.schema_version} has no field(s) {sorted(unknown)}")
    values = {key: converters[key](value) for key, value in data.items()}
    return cls(**values)


_builders: dict[type[Event], Callable[[dict[str, Any]], Event]] = {}


def _builder(cls: type[Event]) -> Callable[[dict[str, Any]], Event]:
    """How ``event_from_payload`` builds a ``cls`` from a payload of the current version: what ``_from_fields``
    builds, with the work per event that gives nothing left out — the fields whose value JSON holds as it is (ints,
    strings, dicts of them: most fields) are not passed through a converter, and the frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field) becomes one ``__dict__`` update, the defaults filled in as it
    fills them. Any payload off the usual path (a field missing, one unknown, a class with a ``__post_init__``, slots
    or fields outside ``__init__``) takes ``_from_fields``, so errors and odd classes stay as they were. Why: the
    relay reads back every event it hands out, 28 an order (1.4 s of a profiled 5,000-order day). Equal field by
    field, types included, for every registered event: core's test_event_rebuild."""
    converters, field_names = _shape_of(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    plain = (
        hasattr(cls, "__post_init__")
        or "__slots__" in cls.__dict__
        or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        or any(not f.init for f in fields)
    )
    if plain:
        return functools.partial(_from_fields, cls)
    converting = tuple((name, fn) for name, fn in converters.items() if fn is not _unchanged and name in field_names)
    order = tuple(f.name for f in fields)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = tuple((f.name, f.default_factory) for f in fields if f.default_factory is not dataclasses.MISSING)
    count = len(order)
    new = object.__new__

    def build(data: dict[str, Any]) -> Event:
        if len(data) != count or not field_names.issuperset(data):
            return _from_fields(cls, data)  # a default to fill in, or an unknown field: the plain form says which
        for name, fn in converting:
            value = data[name]
            if value is not None:
                data[name] = fn(value)
        event = new(cls)
        event.__dict__.update({name: data[name] for name in order})
        return event

    if defaults or factories:
        plain_count = count

        def build_filled(data: dict[str, Any]) -> Event:
            if len(data) == plain_count or not field_names.issuperset(data):
                return build(data)
            for name, value in defaults.items():
                data.setdefault(name, value)
            for name, factory in factories:
                if name not in data:
                    data[name] = factory()
            return build(data)

        return build_filled
    return build


_shapes: dict[type[Event], tuple[dict[str, Callable[[Any], Any]], frozenset[str]]] = {}


def _shape_of(cls: type[Event]) -> tuple[dict[str, Callable[[Any], Any]], frozenset[str]]:
    """An event class's field converters and names, made once per class: ``get_type_hints`` evaluates every
    annotation anew on each call, which was a fifth of the relay's time (it reads back every event it hands out),
    and looking at each field's type again per event (``_from_json``) most of what was left."""
    shape = _shapes.get(cls)
    if shape is None:
        fields = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        shape = _shapes[cls] = ({name: _converter(hint) for name, hint in hints.items()}, fields)
    return shape


def _unchanged(value: Any) -> Any:
    return value


def _converter(hint: Any) -> Callable[[Any], Any]:
    """``lambda value: _from_json(hint, value)``, with the look at ``hint`` done once: the same result for every
    value (None stays None at every level)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _converter(options[0]) if len(options) == 1 else _unchanged
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(hint)
        item = _converter(args[0] if args else Any)
        return lambda value: None if value is None else origin(item(v) for v in value)
    if origin is dict:
        args = typing.get_args(hint)
        item = _converter(args[1] if len(args) == 2 else Any)
        return lambda value: None if value is None else {k: item(v) for k, v in value.items()}
    if hint is datetime:
        return lambda value: None if value is None else datetime.fromisoformat(value)
    if hint is date:
        return lambda value: None if value is None else date.fromisoformat(value)
    if hint is Decimal:
        return lambda value: None if value is None else Decimal(value)
    if hint is UUID:
        return lambda value: None if value is None else UUID(value)
    return _unchanged


def event_from_row(row: StoredEvent) -> Event:
    """The typed event stored in an outbox row (upcast to the current schema version when written by older code)."""
    return event_from_payload(row.name, row.payload or {}, schema_version=row.schema_version)


# --- subscriptions ----------------------------------------------------------------------------------------------


Handler = Callable[[Any, Envelope], None]
#: ``batch(items)``: ``items`` are ``(event, envelope)`` pairs in the order they happened.
BatchHandler = Callable[[Sequence[tuple[Any, Envelope]]], None]


@dataclass(frozen=True)
class Subscription:
    pattern: str
    key: str
    fn: Handler
    batch: BatchHandler | None = None
    recorded: bool = True

    def matches(self, name: str) -> bool:
        if self.pattern == "*":
            return True
        if self.pattern.endswith(".*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern


_subscriptions: dict[str, Subscription] = {}
_matching: dict[str, dict[str, Subscription]] = {}


def subscribe(pattern: str, key: str, fn: Handler, *, batch: BatchHandler | None = None, recorded: bool = True) -> None:
    """Run ``fn(event, envelope)`` once per event matching ``pattern``; ``key`` names the handler.

    ``pattern`` is an event name ("inventory.stock_changed"), a prefix ending in ``.*`` ("order.*") or ``"*"``
    for every event. Handlers must be idempotent by ``envelope.event_id`` beyond what the relay guarantees (the
    relay records each success, so a retried event skips the handlers that already succeeded). Subscribing the
    same key again replaces it (``AppConfig.ready()`` may run more than once in tests).

    ``batch``, optional: ``batch(items)`` does for several events at once exactly what ``fn`` does for each of
    them in turn (``items``: ``(event, envelope)`` pairs in the order they happened), in fewer queries. The relay
    calls it with this handler's events of one relay batch, inside one savepoint; if it raises, that savepoint is
    rolled back and ``fn`` runs on each event alone, so one event's failure stays its own.

    ``recorded=False``: for a handler idempotent by its own writes alone (a unique constraint under which a second
    run writes nothing, and no other effect): the relay records no ``HandledEvent`` row for it, so every retry of
    its event (another handler failed, a relay died) runs it again. Why: the webhook fan-out runs on every event and
    almost always finds no subscription that wants it; its rows were 42 % of all the relay wrote in a sale. A
    handler relayed first (``quai.core.outbox.relay_first``) so subscribed still writes its row on the events where
    it is the only mark its priority pass could find (``quai.core.outbox.recorded_keys``).
    """
    if not _PATTERN_PATTERN.match(pattern):
        raise ValueError(f"{pattern!r} is not an event name, a prefix like 'order.*', or '*'")
    if not key:
        raise ValueError("a subscription needs a key: it is how the relay remembers what already ran")
    _subscriptions.pop(key, None)
    _subscriptions[key] = Subscription(pattern=pattern, key=key, fn=fn, batch=batch, recorded=recorded)
    _matching.clear()


def unsubscribe(key: str) -> None:
    """Stop the handler subscribed under ``key`` (nothing happens if there is none)."""
    _subscriptions.pop(key, None)
    _matching.clear()


def subscribers_for(name: str) -> dict[str, Handler]:
    """The handlers to run for an event named ``name``, by key, in the order they subscribed."""
    return {key: sub.fn for key, sub in _subscriptions.items() if sub.matches(name)}


def subscriptions_for(name: str) -> dict[str, Subscription]:
    """The subscriptions (handler and batch form, if any) matching ``name``, by key, in the order they subscribed.

    Kept per name until the next ``subscribe``/``unsubscribe``: the relay asks for every event it hands out, and
    matching each against every subscription was a tenth of its own time. A copy: callers may change it."""
    found = _matching.get(name)
    if found is None:
        found = _matching[name] = {key: sub for key, sub in _subscriptions.items() if sub.matches(name)}
    return dict(found)


def subscriptions() -> list[Subscription]:
    return list(_subscriptions.values())
