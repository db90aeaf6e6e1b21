"""Multi-row INSERTs and UPDATEs for hot paths (the outbox's events, the relay's ``HandledEvent`` rows, the
promise's records; ``rows_update`` and ``values_update``: the pack line's, the totes', the trucks' and the
deliveries' writes), portable between SQLite and PostgreSQL.

The same statement as ``quai.orders.services.rows`` builds for intake's rows (whose docstring tells why not
``bulk_create``: the ORM compiles the statement again and prepares every value through its compiler on each call),
here because ``core`` imports no app: orders may import it from here. The statement is built once per (table,
number of rows) and each value is prepared as the ORM prepares it (``Field.get_db_prep_save``), text and whole
numbers bound to text or integer columns passed through unchanged as the ORM does; fields a row leaves out take
their model default. PostgreSQL reads the rows as ONE JSON parameter (``json_to_recordset``), so the statement's
text is the same for any number of rows; SQLite a VALUES list. Both return the inserted ids in VALUES order.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.operations import BaseDatabaseOperations
from psycopg.dbapi20 import Binary
from psycopg.types.json import Json, Jsonb

# Rows per statement: far below either database's limit of bound parameters (SQLite 32,766; PostgreSQL 65,535) for
# the widest table written here (orders, 37 columns).
INSERT_CHUNK = 400

# Columns whose ORM preparation returns a ``str`` or an ``int`` value unchanged (checked per value: anything else —
# None, Decimal, dates, UUIDs, JSON — goes through ``get_db_prep_save``).
_PASS_THROUGH_TYPES = frozenset(
    {
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "ForeignKey",
    }
)

_TEXT_TYPES = frozenset({"CharField", "TextField", "SlugField", "EmailField"})


@functools.cache
def _columns(model: type[models.Model]) -> tuple[tuple[str, models.Field[Any, Any], bool], ...]:
    """The model's inserted columns: (attname, field, whether a str/int value passes through unchanged)."""
    return tuple(
        (str(field.attname), field, field.get_internal_type() in _PASS_THROUGH_TYPES)
        for field in model._meta.concrete_fields
        if not field.primary_key
    )


@functools.lru_cache(maxsize=1024)
def _insert_sql(model: type[models.Model], vendor: str, count: int, returning: tuple[str, ...], skip: bool) -> str:
    """The statement for ``count`` rows: on PostgreSQL one text whatever the count (the rows come as one JSON
    document, ``json_to_recordset``), elsewhere a VALUES list of ``count`` rows."""
    quote = connection.ops.quote_name
    columns = _columns(model)
    names = ", ".join(quote(str(field.column)) for _name, field, _plain in columns)
    if vendor == "postgresql":
        typed = ", ".join(f"{quote(str(field.column))} {field.db_type(connection)}" for _name, field, _plain in columns)
        source = f"json_to_recordset(%s) AS r({typed})"
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT {names} FROM {source}"
    else:
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES {', '.join([marks] * count)}"
    if skip:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    return sql


_MISSING = object()
Preparer = Callable[[Any, Any], Any]


def _slow(field: models.Field[Any, Any], json_doc: bool) -> Preparer:
    """The ORM's own preparation (``get_db_prep_save``), then, for PostgreSQL's JSON document, the value's JSON form."""
    if json_doc:
        return lambda value, db: _json_value(field.get_db_prep_save(value, db))
    return field.get_db_prep_save


