"""The pack line's hot reads as statements written once (issue 17): model rows read by plain SQL, each column
converted as the ORM converts it, then made into instances by ``Model.from_db`` as a queryset makes them.

Why: a queryset compiles its SQL again on every call (a read of ten parcels costs ~0.3 ms to compile against
~0.02 ms to run), and ``select_related`` builds one instance per joined row (a parcel, its station and the station's
site: three per parcel). The pack line's round reads its parcels and orders a few times a round, 137 rounds in the
5,000-order day. The statements here are the ones the querysets they replace wrote (the same rows, the same locks:
``FOR UPDATE`` where the database has it, in id order); ``test_pack_reads`` compares each with its queryset.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models

from quai.core.rows import ids_in, ids_param

M = TypeVar("M", bound=models.Model)

_Reading = tuple[tuple[str, ...], str, tuple[tuple[int, tuple[tuple[Any, Any], ...]], ...]]
_readings: dict[tuple[str, type[models.Model], tuple[str, ...]], _Reading] = {}
_lock = threading.Lock()


def _reading(model: type[models.Model], names: tuple[str, ...]) -> _Reading:
    """For ``names`` (field names, the primary key's among them; empty: every concrete field), the attnames
    ``from_db`` takes, the columns' SQL and, by position, the converters the ORM applies to the column (the
    backend's, then the field's) with the expression it passes them."""
    key = (connection.vendor, model, names)
    found = _readings.get(key)
    if found is not None:
        return found
    fields = [f for f in model._meta.concrete_fields if not names or f.name in names or f.attname in names]
    table = model._meta.db_table
    quote = connection.ops.quote_name
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(table)
        found_converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found_converters:
            converters.append((index, tuple((convert, expression) for convert in found_converters)))
    columns = ", ".join(f"{quote(table)}.{quote(str(f.column))}" for f in fields)
    reading: _Reading = (tuple(str(f.attname) for f in fields), columns, tuple(converters))
    with _lock:
        _readings[key] = reading
    return reading


def _converted(values: list[Any], start: int, converters: tuple[tuple[int, tuple[tuple[Any, Any], ...]], ...]) -> None:
    """A row's values from ``start`` converted in place as the ORM converts them (``_reading``'s converters)."""
    for index, found in converters:
        value = values[start + index]
        for convert, expression in found:
            value = convert(value, expression, connection)
        values[start + index] = value


def lock_clause() -> str:
    """``select_for_update()``'s clause: FOR UPDATE where the database has it (SQLite writes none)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def instances_read(
    model: type[M],
    where: str,
    params: Sequence[Any],
    *,
    fields: Sequence[str] = (),
    lock: bool = False,
    annotations: Sequence[tuple[str, str]] = (),
) -> list[M]:
    """``model``'s rows ``WHERE where`` (SQL on the model's table, ``%s`` placeholders), in id order, as the
    queryset ``model.objects.filter(…).order_by("pk")`` (``.only(*fields)`` when given, ``select_for_update()`` when
    ``lock``) returns them: each column through the ORM's converters, each row through ``from_db``.
    ``annotations``: (attribute, SQL) of text columns read with them and set on each instance, as ``annotate``."""
    names, columns, converters = _reading(model, tuple(fields))
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(str(model._meta.pk.column))
    extra = "".join(f", {expression}" for _name, expression in annotations)
    sql = f"SELECT {columns}{extra} FROM {table} WHERE {where} ORDER BY {table}.{pk}{lock_clause() if lock else ''}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    alias, width = connection.alias, len(names)
    made: list[M] = []
    for row in rows:
        values = list(row)
        _converted(values, 0, converters)
        instance = model.from_db(alias, names, values[:width])
        for (name, _expression), value in zip(annotations, values[width:], strict=True):
            setattr(instance, name, value)
        made.append(instance)
    return made


def by_ids(model: type[M], ids: Sequence[int], *, fields: Sequence[str] = (), lock: bool = False) -> list[M]:
    """``model.objects.filter(pk__in=ids).order_by("pk")`` (see ``instances_read``), the ids as one parameter."""
    if not ids:
        return []
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(str(model._meta.pk.column))
    where = f"{table}.{pk} {ids_in(connection.vendor)}"
    return instances_read(model, where, [ids_param(sorted(set(ids)))], fields=fields, lock=lock)


def parcels_with_stations(ids: Sequence[int], *, lock: bool = False) -> list[Any]:
    """``Parcel.objects.select_for_update(of=("self",)).select_related("station__site").filter(pk__in=ids)
    .order_by("pk")`` in one statement written once (the same join, the same rows, the lock on the parcels alone),
    a parcel's station and its site made once per station (the parcels at one station share them)."""
    from quai.packing.models import Parcel
    from quai.warehouse.models import Location, Site

    if not ids:
        return []
    quote = connection.ops.quote_name
    readings = [_reading(model, ()) for model in (Parcel, Location, Site)]
    parcel, location, site = (quote(m._meta.db_table) for m in (Parcel, Location, Site))
    if lock and connection.features.has_select_for_update:
        locks = f" FOR UPDATE OF {parcel}" if connection.features.has_select_for_update_of else " FOR UPDATE"
    else:
        locks = ""
    sql = (
        f"SELECT {', '.join(columns for _names, columns, _converters in readings)} FROM {parcel} "
        f"INNER JOIN {location} ON ({parcel}.{quote('station_id')} = {location}.{quote('id')}) "
        f"INNER JOIN {site} ON ({location}.{quote('site_id')} = {site}.{quote('id')}) "
        f"WHERE {parcel}.{quote('id')} {ids_in(connection.vendor)} ORDER BY {parcel}.{quote('id')}{locks}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids_param(sorted(set(ids)))])
        rows = cursor.fetchall()
    (parcel_names, _c, parcel_converters), (location_names, _l, location_converters), (site_names, _s, site_conv) = (
        readings
    )
    width, location_width = len(parcel_names), len(location_names)
    alias = connection.alias
    stations: dict[Any, Any] = {}
    made = []
    for row in rows:
        values = list(row)
        _converted(values, 0, parcel_converters)
        current = Parcel.from_db(alias, parcel_names, values[:width])
        station_id = current.station_id
        station = stations.get(station_id)
        if station is None:
            _converted(values, width, location_converters)
            _converted(values, width + location_width, site_conv)
            station = Location.from_db(alias, location_names, values[width : width + location_width])
            found_site = Site.from_db(alias, site_names, values[width + location_width :])
            Location.site.field.set_cached_value(station, found_site)
            stations[station_id] = station
        Parcel.station.field.set_cached_value(current, station)
        made.append(current)
    return made
