"""``make bench`` (``BENCH_ONLY=fulfilment``): plan waves, batches and routes for 5,000 open orders on the demo site.

No database: the demo site's racks are expanded from the demo's own rack patterns (``quai.demo.services.ZONES``,
through ``quai.warehouse.domain.rack_pattern_expand``, the function that creates them), so the layout is the one
``manage.py demo`` builds. ``BENCH_FULFILMENT_ORDERS`` orders (default 5,000; seeded, reproducible) of 1–4 lines
pick from the picking racks (M–P, one SKU per pick face, popular SKUs more often) and, for one line in ten, from the
reserve (A–L). Timed: waves by urgency (three carrier services with their cut-offs, 500 orders each), batches
(carts of 8 totes, single-unit orders together, split by zone) and every batch's optimal route; then, untimed for
comparison, S-shape and largest-gap routes of the same batches and every order picked alone on its own optimal
route. Then ``BENCH_FULFILMENT_INSTANCES`` random single-block instances (default 300) of up to 9 picks: the route
must equal the brute-force optimum on each. One batch's route is drawn over the site map:
``var/bench/fulfilment-route.svg``.

Targets: planning < 10 s; walking ≥ 40 % shorter than order by order; optimum = brute force on every instance
(FAIL, exit status 1, otherwise).
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
TARGET_SAVING = 0.40


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _demo_locations() -> tuple[list[tuple[int, str, float, float, str]], float]:
    """(id, aisle, x, y, zone code) of every rack location of the demo site, and the pack stations' mean x."""
    from quai.demo.services import ZONES
    from quai.warehouse.domain import rack_pattern_build, rack_pattern_expand

    rows: list[tuple[int, str, float, float, str]] = []
    packing_x: list[float] = []
    for spec in ZONES:
        if "rack" in spec:
            rack = {k: v for k, v in spec["rack"].items() if k not in ("max_volume_cm3", "max_weight_g")}
            for planned in rack_pattern_expand(rack_pattern_build(**rack)):
                rows.append((len(rows) + 1, planned.aisle, float(planned.x_m), float(planned.y_m), spec["code"]))
        elif spec["code"] == "PAK":
            _prefix, count, x, _y = spec["loose"]
            packing_x.extend(x + (n % 5) * 2 for n in range(1, count + 1))
    return rows, sum(packing_x) / len(packing_x)


def _orders(count: int, rows: list[tuple[int, str, float, float, str]]) -> list[Any]:
    from quai.fulfillment.domain import FloorOrder, PickLine

    rng = random.Random(15)
    # One pick face per SKU in the picking racks (level 1 of each slot), the reserve behind them.
    faces = [row for row in rows if row[4] == "PCK" and row[0] % 4 == 1]
    reserve = [row for row in rows if row[4] == "STO"]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(faces))]
    services = [("colissimo_home", datetime(2026, 12, 3, 16)), ("mondial_relay", datetime(2026, 12, 3, 14))]
    services.append(("express_24", datetime(2026, 12, 3, 12)))
    orders = []
    today = date(2026, 12, 3)
    for number in range(1, count + 1):
        service, cutoff = services[rng.randrange(3)]
        lines = []
        for position in range(1, rng.choice((1, 1, 1, 2, 2, 3, 4)) + 1):
            row = rng.choice(reserve) if rng.random() < 0.1 else rng.choices(faces, weights)[0]
            lines.append(
                PickLine(
                    line_id=number * 10 + position,
                    reservation_id=number * 10 + position,
                    sku_id=row[0],
                    location_id=row[0],
                    zone_id=1 if row[4] == "PCK" else 2,
                    aisle=row[1],
                    x=row[2],
                    y=row[3],
                    lot="",
                    quantity=rng.choice((1, 1, 1, 2)),
                    unit_volume_cm3=rng.choice((1_000, 2_500, 4_000)),
                    unit_weight_g=rng.choice((150, 300, 700)),
                )
            )
        orders.append(
            FloorOrder(
                order_id=number,
                carrier_service=service,
                cutoff=cutoff,
                promised=today + timedelta(days=rng.randint(1, 4)),
                priority=rng.choice(("standard", "standard", "standard", "express", "vip")),
                created=datetime(2026, 12, 2) + timedelta(seconds=number * 13),
                zone_ids=frozenset(line.zone_id for line in lines),
                lines=tuple(lines),
            )
        )
    return orders


def _plan(orders: list[Any], rows: list[tuple[int, str, float, float, str]], depot_x: float) -> dict[str, Any]:
    from quai.fulfillment import domain, routing

    layouts = {
        zone_id: routing.layout_of_locations([r[:4] for r in rows if r[4] == code], depot_x=depot_x)
        for zone_id, code in ((1, "PCK"), (2, "STO"))
    }
    started = time.perf_counter()
    waiting = list(orders)
    waves = []
    while waiting:
        wave = domain.wave_select(waiting, domain.WaveCriteria(capacity=500))
        chosen = {order.order_id for order in wave}
        waiting = [order for order in waiting if order.order_id not in chosen]
        waves.append(wave)
    batches = [batch for wave in waves for batch in domain.batch_plan(wave, domain.Cart(totes=8))]
    routes = []
    for batch in batches:
        layout, places = layouts[batch.zone_id]
        locations = list(dict.fromkeys(line.location_id for line in batch.lines))
        routes.append(routing.plan_route(layout, [places[pk] for pk in locations]))
    seconds = time.perf_counter() - started
    # Order by order: each order's part in each zone walked alone on its own optimal route.
    alone = 0.0
    for order in orders:
        by_zone: dict[int, list[int]] = {}
        for line in order.lines:
            by_zone.setdefault(line.zone_id, []).append(line.location_id)
        for zone_id, ids in by_zone.items():
            layout, places = layouts[zone_id]
            alone += routing.plan_route(layout, [places[pk] for pk in dict.fromkeys(ids)]).length
    return {
        "seconds": seconds,
        "waves": len(waves),
        "batches": batches,
        "routes": routes,
        "optimal": sum(r.length for r in routes),
        "s_shape": sum(r.s_shape or r.length for r in routes),
        "largest_gap": sum(r.largest_gap or r.length for r in routes),
        "alone": alone,
        "layouts": layouts,
    }