def _preparer(field: models.Field[Any, Any], vendor: str, json_doc: bool) -> Preparer:
    """``value, db → what the ORM binds`` for one column (on PostgreSQL its JSON form, ``_json_value``), with the
    commonest values prepared directly — each to exactly what ``get_db_prep_save`` gives them (what the equivalence
    tests check) — and any other value through the ORM (``_slow``). Why: ``get_db_prep_save`` of an aware datetime,
    a UUID or a dict cost ~5–15 µs each (a datetime goes through ``to_python``, the naive-datetime check and the
    backend's adapter), most of ``rows_insert``'s time: 98,000 rows in a simulated day."""
    slow = _slow(field, json_doc)
    kind = field.get_internal_type()
    if kind in _PASS_THROUGH_TYPES:
        # text to a text column, a whole number to an integer one (either to a foreign key, as before), None as None
        passes = (str,) if kind in _TEXT_TYPES else (str, int) if kind == "ForeignKey" else (int,)

        def plain(value: Any, db: Any) -> Any:
            return value if type(value) in passes or value is None else slow(value, db)

        return plain
    if kind == "DateTimeField":
        if vendor == "postgresql":  # the adapter passes it on; its JSON form is its ISO text (offset, microseconds)

            def moment_pg(value: Any, db: Any) -> Any:
                if type(value) is datetime and value.utcoffset() is not None:
                    return value.isoformat() if json_doc else value
                return None if value is None else slow(value, db)

            return moment_pg
        if vendor == "sqlite" and settings.USE_TZ:  # ``make_naive`` in the connection's time zone, then ``str``

            def moment_sqlite(value: Any, db: Any) -> Any:
                if type(value) is datetime and value.utcoffset() is not None:
                    return str(value.astimezone(db.timezone).replace(tzinfo=None))
                return None if value is None else slow(value, db)

            return moment_sqlite
        return slow
    if kind == "UUIDField":
        native = vendor == "postgresql"

        def uuid_value(value: Any, db: Any) -> Any:
            if type(value) is uuid.UUID:
                return (str(value) if json_doc else value) if native else value.hex
            return None if value is None else slow(value, db)

        return uuid_value
    if kind == "JSONField" and getattr(field, "encoder", None) is None and (json_doc or vendor == "sqlite"):
        # PostgreSQL: ``Jsonb(value)``, whose JSON form is the value itself; SQLite: ``json.dumps(value)``.

        def document(value: Any, db: Any) -> Any:
            cls = type(value)
            if cls is dict or cls is list:
                return value if json_doc else json.dumps(value)
            return slow(value, db)

        return document
    if kind == "BooleanField":

        def flag(value: Any, db: Any) -> Any:
            return value if type(value) is bool else slow(value, db)

        return flag
    if kind == "DateField" and type(field).get_db_prep_value is models.DateField.get_db_prep_value:
        # None is None on every backend; a date's JSON form is its ISO text (PostgreSQL's adapter passes the date on,
        # the others' give ``str(date)``, the same text). Anything else through the ORM.

        def day(value: Any, db: Any) -> Any:
            if value is None:
                return None
            if json_doc and type(value) is date:
                return value.isoformat()
            return slow(value, db)

        return day
    if kind == "DecimalField" and type(field).get_db_prep_value is models.DecimalField.get_db_prep_value:
        # The ORM's preparation of a finite Decimal is the same Decimal (``to_python``'s ``Decimal(value)`` twice, the
        # backend's adapter returns it as it is): its JSON form its text. Anything else (a float, a str, NaN) goes
        # through the ORM, which converts or refuses it.
        ops = connections[DEFAULT_DB_ALIAS].ops
        if ops.connection.vendor == vendor and (
            type(ops).adapt_decimalfield_value is BaseDatabaseOperations.adapt_decimalfield_value
        ):

            def amount(value: Any, db: Any) -> Any:
                if type(value) is Decimal and value.is_finite():
                    return str(value) if json_doc else value
                return slow(value, db)

            return amount
    return slow


@functools.cache
def _preparers(
    model: type[models.Model], vendor: str, json_doc: bool
) -> tuple[tuple[str, models.Field[Any, Any], Preparer], ...]:
    return tuple((name, field, _preparer(field, vendor, json_doc)) for name, field, _plain in _columns(model))


def _prepared(model: type[models.Model], row: Mapping[str, Any], db: Any) -> list[Any]:
    """The row's values in column order, prepared for ``db`` (the connection itself: each attribute read through
    ``django.db.connection``'s proxy costs a thread-local look-up, hundreds per batch)."""
    values = []
    for name, field, prepare in _preparers(model, db.vendor, False):
        value = row.get(name, _MISSING)
        values.append(prepare(field.get_default() if value is _MISSING else value, db))
    return values


