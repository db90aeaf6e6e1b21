"""The pack line's hot reads as statements written once (issue 17): model rows read by plain SQL, each column
converted as the ORM converts it, then made into instances by ``Model.from_db`` as a queryset makes them
(``quai.core.rows.instances_read``, ``by_ids``; here the read of the parcels with their stations and sites).

Why: a queryset compiles its SQL again on every call (a read of ten parcels costs ~0.3 ms to compile against
~0.02 ms to run), and ``select_related`` builds one instance per joined row (a parcel, its station and the station's
site: three per parcel). The pack line's round reads its parcels and orders a few times a round, 137 rounds in the
5,000-order day. The statements here are the ones the querysets they replace wrote (the same rows, the same locks:
``FOR UPDATE`` where the database has it, in id order); ``test_pack_reads`` compares each with its queryset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from quai.core.rows import by_ids, converted, ids_in, ids_param, instances_read, reading

__all__ = ["by_ids", "instances_read", "parcels_with_stations"]


def parcels_with_stations(ids: Sequence[int], *, lock: bool = False) -> list[Any]:
    """``Parcel.objects.select_for_update(of=("self",)).select_related("station__site").filter(pk__in=ids)
    .order_by("pk")`` in one statement written once (the same join, the same rows, the lock on the parcels alone),
    a parcel's station and its site made once per station (the parcels at one station share them)."""
    from quai.packing.models import Parcel
    from quai.warehouse.models import Location, Site

    if not ids:
        return []
    quote = connection.ops.quote_name
    readings = [reading(model, ()) for model in (Parcel, Location, Site)]
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
        converted(values, 0, parcel_converters)
        current = Parcel.from_db(alias, parcel_names, values[:width])
        station_id = current.station_id
        station = stations.get(station_id)
        if station is None:
            converted(values, width, location_converters)
            converted(values, width + location_width, site_conv)
            station = Location.from_db(alias, location_names, values[width : width + location_width])
            found_site = Site.from_db(alias, site_names, values[width + location_width :])
            Location.site.field.set_cached_value(station, found_site)
            stations[station_id] = station
        Parcel.station.field.set_cached_value(current, station)
        made.append(current)
    return made
