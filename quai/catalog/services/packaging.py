"""Writes for packaging types: the cartons, envelopes and bags a parcel can be packed in.

Field cleaning (pure) lives in ``quai.catalog.cleaning``; here are the checks that need the database and the writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from quai.catalog.cleaning import PACKAGING_FIELDS, packaging_values_clean, packaging_weights_check
from quai.catalog.models import PackagingKind, PackagingType
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.tenants.models import Merchant


def packaging_code_check(*, code: str, merchant_id: int | None, exclude_pk: int | None = None) -> None:
    """A merchant's packaging code may not repeat the operator's (nor the reverse): the pack station shows both
    lists side by side, and one code must name one box there."""
    qs = PackagingType.objects.filter(code=code)
    clash = qs if merchant_id is None else qs.filter(Q(merchant_id=merchant_id) | Q(merchant__isnull=True))
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": code},
            code="duplicate_packaging_code",
            details={"field": "code"},
        )


@transaction.atomic
def packaging_type_create(
    *,
    merchant: Merchant | None,
    code: str,
    name: str,
    inner_length_mm: int,
    inner_width_mm: int,
    inner_height_mm: int,
    max_weight_g: int,
    kind: str = PackagingKind.BOX,
    tare_weight_g: int = 0,
    cost: Decimal | str | int = Decimal("0"),
    currency: str = "EUR",
    active: bool = True,
) -> PackagingType:
    """A box, envelope or bag: the operator's (``merchant`` None, offered to all) or one merchant's own."""
    values = packaging_values_clean(
        {
            "code": code,
            "name": name,
            "kind": kind,
            "inner_length_mm": inner_length_mm,
            "inner_width_mm": inner_width_mm,
            "inner_height_mm": inner_height_mm,
            "max_weight_g": max_weight_g,
            "tare_weight_g": tare_weight_g,
            "cost": cost,
            "currency": currency,
            "active": active,
        }
    )
    packaging_code_check(code=values["code"], merchant_id=merchant.pk if merchant else None)
    packaging = PackagingType(merchant=merchant, **values)
    packaging_weights_check(tare_weight_g=packaging.tare_weight_g, max_weight_g=packaging.max_weight_g)
    try:
        with transaction.atomic():
            packaging.save()
    except IntegrityError:
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": values["code"]},
            code="duplicate_packaging_code",
        ) from None
    return packaging


@transaction.atomic
def packaging_type_update(*, packaging_type: PackagingType, version: int, data: Mapping[str, Any]) -> PackagingType:
    """Change the fields in ``data`` of a packaging type last read at ``version`` (stale: 409 ``stale_version``)."""
    locked = PackagingType.objects.select_for_update().filter(pk=packaging_type.pk).first()
    if locked is None:
        raise NotFound(_("Packaging type not found."), code="packaging_type_not_found")
    if locked.version != version:
        raise Conflict(
            _("This packaging type was changed by someone else (version %(current)d): reload it and retry.")
            % {"current": locked.version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    unknown = [key for key in data if key not in PACKAGING_FIELDS]
    if unknown:
        raise ValidationFailed(
            _("Unknown field '%(field)s'.") % {"field": unknown[0]}, code="unknown_field", details={"field": unknown[0]}
        )
    values = packaging_values_clean(data)
    if "code" in values and values["code"] != locked.code:
        packaging_code_check(code=values["code"], merchant_id=locked.merchant_id, exclude_pk=locked.pk)
    for name, value in values.items():
        setattr(locked, name, value)
    packaging_weights_check(tare_weight_g=locked.tare_weight_g, max_weight_g=locked.max_weight_g)
    locked.version += 1
    try:
        with transaction.atomic():
            locked.save()
    except IntegrityError:
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": locked.code},
            code="duplicate_packaging_code",
        ) from None
    return locked