def _json_value(value: Any) -> Any:
    """A value ``get_db_prep_save`` prepared for psycopg, as the JSON that PostgreSQL reads back into the same
    column value: text and numbers as they are, decimals and UUIDs as their text, dates and times in ISO 8601 with
    their offset (microseconds kept), a JSON column's document as itself (dumped as psycopg would), bytes as
    bytea's hex text (``\\x…``)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime, date, dt_time)):
        return value.isoformat()
    if isinstance(value, Binary):  # a binary column (psycopg's wrapper of its bytes): bytea's hex input form
        return "\\x" + bytes(value.obj).hex()
    if isinstance(value, (Json, Jsonb)):
        dumps = value.dumps  # None: psycopg's default, json.dumps
        return value.obj if dumps is None or dumps is json.dumps else json.loads(dumps(value.obj))
    raise TypeError(f"no JSON form for a {type(value).__name__} column value")


@functools.cache
def _document_plan(model: type[models.Model], vendor: str) -> tuple[tuple[str, str, Any, Preparer], ...]:
    """Per column of ``_preparers(model, vendor, True)``: its attname, its column, its field and its preparer."""
    return tuple((name, str(field.column), field, prepare) for name, field, prepare in _preparers(model, vendor, True))


def _pg_document(model: type[models.Model], rows: Sequence[Mapping[str, Any]], db: Any) -> str:
    plan = _document_plan(model, db.vendor)
    missing = _MISSING
    document = [
        {
            column: prepare(field.get_default() if (value := row.get(name, missing)) is missing else value, db)
            for name, column, field, prepare in plan
        }
        for row in rows
    ]
    return json.dumps(document, separators=(",", ":"))


def rows_insert(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: tuple[str, ...] = (),
    skip_conflicts: bool = False,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (each a mapping of field attnames to values; the others take their defaults) in one
    statement per ``INSERT_CHUNK`` rows. ``returning``: columns read back, one tuple per inserted row.
    ``skip_conflicts``: ``ON CONFLICT DO NOTHING`` (a skipped row returns nothing).

    On PostgreSQL the rows travel as ONE parameter, a JSON document read by ``json_to_recordset`` into the columns'
    own types: the statement's text is the same for any number of rows, so psycopg parses it once (it re-parses
    any statement of more than 50 parameters on every call: most of a VALUES list's cost). SQLite: a VALUES list."""
    returned: list[tuple[Any, ...]] = []
    db = connections[DEFAULT_DB_ALIAS]
    postgres = db.vendor == "postgresql"
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        sql = _insert_sql(model, db.vendor, 1 if postgres else len(chunk), returning, skip_conflicts)
        if postgres:
            params: list[Any] = [_pg_document(model, chunk, db)]
        else:
            params = [value for row in chunk for value in _prepared(model, row, db)]
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            if returning:
                returned.extend(tuple(row) for row in cursor.fetchall())
    return returned


def model_rows_insert(objects: Sequence[models.Model]) -> None:
    """Insert model instances built in memory (one model) and set their primary keys, as ``bulk_create`` does."""
    if not objects:
        return
    model = type(objects[0])
    names = [name for name, _field, _plain in _columns(model)]
    pk = model._meta.pk
    assert pk is not None
    ids = rows_insert(
        model, [{name: getattr(obj, name) for name in names} for obj in objects], returning=(str(pk.column),)
    )
    if len(ids) != len(objects):
        raise RuntimeError(f"{len(ids)} ids returned for {len(objects)} {model.__name__} rows")
    for obj, (value,) in zip(objects, ids, strict=True):
        obj.pk = value
        obj._state.adding = False
        obj._state.db = connection.alias


@functools.cache
def _update_columns(model: type[models.Model], fields: tuple[str, ...]) -> tuple[models.Field[Any, Any], ...]:
    by_name = {field.name: field for field in model._meta.concrete_fields}
    return tuple(by_name[name] for name in fields)


