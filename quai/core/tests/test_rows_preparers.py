"""``quai.core.rows``' direct preparations of a decimal and a date (the intake committer's amounts and promised
dates) give exactly what the ORM's ``get_db_prep_save`` gives, and its JSON form on PostgreSQL, value for value;
anything they do not take directly (a float, a text, NaN) goes through the ORM, which converts or refuses it as
before. The raw insert of a whole order (``test_intake_rows``) checks the rows themselves."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, models

from quai.core.rows import _preparer, _slow

pytestmark = pytest.mark.django_db

AMOUNTS: list[Any] = [
    Decimal("19.90"),
    Decimal("0"),
    Decimal("0.00"),
    Decimal("-0.00"),
    Decimal("1E+2"),
    Decimal("9999999999.99"),
    Decimal("123.456"),
    3,
    "4.50",
    2.5,
    None,
    Decimal("NaN"),
    Decimal("Infinity"),
    "not a number",
]
DAYS: list[Any] = [date(2030, 2, 28), date(1, 1, 1), None, "2030-03-01", datetime(2030, 3, 1, 12, 30), "nope"]


def _outcome(prepare: Any, value: Any) -> tuple[str, Any]:
    try:
        prepared = prepare(value, connection)
    except Exception as exc:  # the refusal itself is compared
        return ("raised", type(exc))
    return (type(prepared).__name__, prepared)


@pytest.mark.parametrize("json_doc", [False, True])
@pytest.mark.parametrize(
    ("field", "values"),
    [
        (models.DecimalField(max_digits=12, decimal_places=2), AMOUNTS),
        (models.DecimalField(max_digits=12, decimal_places=2, null=True), AMOUNTS),
        (models.DateField(null=True), DAYS),
    ],
    ids=["decimal", "decimal-null", "date"],
)
def test_a_decimal_or_a_date_prepared_directly_is_what_the_orm_prepares(
    field: Any, values: list[Any], json_doc: bool
) -> None:
    direct = _preparer(field, connection.vendor, json_doc)
    orm = _slow(field, json_doc)
    assert direct is not orm  # the direct path is in use for this kind and backend
    for value in values:
        assert _outcome(direct, value) == _outcome(orm, value), value
        if isinstance(value, Decimal) and value.is_finite():
            assert str(_outcome(direct, value)[1]) == str(value)  # its exponent kept: "19.90", not "19.9"
