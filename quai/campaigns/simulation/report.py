"""The figures of a simulated day, read back from the database the real services wrote, and their report: a
self-contained HTML page (charts drawn as inline SVG, no script, no network) and a short text summary."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import F

from quai.campaigns.simulation import world as world_mod
from quai.campaigns.simulation.engine import SCOPE, STAGES, Run
from quai.labor.models import Activity
from quai.orders.selectors import order_list

TARGET_ON_TIME = 0.998
TARGET_DELIVERED = 0.95
CAUSE_LABELS = {
    "release": "still in its release buffer at the cut-off (promised too close to it)",
    "wave": "waiting for a wave (released, not yet on the floor)",
    "picking": "picking (on the floor, not yet picked)",
    "packing": "packing (picked, not yet packed)",
    "truck": "missed the truck (packed after the cut-off)",
    "intake": "still in intake (not released)",
    "warehouse_late": "shipped late by the warehouse",
    "carrier_late": "carrier transit longer than promised",
    "stock_short": "stock short",
    "customer_hold": "held by customer service",
}


def _local(at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(world_mod.TIME_ZONE))


def _ship_cause(trace: Any, release_after: datetime | None) -> str:
    """Where an order that missed its ship-by cut-off was at that cut-off: the stage that made it late."""
    cut = trace.ship_by
    if release_after is not None and release_after > cut:
        return "release"
    if trace.waved_at is None or trace.waved_at > cut:
        return "wave"
    if trace.picked_at is None or trace.picked_at > cut:
        return "picking"
    if trace.packed_at is None or trace.packed_at > cut:
        return "packing"
    return "truck"


def _oversold() -> dict[str, int]:
    from quai.inventory.models import StockLevel, StockQuantity
    from quai.inventory.selectors import stock_drift

    levels = StockLevel.objects.filter(reserved__gt=F("on_hand")).values_list("on_hand", "reserved")
    places = StockQuantity.objects.filter(reserved__gt=F("on_hand")).values_list("on_hand", "reserved")
    negative = StockQuantity.objects.filter(on_hand__lt=0).count()
    return {
        "oversold_units": sum(r - o for o, r in levels) + sum(r - o for o, r in places),
        "negative_places": negative,
        "drift": len(stock_drift()),
    }


def _integrity(run: Run) -> dict[str, int]:
    from quai.fulfillment.models import PickTask, TaskStatus
    from quai.packing.models import Parcel, ParcelStatus

    planned = {f"FS{run.params.seed}-{k:06d}" for k in range(1, run.params.orders + 1)}
    stored = Counter(order_list(scope=SCOPE).values_list("external_id", flat=True))
    shipped = set(
        order_list(scope=SCOPE)
        .filter(status__in=["shipped", "partially_shipped", "delivered"])
        .values_list("pk", flat=True)
    )
    picked = set(
        PickTask.objects.filter(order_id__in=shipped, status=TaskStatus.PICKED).values_list("order_id", flat=True)
    )
    unpicked = set(
        PickTask.objects.filter(order_id__in=shipped, status=TaskStatus.OPEN).values_list("order_id", flat=True)
    )
    packed = set(
        Parcel.objects.filter(order_id__in=shipped, status=ParcelStatus.CLOSED).values_list("order_id", flat=True)
    )
    return {
        "orders_lost": len(planned - set(stored)) - sum(run.refused.values()),
        "orders_unexpected": len(set(stored) - planned),
        "orders_duplicated": sum(1 for n in stored.values() if n > 1),
        "shipped_without_pick": len(shipped - picked) + len(shipped & unpicked),
        "shipped_without_pack": len(shipped - packed),
        "shipped": len(shipped),
    }


def _promises(run: Run) -> dict[str, Any]:
    from quai.promise.models import PromiseRecord

    day = world_mod.SIM_DAY
    rows = list(
        PromiseRecord.objects.filter(merchant_id=run.world.merchant_id)
        .order_by("order_id")
        .values("order_id", "ship_date", "ship_by", "shipped_at", "shipped_on_time", "status", "cause", "delivery_by")
    )
    due = [r for r in rows if r["ship_date"] is not None and r["ship_date"] <= day]
    on_time = [r for r in due if r["shipped_on_time"]]
    early = [r for r in rows if r["ship_date"] is not None and r["ship_date"] > day and r["shipped_at"] is not None]
    late_ids = [r["order_id"] for r in due if not r["shipped_on_time"]]
    release_after = dict(order_list(scope=SCOPE).filter(pk__in=late_ids).values_list("pk", "release_after"))
    late_causes: Counter[str] = Counter()
    late_orders: list[dict[str, Any]] = []
    for r in due:
        if r["shipped_on_time"]:
            continue
        trace = run.traces.get(r["order_id"])
        if trace is not None and trace.ship_by is not None:
            cause = _ship_cause(trace, release_after.get(r["order_id"]))
        else:
            cause = "intake"
        late_causes[cause] += 1
        if len(late_orders) < 200:
            late_orders.append(
                {
                    "order_id": r["order_id"],
                    "external_id": trace.external_id if trace is not None else "",
                    "ship_by": r["ship_by"],
                    "cause": cause,
                }
            )
    decided = [r for r in rows if r["status"] in ("kept", "broken")]
    kept = [r for r in decided if r["status"] == "kept"]
    broken_causes = Counter(r["cause"] or "unknown" for r in decided if r["status"] == "broken")
    return {
        "records": len(rows),
        "ship_today": len(due),
        "ship_later": len(rows) - len(due),
        "shipped_on_time": len(on_time),
        "shipped_early": len(early),
        "shipped_on_time_rate": len(on_time) / len(due) if due else 1.0,
        "late_causes": dict(late_causes.most_common()),
        "late_orders": late_orders,
        "delivered_decided": len(decided),
        "delivered_kept": len(kept),
        "delivered_rate": len(kept) / len(decided) if decided else 1.0,
        "broken_causes": dict(broken_causes.most_common()),
        "pending": len(rows) - len(decided),
    }


def _tickets(run: Run) -> dict[str, Any]:
    from quai.service.models import Ticket

    rows = list(
        Ticket.objects.filter(merchant_id=run.world.merchant_id).values(
            "first_responded_at", "first_response_due", "escalation", "status"
        )
    )
    answered = [r for r in rows if r["first_responded_at"] is not None]
    met = [
        r
        for r in answered
        if r["first_response_due"] is None or r["first_responded_at"] <= r["first_response_due"]  # type: ignore[operator]
    ]
    return {
        "opened": len(rows),
        "answered": len(answered),
        "answered_by_agents": run.tickets_answered_by_agents,
        "escalated": sum(1 for r in rows if r["escalation"]),
        "first_response_met": len(met),
        "first_response_rate": len(met) / len(rows) if rows else 1.0,
        "peak_agents": max(run.world.agents_per_hour.values(), default=0),
    }


def _utilisation(run: Run) -> list[dict[str, Any]]:
    """Per activity: the rostered hours (times the seeded variation) against the hours the work took at the
    standards; picking also per zone (its share of the pickers' hours)."""
    rows = []
    pick_available = run.effort[(Activity.PICK, "all")][0]
    pick_worked = sum(used for (activity, zone), (_a, used) in run.effort.items() if activity == Activity.PICK)
    rows.append(
        {
            "activity": str(Activity.PICK),
            "zone": "all",
            "hours_available": round(pick_available, 1),
            "hours_worked": round(pick_worked, 1),
            "utilisation": pick_worked / pick_available if pick_available else 0.0,
        }
    )
    for (activity, zone), (available, used) in sorted(run.effort.items()):
        if zone == "all":
            continue
        base = pick_available if activity == Activity.PICK else available
        rows.append(
            {
                "activity": str(activity),
                "zone": zone,
                "hours_available": round(base, 1),
                "hours_worked": round(used, 1),
                "utilisation": used / base if base else 0.0,
            }
        )
    return rows


def _stage_behind(run: Run, promises: dict[str, Any]) -> dict[str, Any]:
    if not run.behind_at:
        return {"stage": "", "at": None, "orders": 0}
    stage, at = min(run.behind_at.items(), key=lambda item: (item[1], item[0]))
    costs = {"picking": ("wave", "picking"), "packing": ("packing",)}[stage]
    orders = sum(promises["late_causes"].get(cause, 0) for cause in costs)
    return {"stage": stage, "at": _local(at).strftime("%H:%M"), "orders": orders}


def run_figures(run: Run) -> dict[str, Any]:
    """Every figure of the report (deterministic for a seed: no wall time in here but ``wall_seconds``)."""
    promises = _promises(run)
    intake_per_hour: Counter[str] = Counter()
    for tick in run.ticks:
        intake_per_hour[_local(tick.at - timedelta(seconds=1)).strftime("%H:00")] += tick.intake
    final = run.ticks[-1].stages if run.ticks else dict.fromkeys(STAGES, 0)
    return {
        "seed": run.params.seed,
        "what_if": run.params.what_if,
        "orders_planned": run.params.orders,
        "orders_in": len(run.traces),
        "orders_refused": dict(run.refused),
        "spike": run.params.spike,
        "hours": run.params.hours,
        "day": world_mod.SIM_DAY.isoformat(),
        "orders_per_hour": dict(sorted(intake_per_hour.items())),
        "stages_end": final,
        "series": [
            {"at": _local(t.at).strftime("%H:%M"), **t.stages, "pick_heads": t.pick_heads, "pack_heads": t.pack_heads}
            for t in run.ticks
        ],
        "promise": promises,
        "stage_behind": _stage_behind(run, promises),
        "stock": _oversold(),
        "integrity": _integrity(run),
        "utilisation": _utilisation(run),
        "tickets": _tickets(run),
        "manifests": [{**m, "at": _local(m["at"]).strftime("%H:%M")} for m in run.manifests],
        "transit_days": dict(sorted(run.delivered_days.items())),
        "wall_seconds": {k: round(v, 2) for k, v in sorted(run.wall_seconds.items())},
        "queries": dict(sorted(run.queries.items())),
    }


def report_text(figures: dict[str, Any]) -> str:
    p, stock, behind, t = figures["promise"], figures["stock"], figures["stage_behind"], figures["tickets"]
    lines = [
        f"Flash-sale day {figures['day']} (seed {figures['seed']}"
        + (f", what-if {figures['what_if']}" if figures["what_if"] else "")
        + f"): {figures['orders_in']:,} of {figures['orders_planned']:,} orders in, spike ×{figures['spike']:g}",
        f"  shipped on time          {p['shipped_on_time_rate']:.2%} ({p['shipped_on_time']:,} of {p['ship_today']:,}"
        f" due today; target ≥ {TARGET_ON_TIME:.1%})",
        f"  delivered by promised    {p['delivered_rate']:.2%} ({p['delivered_kept']:,} of {p['delivered_decided']:,}"
        f" delivered; target ≥ {TARGET_DELIVERED:.0%})",
        f"  oversold units           {stock['oversold_units']} (drift {stock['drift']})",
        f"  tickets                  {t['opened']:,} opened, first response on time {t['first_response_rate']:.1%}",
        "  at the end of the day    " + ", ".join(f"{k} {v:,}" for k, v in figures["stages_end"].items()),
    ]
    if p["late_causes"]:
        lines.append("  late shipments by cause  " + ", ".join(f"{k} {v:,}" for k, v in p["late_causes"].items()))
    if p["broken_causes"]:
        lines.append("  late deliveries by cause " + ", ".join(f"{k} {v:,}" for k, v in p["broken_causes"].items()))
    if behind["stage"]:
        lines.append(
            f"  first stage behind       {behind['stage']} at {behind['at']}, costing {behind['orders']:,} late orders"
        )
    else:
        lines.append("  first stage behind       none: every stage kept up with the day's work")
    lines.append(f"  wall time                {figures['wall_seconds'].get('total', 0):.0f} s")
    return "\n".join(lines)


# --- HTML -------------------------------------------------------------------------------------------------------

COLOURS = {
    "released": "#4e79a7",
    "picking": "#f28e2b",
    "packed": "#59a14f",
    "shipped": "#9c755f",
    "received": "#bab0ac",
    "orders": "#4e79a7",
}


def _svg_bars(values: list[tuple[str, float]], *, title: str, colour: str, width: int = 900, height: int = 260) -> str:
    left, bottom, top = 60, 40, 30
    plot_w, plot_h = width - left - 20, height - bottom - top
    peak = max((v for _k, v in values), default=0) or 1
    bar = plot_w / max(1, len(values))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>',
    ]
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:,.0f}</text>')
    for k, (label, value) in enumerate(values):
        h = plot_h * value / peak
        x = left + k * bar
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(1.0, bar - 2):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{html.escape(label)}: {value:,.0f}</title></rect>'
        )
        if len(values) <= 24 or k % 2 == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" class="axis" text-anchor="middle">'
                f"{html.escape(label[:2])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_lines(
    series: list[dict[str, Any]], keys: list[str], *, title: str, width: int = 900, height: int = 300
) -> str:
    left, bottom, top = 60, 40, 30
    plot_w, plot_h = width - left - 150, height - bottom - top
    peak = max((row[k] for row in series for k in keys), default=0) or 1
    n = max(1, len(series) - 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>',
    ]
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:,.0f}</text>')
    step = max(1, len(series) // 12)
    for k, row in enumerate(series):
        if k % step == 0:
            x = left + plot_w * k / n
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 16}" class="axis" text-anchor="middle">{row["at"]}</text>'
            )
    for j, key in enumerate(keys):
        points = " ".join(
            f"{left + plot_w * k / n:.1f},{top + plot_h - plot_h * row[key] / peak:.1f}" for k, row in enumerate(series)
        )
        colour = COLOURS.get(key, "#333")
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        y = top + 10 + j * 22
        parts.append(f'<rect x="{left + plot_w + 16}" y="{y - 10}" width="14" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 36}" y="{y + 2}" class="legend">{html.escape(key)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(ok: bool) -> str:
    return '<span class="ok">✔ met</span>' if ok else '<span class="miss">✘ missed</span>'


def _late_list(misses: list[list[str]], total: int) -> str:
    if not misses:
        return ""
    shown = f"the first {len(misses)} of {total:,}" if total > len(misses) else f"all {total:,}"
    return (
        f"<details><summary>Late orders ({shown})</summary>"
        + _table(misses, ["order", "ship by", "cause"])
        + "</details>"
    )


def report_html(run: Run, figures: dict[str, Any]) -> str:
    p, stock, t, behind = figures["promise"], figures["stock"], figures["tickets"], figures["stage_behind"]
    integrity = figures["integrity"]
    hours = list(figures["orders_per_hour"].items())
    headline = [
        ["Orders in", f"{figures['orders_in']:,}", f"of {figures['orders_planned']:,} drawn", ""],
        [
            "Shipped on time",
            f"{p['shipped_on_time_rate']:.2%}",
            f"{p['shipped_on_time']:,} of {p['ship_today']:,} due by the day's cut-offs",
            f"≥ {TARGET_ON_TIME:.1%} " + _verdict(p["shipped_on_time_rate"] >= TARGET_ON_TIME),
        ],
        [
            "Delivered by the promised date",
            f"{p['delivered_rate']:.2%}",
            f"{p['delivered_kept']:,} of {p['delivered_decided']:,} delivered",
            f"≥ {TARGET_DELIVERED:.0%} " + _verdict(p["delivered_rate"] >= TARGET_DELIVERED),
        ],
        [
            "Oversold units",
            f"{stock['oversold_units']}",
            f"stock check: {stock['drift']} drift, {stock['negative_places']} negative places",
            "0 " + _verdict(stock["oversold_units"] == 0 and stock["drift"] == 0),
        ],
        [
            "Tickets (where is my order?)",
            f"{t['opened']:,}",
            f"first response on time {t['first_response_rate']:.1%}, {t['answered_by_agents']:,} by agents",
            "",
        ],
    ]
    causes = [[html.escape(CAUSE_LABELS.get(k, k)), f"{v:,}"] for k, v in p["late_causes"].items()]
    broken = [[html.escape(CAUSE_LABELS.get(k, k)), f"{v:,}"] for k, v in p["broken_causes"].items()]
    misses = [
        [
            html.escape(row["external_id"] or str(row["order_id"])),
            _local(row["ship_by"]).strftime("%H:%M") if row["ship_by"] else "-",
            html.escape(CAUSE_LABELS.get(row["cause"], row["cause"])),
        ]
        for row in p["late_orders"][:50]
    ]
    utilisation = [
        [u["activity"], u["zone"], f"{u['hours_available']:,}", f"{u['hours_worked']:,}", f"{u['utilisation']:.0%}"]
        for u in figures["utilisation"]
    ]
    manifests = [[m["service"], m["at"], f"{m['parcels']:,}", str(m["missing"])] for m in figures["manifests"]]
    if behind["stage"]:
        behind_text = (
            f"<p class='callout'>First stage to fall behind: <b>{behind['stage']}</b> at {behind['at']} (its queue of "
            f"today's work exceeded what its people could still do before the last cut-off); it cost "
            f"<b>{behind['orders']:,}</b> orders their ship date.</p>"
        )
    else:
        behind_text = "<p class='callout'>No stage fell behind: every stage could finish the day's work in time.</p>"
    checks = [[k.replace("_", " "), f"{v:,}"] for k, v in integrity.items()]
    what_if = f" — what-if <b>{html.escape(figures['what_if'])}</b>" if figures["what_if"] else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flash-sale simulation, seed {figures["seed"]}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 960px; color: #222; }}
h1 {{ font-size: 26px; margin-bottom: 4px; }} h2 {{ font-size: 20px; margin-top: 32px; }}
table {{ border-collapse: collapse; margin: 8px 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px;
text-align: left; font-size: 15px; }} th {{ background: #f2f2f2; }}
.chart {{ display: block; margin: 8px 0; background: #fff; border: 1px solid #ddd; }}
.chart .title {{ font-size: 15px; font-weight: 600; }} .chart .axis {{ font-size: 12px; fill: #555; }}
.chart .legend {{ font-size: 14px; }} .chart .grid {{ stroke: #e4e4e4; }}
.ok {{ color: #1a7f37; font-weight: 600; }} .miss {{ color: #c62828; font-weight: 600; }}
.callout {{ background: #fff7e0; border-left: 4px solid #f2a900; padding: 8px 12px; }}
.muted {{ color: #666; font-size: 14px; }}
</style></head><body>
<h1>Flash-sale day, {figures["day"]}</h1>
<p class="muted">Seed {figures["seed"]}{what_if}, {figures["hours"]} simulated hours, spike ×{figures["spike"]:g}.
Every figure below was read back from what Quai's own services wrote.</p>
{_table(headline, ["figure", "value", "detail", "target"])}
{behind_text}
<h2>Orders per hour</h2>
{_svg_bars(hours, title="Orders received per hour (local time)", colour=COLOURS["orders"])}
<h2>Backlog per stage over the day</h2>
{_svg_lines(figures["series"], ["released", "picking", "packed"], title="Orders waiting in each stage")}
{_svg_lines(figures["series"], ["shipped"], title="Orders shipped (cumulative)", height=220)}
<h2>Promise kept</h2>
<p>Shipped on time: {p["shipped_on_time"]:,} of {p["ship_today"]:,} orders promised to ship on the day
({p["shipped_on_time_rate"]:.2%}); {p["ship_later"]:,} orders were promised for a later day
({p["shipped_early"]:,} of them left early). Delivered by the promised date: {p["delivered_kept"]:,} of
{p["delivered_decided"]:,} ({p["delivered_rate"]:.2%}).</p>
<h3>Why shipments were late (the stage each order was in at its cut-off)</h3>
{_table(causes, ["cause", "orders"]) if causes else "<p>None.</p>"}
<h3>Why deliveries were late (the promise's own cause)</h3>
{_table(broken, ["cause", "orders"]) if broken else "<p>None.</p>"}
{_late_list(misses, p["ship_today"] - p["shipped_on_time"])}
<h2>Staff utilisation</h2>
{_table(utilisation, ["activity", "zone", "hours available", "hours worked", "utilisation"])}
<h2>Trucks</h2>
{_table(manifests, ["service", "closed at", "parcels", "missing"]) if manifests else "<p>No truck left.</p>"}
<h2>Tickets and SLA</h2>
<p>{t["opened"]:,} tickets opened, {t["answered"]:,} answered ({t["answered_by_agents"]:,} by agents, the rest by
the automatic answer), {t["escalated"]:,} escalated; first response within its SLA: {t["first_response_met"]:,}
({t["first_response_rate"]:.1%}). Peak agents planned (Erlang C): {t["peak_agents"]}.</p>
<h2>Checks</h2>
{_table(checks, ["check", "count"])}
</body></html>
"""