@functools.cache
def _update_sql(model: type[models.Model], vendor: str, fields: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = _update_columns(model, fields)
    pk = model._meta.pk
    assert pk is not None
    sets = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in columns)
    if vendor == "postgresql":
        typed = ", ".join(f"{quote(str(field.column))} {field.db_type(connection)}" for field in columns)
        source = f"json_to_recordset(%s) AS v(id {pk.db_type(connection)}, {typed})"
        # The ids again, as an array: the planner takes json_to_recordset for 100 rows whatever it holds, and for
        # 100 rows a hash join over a sequential scan of the whole table looked cheaper than 100 index lookups
        # until the table has some 20,000 rows (5,000-order day: the pack line's allocations, 54 rows a call,
        # 25 ms a call reading 14,752 rows). "= ANY" of an array it takes for 10 rows: an index scan.
        key = f"{table}.{quote(str(pk.column))}"
        where = f"{key} = v.id AND {key} = ANY(CAST(%s AS {pk.db_type(connection)}[]))"
        return f"UPDATE {table} SET {sets} FROM {source} WHERE {where}"
    else:  # each row a JSON array: the id, then the values in ``fields`` order
        picked = ", ".join(
            f"json_extract(value, '$[{n}]') AS {quote(str(field.column))}" for n, field in enumerate(columns, start=1)
        )
        source = f"(SELECT json_extract(value, '$[0]') AS id, {picked} FROM json_each(%s)) AS v"
    return f"UPDATE {table} SET {sets} FROM {source} WHERE {table}.{quote(str(pk.column))} = v.id"


def rows_update(objects: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of ``objects`` (saved instances of one model, each once) as they are in memory, in ONE
    statement, an ``UPDATE … FROM`` the rows as one JSON parameter (``json_to_recordset`` on PostgreSQL,
    ``json_each`` on SQLite), whose text is the same for any number of rows: what ``QuerySet.bulk_update(objects,
    fields)`` writes, each value prepared as the ORM prepares it (``get_db_prep_save``). Returns the rows matched.

    Why not ``bulk_update``: it builds a ``CASE WHEN pk = … THEN …`` per row and field and compiles them through the
    ORM's expressions, milliseconds of Python per call for a few hundred rows. Why not a ``VALUES`` list (the form
    of ``quai.core.db.rows_update``, folded into this one on 5 December 2026): its text changed with the number of
    rows, so PostgreSQL parsed and planned it on every call, and psycopg adapted its parameters one by one."""
    if not objects:
        return 0
    model = type(objects[0])
    if any(type(obj) is not model for obj in objects):
        raise TypeError("rows_update writes rows of one model at a time")
    if len({obj.pk for obj in objects}) != len(objects):
        raise ValueError("rows_update writes each row once: a row is given twice")
    columns = _update_columns(model, tuple(fields))
    return values_update(
        model, fields, [(obj.pk, *(getattr(obj, field.attname) for field in columns)) for obj in objects]
    )


def values_update(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """``rows_update`` for rows given as tuples, not model instances: each the row's primary key, then its values
    of ``fields`` in that order (the same statement, each value prepared as the ORM prepares it). Returns the rows
    matched."""
    if not rows:
        return 0
    columns = _update_columns(model, tuple(fields))
    db = connections[DEFAULT_DB_ALIAS]
    postgres = db.vendor == "postgresql"
    document: list[Any] = []
    for pk, *given in rows:
        values = [field.get_db_prep_save(value, db) for field, value in zip(columns, given, strict=True)]
        if postgres:  # the JSON text of each value, read back by json_to_recordset into its column's type
            row = {str(field.column): _json_value(value) for field, value in zip(columns, values, strict=True)}
            row["id"] = pk
            document.append(row)
        else:
            document.append([pk, *values])
    params: list[Any] = [json.dumps(document)]
    if postgres:
        params.append([row[0] for row in rows])
    with db.cursor() as cursor:
        cursor.execute(_update_sql(model, db.vendor, tuple(fields)), params)
        return int(cursor.rowcount)


def ids_in(vendor: str) -> str:
    """The test that a column is among the ids of ``ids_param``, for ``vendor``'s SQL: ``= ANY(%s::bigint[])`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on SQLite (one placeholder either way)."""
    return "= ANY(%s::bigint[])" if vendor == "postgresql" else "IN (SELECT value FROM json_each(%s))"


