"""Labels benchmark (``make bench``, ``BENCH_ONLY=labels``): 1,000 shipping labels drawn as PDF (reportlab, with the
GS1-128 SSCC and the tracking barcode) and as ZPL; prints labels per second for each. No database needed."""

from __future__ import annotations

import os
import time

COUNT = int(os.environ.get("BENCH_LABELS", "1000"))


def run() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
    django.setup()
    from quai.shipping import domain, labels
    from quai.shipping.carriers.base import Address

    sender = Address(name="Quai 3PL", line1="1 quai du Port", postcode="69002", city="Lyon", country="FR")
    items = [
        labels.LabelData(
            sscc=domain.sscc_build(extension=0, company_prefix="3760123", serial=n),
            tracking_number=f"6A{n:011d}",
            carrier_name="Colissimo",
            service="DOM",
            sender=sender,
            recipient=Address(
                name=f"Camille Martin {n}",
                line1=f"{n} rue de la Roquette",
                postcode="75011",
                city="Paris",
                country="FR",
            ),
            weight_g=500 + n % 2000,
            reference=f"SHOP-{n}",
        )
        for n in range(COUNT)
    ]
    started = time.perf_counter()
    size = sum(len(labels.label_pdf(item)) for item in items)
    pdf_seconds = time.perf_counter() - started
    started = time.perf_counter()
    zpl_size = sum(len(labels.label_zpl(item)) for item in items)
    zpl_seconds = time.perf_counter() - started
    print(
        f"labels: {COUNT} PDF in {pdf_seconds:.2f} s = {COUNT / pdf_seconds:,.0f} labels/s ({size // COUNT} bytes each)"
    )
    print(
        f"labels: {COUNT} ZPL in {zpl_seconds:.2f} s = {COUNT / zpl_seconds:,.0f} labels/s "
        f"({zpl_size // COUNT} bytes each)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
