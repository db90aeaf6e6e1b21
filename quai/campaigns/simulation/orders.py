"""The day's orders, drawn before anything runs (pure, seeded): the hourly curve with its spike, and each order's
minute, lines, carrier service and address. Drawing them first lets the world stock what they need, and makes the
whole day a function of the seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Relative hourly weights of an ordinary day (local hours 0-23): quiet nights, busy evenings.
HOUR_WEIGHTS = (
    0.25, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.1, 1.1,
    1.2, 1.2, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.6, 1.4, 1.0, 0.5,
)  # fmt: skip
#: The sale opens at 10:00: that hour takes ``spike`` times an average hour.
SPIKE_HOUR = 10
CAMPAIGN_CODES = tuple(f"VE-{n:04d}" for n in range(40))
OTHER_CODES = tuple(f"CAT-{n:04d}" for n in range(40, 200))
SERVICES = (("colissimo_home", 0.55), ("mondial_relay", 0.3), ("chronopost_13h", 0.15))
ADDRESSES = (
    ("75011", "Paris", "12 rue de la Roquette"),
    ("69003", "Lyon", "4 cours Lafayette"),
    ("13006", "Marseille", "20 rue Paradis"),
    ("33000", "Bordeaux", "3 cours de l'Intendance"),
    ("59000", "Lille", "8 rue Faidherbe"),
    ("44000", "Nantes", "15 rue Crébillon"),
    ("67000", "Strasbourg", "2 place Kléber"),
    ("31000", "Toulouse", "9 rue d'Alsace-Lorraine"),
    ("35000", "Rennes", "5 quai Lamartine"),
    ("20000", "Ajaccio", "1 cours Napoléon"),
)
FIRST_NAMES = ("Camille", "Léa", "Hugo", "Inès", "Lucas", "Nora", "Jules", "Emma", "Adam", "Chloé")
LAST_NAMES = ("Martin", "Bernard", "Moreau", "Petit", "Roux", "Girard", "Benali", "Fontaine", "Lambert", "Rousseau")


@dataclass(frozen=True)
class PlannedOrder:
    index: int
    external_id: str
    at: datetime
    service: str
    lines: tuple[tuple[str, int], ...]
    postcode: str
    city: str
    street: str
    name: str
    #: When the shopper asks "where is my order?" (None: never).
    ticket_at: datetime | None


def order_curve(hours: Sequence[datetime], *, orders: int, spike: float) -> dict[datetime, int]:
    """Orders per hour: the day's weights with the spike hour at ``spike`` × the average of the others, scaled to
    ``orders`` and rounded by largest remainders (the total is exact)."""
    weights = [HOUR_WEIGHTS[hour.hour] for hour in hours]
    spike_index = next((k for k, hour in enumerate(hours) if hour.hour == SPIKE_HOUR), len(hours) // 3)
    others = [w for k, w in enumerate(weights) if k != spike_index]
    weights[spike_index] = spike * (sum(others) / len(others) if others else 1.0)
    total = sum(weights)
    exact = [orders * w / total for w in weights]
    counts = [int(x) for x in exact]
    for k in sorted(range(len(hours)), key=lambda k: (-(exact[k] - counts[k]), k))[: orders - sum(counts)]:
        counts[k] += 1
    return dict(zip(hours, counts, strict=True))


def orders_draw(
    *,
    curve: dict[datetime, int],
    seed: int,
    campaign_skus: Sequence[str],
    other_skus: Sequence[str],
    ticket_share: float,
) -> list[PlannedOrder]:
    rng = random.Random(seed)
    # The sale's SKUs sell on a long tail (a few best-sellers), the rest of the catalogue evenly.
    sale_weights = [1 / (k + 1) ** 0.8 for k in range(len(campaign_skus))]
    planned: list[PlannedOrder] = []
    index = 0
    for hour in sorted(curve):
        minutes = sorted(rng.random() * 3600 for _ in range(curve[hour]))
        for offset in minutes:
            index += 1
            count = rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
            lines: dict[str, int] = {}
            for _ in range(count):
                if rng.random() < 0.75:
                    sku = rng.choices(campaign_skus, weights=sale_weights)[0]
                else:
                    sku = rng.choice(other_skus)
                lines[sku] = lines.get(sku, 0) + (1 if rng.random() < 0.85 else 2)
            service = rng.choices([s for s, _w in SERVICES], weights=[w for _s, w in SERVICES])[0]
            postcode, city, street = ADDRESSES[rng.randrange(len(ADDRESSES))]
            if postcode.startswith("20") and service == "mondial_relay":
                service = "colissimo_home"  # no relay points in Corsica: the checkout does not offer it there
            at = hour + timedelta(seconds=offset)
            ticket_at = at + timedelta(hours=rng.uniform(2, 40)) if rng.random() < ticket_share else None
            planned.append(
                PlannedOrder(
                    index=index,
                    external_id=f"FS{seed}-{index:06d}",
                    at=at,
                    service=service,
                    lines=tuple(sorted(lines.items())),
                    postcode=postcode,
                    city=city,
                    street=street,
                    name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    ticket_at=ticket_at,
                )
            )
    return planned


def order_body(order: PlannedOrder) -> dict[str, object]:
    """The order as the shop posts it to ``POST /api/v1/orders/batch``."""
    first, last = order.name.split(" ", 1)
    return {
        "channel": "shop",
        "external_id": order.external_id,
        "currency": "EUR",
        "shopper": {
            "name": order.name,
            "email": f"{first.lower()}.{last.lower()}.{order.index}@example.fr",
            "phone": "06 12 34 56 78",
        },
        "shipping_address": {"line1": order.street, "postcode": order.postcode, "city": order.city, "country": "FR"},
        "carrier_service": order.service,
        "shipping_total": "4.90",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "29.90"} for sku, quantity in order.lines],
    }