def texts_in(vendor: str) -> str:
    """``ids_in`` for texts: ``= ANY(%s::text[])`` on PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on
    SQLite; the parameter is ``texts_param``'s."""
    return "= ANY(%s::text[])" if vendor == "postgresql" else "IN (SELECT value FROM json_each(%s))"


def texts_param(texts: Iterable[str]) -> Any:
    """A list of texts as ONE parameter, for ``texts_in`` (an array on PostgreSQL, a JSON array on SQLite)."""
    return _list_param(texts)


def ids_param(ids: Iterable[int]) -> Any:
    """A list of ids as ONE parameter: an array on PostgreSQL (``= ANY(%s)``), a JSON array on SQLite (``IN (SELECT
    value FROM json_each(%s))``), so a statement's text is the same for any number of ids (parsed once, not
    compiled by the ORM per call)."""
    return _list_param(ids)


def _list_param(values: Iterable[Any]) -> Any:
    """``ids_param``'s and ``texts_param``'s one parameter: the list itself for psycopg (an array), JSON for SQLite."""
    listed = list(values)
    return listed if connection.vendor == "postgresql" else json.dumps(listed)


class Among(models.Func):
    """A queryset's filter ``expression IN values`` with the values as ONE parameter (``ids_in``/``ids_param``, or
    ``texts_in``/``texts_param`` with ``texts=True``): ``filter(Among(F("sku_id"), ids))`` for ``filter(sku_id__in=
    ids)``, ``Among(Lower("code"), forms, texts=True)`` for ``code_lower__in=forms``. The rest of the queryset (joins,
    scope, order, ``update``) stays the ORM's; only this test's text no longer changes with the number of values.

    Why: the ORM writes ``IN (%s, %s, …)``, a text per list length, which psycopg never prepares (it prepares a text
    after its 5th run, ``prepare_threshold``), so PostgreSQL parsed and planned the statement at every call (issue
    17's "left items": the pick faces' read had 43 texts over 126 calls in a 1,000-order day). As ``__in``: None is
    dropped and no value means no row, without a statement (``EmptyResultSet``; negated, every row). Unlike
    ``exclude(field__in=…)`` of a nullable field, ``exclude(Among(…))`` leaves out a row whose value is NULL (SQL's
    ``NOT IN``): negate non-null columns only."""

    def __init__(self, expression: Any, values: Iterable[Any], *, texts: bool = False) -> None:
        super().__init__(expression, output_field=models.BooleanField())
        self.values = sorted({value for value in values if value is not None})
        self.texts = texts

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        if not self.values:
            raise EmptyResultSet
        sql, params = compiler.compile(self.get_source_expressions()[0])
        if self.texts:
            return f"{sql} {texts_in(connection.vendor)}", (*params, texts_param(self.values))
        return f"{sql} {ids_in(connection.vendor)}", (*params, ids_param(self.values))


# --- Model instances read by statements written once ----------------------------------------------------------
# A queryset compiles its SQL again on every call (~0.3 ms for a small read against ~0.02 ms to run it); these read
# the same rows by a statement built once and make the instances as the queryset makes them (``Model.from_db``).

M = TypeVar("M", bound=models.Model)

_Reading = tuple[tuple[str, ...], str, tuple[tuple[int, tuple[tuple[Any, Any], ...]], ...]]
_readings: dict[tuple[str, type[models.Model], tuple[str, ...]], _Reading] = {}
_readings_lock = threading.Lock()


def reading(model: type[models.Model], names: tuple[str, ...]) -> _Reading:
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
    with _readings_lock:
        _readings[key] = reading
    return reading


def converted(values: list[Any], start: int, converters: tuple[tuple[int, tuple[tuple[Any, Any], ...]], ...]) -> None:
    """A row's values from ``start`` converted in place as the ORM converts them (``reading``'s converters)."""
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
    names, columns, converters = reading(model, tuple(fields))
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
        converted(values, 0, converters)
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
