"""The PDF label's bars written through the number cache: the same bytes as reportlab's own ``Code128``."""

from __future__ import annotations

from typing import Any

import pytest
from reportlab import rl_config
from reportlab.graphics.barcode.code128 import Code128

from quai.shipping import domain, labels
from quai.shipping.carriers.base import Address

SENDER = Address(name="Quai 3PL", line1="1 quai du Port", postcode="69002", city="Lyon", country="FR")


def _label(n: int, *, tracking: str, pickup: str = "") -> labels.LabelData:
    return labels.LabelData(
        sscc=domain.sscc_build(extension=n % 10, company_prefix="3760123", serial=n),
        tracking_number=tracking,
        carrier_name="Colissimo",
        service="DOM",
        sender=SENDER,
        recipient=Address(
            name=f"Camille Martin {n}", line1=f"{n} rue de la Roquette", postcode="75011", city="Paris", country="FR"
        ),
        weight_g=500 + n * 37,
        reference=f"SHOP-{n}",
        pickup_point_id=pickup,
    )


LABELS = [
    _label(1, tracking="6A00000000001"),
    _label(2, tracking="SB17650000000002"),  # another length: other bar positions
    _label(3, tracking="6A00000000001"),  # the same barcode again: every number from the cache
    _label(4, tracking="XY-12/ab", pickup="MR012345"),  # letters (subset B) and a pickup point
]


@pytest.fixture
def invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it reportlab writes the time of drawing into the document (creation date and id).
    monkeypatch.setattr(rl_config, "invariant", 1)


def test_a_label_is_the_same_bytes_as_drawn_with_reportlabs_own_barcode(invariant: None, monkeypatch: Any) -> None:
    cached = [labels.label_pdf(data) for data in LABELS]
    several = labels.labels_pdf(LABELS)
    monkeypatch.setattr(labels, "_Code128", Code128)
    assert [labels.label_pdf(data) for data in LABELS] == cached
    assert labels.labels_pdf(LABELS) == several


def test_the_bars_are_in_the_label() -> None:
    # The cached path writes each bar as a filled rectangle: a label without them would still be a PDF.
    pdf = labels.label_pdf(LABELS[0])
    assert pdf.count(b" re f") > 60