def _instances(count: int) -> tuple[int, int]:
    from quai.fulfillment import routing

    rng = random.Random(1983)
    equal = 0
    for _ in range(count):
        aisles = rng.randint(1, 8)
        xs = tuple(float(x) for x in sorted(rng.sample(range(60), aisles)))
        length = float(rng.randint(5, 40))
        block = routing.Block(aisles_x=xs, length=length, depot_x=float(rng.choice((*xs, rng.uniform(-5, 65)))))
        picks = [
            routing.Pick(rng.randrange(aisles), round(rng.uniform(0, length), 1)) for _ in range(rng.randint(1, 9))
        ]
        if routing.isclose(routing.optimal_route(block, picks).length, routing.brute_force_length(block, picks)):
            equal += 1
    return equal, count


def _draw(result: dict[str, Any], rows: list[tuple[int, str, float, float, str]]) -> Path:
    from decimal import Decimal

    from quai.fulfillment.route_map import route_overlay
    from quai.warehouse.site_map import MapLocation, MapText, MapZone, SiteMap, site_map_render

    zones = [MapZone(id=1, code="PCK", name="Picking (M–P)", kind="picking"), MapZone(2, "STO", "Réserve", "storage")]
    locations = [
        MapLocation(
            code=f"{r[1]}-{r[0]}",
            zone_id=1 if r[4] == "PCK" else 2,
            x_m=Decimal(str(r[2])),
            y_m=Decimal(str(r[3])),
            aisle=r[1],
        )
        for r in rows
    ]
    # The batch of the picking zone that spreads over the most aisles: the route worth looking at.
    k, batch = max(
        ((k, b) for k, b in enumerate(result["batches"]) if b.zone_id == 1),
        key=lambda item: (len({line.aisle for line in item[1].lines}), -item[0]),
    )
    route = result["routes"][k]
    title = (
        f"Batch of {len(batch.order_ids)} orders, {len(batch.totes)} totes: optimal {route.length:.0f} m · "
        f"S-shape {route.s_shape:.0f} m · largest gap {route.largest_gap:.0f} m"
    )
    svg = site_map_render(
        SiteMap(
            zones=zones,
            locations=locations,
            text=MapText(
                title="Demo site — a pick route",
                kind_labels={"picking": "Picking", "storage": "Storage"},
                subtitle=title,
            ),
        )
    )
    by_id = {r[0]: r for r in rows}
    stops_ids = list(dict.fromkeys(line.location_id for line in batch.lines))
    ordered = [stops_ids[i] for i in route.order]
    svg = route_overlay(
        svg,
        xs=[r[2] for r in rows],
        ys=[r[3] for r in rows],
        path=list(route.path),
        stops=[(by_id[pk][2], by_id[pk][3], str(pk)) for pk in ordered],
        title=title,
    )
    out = ROOT / "var" / "bench" / "fulfilment-route.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(svg, encoding="utf-8")
    return out


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
    import django

    django.setup()
    count = _env_int("BENCH_FULFILMENT_ORDERS", 5_000)
    instances = _env_int("BENCH_FULFILMENT_INSTANCES", 300)
    print(
        f"Quai benchmark — fulfilment: waves, batches and routes for {count:,} open orders on the demo site", flush=True
    )
    rows, depot_x = _demo_locations()
    orders = _orders(count, rows)
    result = _plan(orders, rows, depot_x)
    equal, total = _instances(instances)
    drawn = _draw(result, rows)
    saving = 1 - result["optimal"] / result["alone"] if result["alone"] else 0.0
    figures = [
        ("figure", "measured", "target", "verdict"),
        (
            "plan waves + batches + routes",
            f"{result['seconds']:.2f} s ({result['waves']} waves, {len(result['batches'])} batches)",
            f"< {TARGET_SECONDS:.0f} s",
            "PASS" if result["seconds"] < TARGET_SECONDS else "MISS",
        ),
        ("walking, optimal routes", f"{result['optimal'] / 1000:.1f} km", "", ""),
        (
            "walking, S-shape",
            f"{result['s_shape'] / 1000:.1f} km (optimal {1 - result['optimal'] / result['s_shape']:.0%} shorter)",
            "",
            "",
        ),
        (
            "walking, largest gap",
            f"{result['largest_gap'] / 1000:.1f} km "
            f"(optimal {1 - result['optimal'] / result['largest_gap']:.0%} shorter)",
            "",
            "",
        ),
        (
            "walking vs order by order",
            f"{result['alone'] / 1000:.1f} km alone → {saving:.0%} shorter batched",
            f"≥ {TARGET_SAVING:.0%}",
            "PASS" if saving >= TARGET_SAVING else "MISS",
        ),
        (
            "optimal = brute force (random small blocks)",
            f"{equal} / {total}",
            "all",
            "PASS" if equal == total else "FAIL",
        ),
    ]
    widths = [max(len(row[i]) for row in figures) for i in range(4)]
    line = "-+-".join("-" * w for w in widths)
    print(line)
    for row in figures:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print(line)
    print(f"route drawn on the site map: {drawn.relative_to(ROOT)}")
    return 0 if equal == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
