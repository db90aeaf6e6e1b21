"""The figures of a simulated day, read back from the database the real services wrote, and their report: a
self-contained HTML page (charts drawn as inline SVG, no script, no network) and a short text summary."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.formats import number_format
from django.utils.translation import get_language, gettext_lazy, pgettext, pgettext_lazy
from django.utils.translation import gettext as _

from quai.campaigns.simulation import world as world_mod
from quai.campaigns.simulation.engine import PACK_OVERHEAD_LINES, SCOPE, STAGES, Run
from quai.campaigns.simulation.params import CARRIER_WHAT_IFS, reference_check, reference_params
from quai.labor.models import Activity
from quai.orders.selectors import order_list
from quai.tenants.scope import Scope

TARGET_ON_TIME = 0.998
TARGET_DELIVERED = 0.95
CAUSE_LABELS = {
    "release": gettext_lazy("still in its release buffer at the cut-off (promised too close to it)"),
    "wave": gettext_lazy("waiting for a wave (released, not yet on the floor)"),
    "picking": gettext_lazy("picking (on the floor, not yet picked)"),
    "packing": gettext_lazy("packing (picked, not yet packed)"),
    "truck": gettext_lazy("missed the truck (packed after the cut-off)"),
    "intake": gettext_lazy("still in intake (not released)"),
    "warehouse_late": gettext_lazy("shipped late by the warehouse"),
    "carrier_late": gettext_lazy("carrier transit longer than promised"),
    "stock_short": gettext_lazy("stock short"),
    "customer_hold": gettext_lazy("held by customer service"),
}
CHECK_LABELS = {
    "orders_lost": gettext_lazy("orders lost"),
    "orders_unexpected": gettext_lazy("orders unexpected"),
    "orders_duplicated": gettext_lazy("orders duplicated"),
    "shipped_without_pick": gettext_lazy("shipped without pick"),
    "shipped_without_pack": gettext_lazy("shipped without pack"),
    "shipped": pgettext_lazy("orders at a stage", "shipped"),
}
STAGE_LABELS = {
    "received": pgettext_lazy("orders at a stage", "received"),
    "released": pgettext_lazy("orders at a stage", "released"),
    "picking": pgettext_lazy("orders at a stage", "picking"),
    "packing": pgettext_lazy("orders at a stage", "packing"),
    "packed": pgettext_lazy("orders at a stage", "packed"),
    "shipped": pgettext_lazy("orders at a stage", "shipped"),
    "carrier": pgettext_lazy("orders at a stage", "in transit"),
}


def _cause(key: str) -> str:
    return str(CAUSE_LABELS.get(key, key))


def _stage(key: str) -> str:
    return str(STAGE_LABELS.get(key, key))


def _n(value: float, decimals: int = 0) -> str:
    """A number as the reader's language writes it (1,234.5 in English, 1 234,5 in French)."""
    return str(number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True))


def _pct(rate: float, decimals: int = 1) -> str:
    """A share as a percentage in the reader's language (99.80 % in French is « 99,80 % »)."""
    return _n(100 * rate, decimals) + ("\u202f%" if get_language() == "fr" else "%")


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
    from quai.inventory.selectors import stock_drift, stock_overcommitment

    found = stock_overcommitment()
    return {
        "oversold_units": found.oversold_units,
        "negative_places": found.negative_places,
        "drift": len(stock_drift()),
    }


def _integrity(run: Run) -> dict[str, int]:
    from quai.fulfillment.selectors import orders_picked
    from quai.packing.selectors import orders_with_closed_parcel

    planned = {f"FS{run.params.seed}-{k:06d}" for k in range(1, run.params.orders + 1)}
    stored = Counter(order_list(scope=SCOPE).values_list("external_id", flat=True))
    shipped = set(
        order_list(scope=SCOPE)
        .filter(status__in=["shipped", "partially_shipped", "delivered"])
        .values_list("pk", flat=True)
    )
    ids = sorted(shipped)
    chunks = [ids[start : start + 5000] for start in range(0, len(ids), 5000)]  # SQLite's cap on bound values
    picked = {pk for chunk in chunks for pk in orders_picked(scope=SCOPE, order_ids=chunk)}
    packed = {pk for chunk in chunks for pk in orders_with_closed_parcel(scope=SCOPE, order_ids=chunk)}
    return {
        "orders_lost": len(planned - set(stored)) - sum(run.refused.values()),
        "orders_unexpected": len(set(stored) - planned),
        "orders_duplicated": sum(1 for n in stored.values() if n > 1),
        "shipped_without_pick": len(shipped - picked),
        "shipped_without_pack": len(shipped - packed),
        "shipped": len(shipped),
    }


def _promise_rows(run: Run) -> list[dict[str, Any]]:
    from quai.promise.selectors import record_list

    fields = ("order_id", "ship_date", "ship_by", "shipped_at", "shipped_on_time", "status", "cause")
    rows = record_list(scope=Scope.merchant(run.world.merchant_id)).order_by("order_id")
    return [dict(row) for row in rows.values(*fields, "delivery_by", "delivered_at")]


def _promises(run: Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
    day = world_mod.SIM_DAY
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
    from quai.service.selectors import ticket_queue

    rows = list(
        ticket_queue(scope=Scope.merchant(run.world.merchant_id), open_only=False).values(
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


# --- What breaks first ------------------------------------------------------------------------------------------

#: A what-if's stage is behind when the work waiting for it exceeds the normal day's (the same seed, nothing cut:
#: the plan as planned) at the same time by more than this many hours of its planned crew's work. Half an hour
#: behind the plan is what a supervisor calls behind: less is the ordinary jitter of waves and rounds.
BEHIND_MARGIN_HOURS = 0.5
FLOOR_STAGES = (("picking", Activity.PICK), ("packing", Activity.PACK))
#: A what-if's own cost that no floor stage explains (the carrier's transit): named as this stage.
CARRIER_STAGE = "carrier"


def stage_queues(run: Run) -> dict[str, list[float]]:
    """Lines of work waiting for each floor stage at the end of each tick, from the orders' traces: for picking an
    order's lines from its intake to its pick (its release buffer lasts as long on any day of the seed), for
    packing its lines and the parcel's handling from its pick to its pack."""
    index = {tick.at: k for k, tick in enumerate(run.ticks)}
    deltas = {stage: [0.0] * (len(run.ticks) + 1) for stage, _activity in FLOOR_STAGES}

    def add(stage: str, start: datetime | None, end: datetime | None, lines: float) -> None:
        if start is None or start not in index:
            return
        deltas[stage][index[start]] += lines
        if end is not None and end in index:
            deltas[stage][index[end]] -= lines

    for trace in run.traces.values():
        add("picking", trace.received_at, trace.picked_at, trace.lines)
        add("packing", trace.picked_at, trace.packed_at, trace.lines + PACK_OVERHEAD_LINES)
    queues: dict[str, list[float]] = {}
    for stage, changes in deltas.items():
        waiting, series = 0.0, []
        for change in changes[:-1]:
            waiting += change
            series.append(round(waiting, 3))
        queues[stage] = series
    return queues


def _behind_margins(run: Run) -> dict[str, list[float]]:
    """Per floor stage and tick, the lines its planned crew of that hour does in ``BEHIND_MARGIN_HOURS`` (one
    person at least: a night hour with nobody planned is not behind for a handful of lines)."""
    tick = timedelta(minutes=run.params.tick_minutes)
    margins: dict[str, list[float]] = {}
    for stage, activity in FLOOR_STAGES:
        rate = float(world_mod.STANDARDS[activity])
        margins[stage] = [
            BEHIND_MARGIN_HOURS * rate * max(1, run.world.plan_heads.get((_hour(t.at - tick), activity), 0))
            for t in run.ticks
        ]
    return margins


def _hour(at: datetime) -> datetime:
    return _local(at).replace(minute=0, second=0, microsecond=0)


def first_behind(
    queues: dict[str, list[float]], reference: dict[str, list[float]], margins: dict[str, list[float]]
) -> tuple[str, int, float] | None:
    """The first tick at which a stage's queue exceeds the reference day's by more than its margin: (stage, tick,
    the lines above the reference), the upstream stage first on a tie; None when none ever does."""
    stages = [stage for stage, _activity in FLOOR_STAGES if stage in queues and stage in reference]
    ticks = min((min(len(queues[s]), len(reference[s]), len(margins[s])) for s in stages), default=0)
    for k in range(ticks):
        for stage in stages:
            gap = queues[stage][k] - reference[stage][k]
            if gap > margins[stage][k] + 1e-9:
                return stage, k, gap
    return None


def day_trace(run: Run) -> dict[str, Any]:
    """What a day did, tick by tick and order by order (``--trace``): the reference a what-if of the same seed is
    compared with (``--baseline``)."""
    rows = _promise_rows(run)
    return {
        "params": reference_params(run.params),
        "what_if": run.params.what_if,
        "ticks": [t.at.isoformat() for t in run.ticks],
        "queues": stage_queues(run),
        # Each tick's parts: the orders taken in and waved, the heads on shift, the stages at its end, and what
        # each part of the engine cost in that tick (CPU milliseconds, SQL statements; machine-dependent, unlike
        # the rest, and read by no comparison): how a part's cost per tick grows with the day.
        "tick_parts": [
            {
                "intake": t.intake,
                "waved": t.waved,
                "pick_heads": t.pick_heads,
                "pack_heads": t.pack_heads,
                "stages": t.stages,
                "cpu_ms": {part: round(cpu * 1000, 1) for part, (cpu, _statements) in sorted(t.costs.items())},
                "sql": {part: statements for part, (_cpu, statements) in sorted(t.costs.items())},
            }
            for t in run.ticks
        ],
        "orders": {
            run.traces[r["order_id"]].external_id: [
                r["ship_date"].isoformat() if r["ship_date"] else None,
                r["shipped_on_time"],
                r["status"],
            ]
            for r in rows
            if r["order_id"] in run.traces
        },
    }


def what_if_cost(
    rows: list[dict[str, Any]], external_ids: dict[int, str], reference: dict[str, list[Any]], *, deliveries: bool
) -> dict[str, Any]:
    """The orders a what-if costs against the normal day of the same seed, each counted once: shipped late where
    the normal day shipped it on time, promised a later ship date, and (``deliveries``: a what-if on the carriers)
    delivered after its promise where the normal day kept it; and when the first of those late deliveries
    happened."""
    late: set[str] = set()
    later: set[str] = set()
    broken: set[str] = set()
    first_broken: datetime | None = None
    for r in rows:
        external_id = external_ids.get(r["order_id"])
        if external_id is None or external_id not in reference:
            continue
        ship_date, on_time, status = reference[external_id]
        if r["shipped_on_time"] is False and on_time is not False:
            late.add(external_id)
        if r["ship_date"] is not None and ship_date is not None and r["ship_date"].isoformat() > ship_date:
            later.add(external_id)
        if deliveries and r["status"] == "broken" and status == "kept":
            broken.add(external_id)
            if r["delivered_at"] is not None and (first_broken is None or r["delivered_at"] < first_broken):
                first_broken = r["delivered_at"]
    costly = late | later | broken
    return {
        "orders": len(costly),
        "late": len(late),
        "later_promise": len(later),
        "late_delivery": len(broken),
        "first_late_delivery": first_broken,
    }


def _stage_behind(
    run: Run, promises: dict[str, Any], rows: list[dict[str, Any]], baseline: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The first stage to fall behind. On any day: a stage whose queue of the day's promised work outgrows what
    its present people can still do before the last cut-off (``engine._behind_check``). With the normal day of
    the same seed as a reference (a what-if): also a stage half an hour of its planned crew's work behind that
    day at the same time, and the orders the what-if costs; the carrier when only the deliveries fell behind."""
    found: list[tuple[datetime, str, str, float]] = [(at, stage, "cut-off", 0.0) for stage, at in run.behind_at.items()]
    if baseline is None:
        if not found:
            return {"stage": "", "at": None, "orders": 0}
        at, stage, _why, _gap = min(found, key=lambda item: (item[0], item[1]))
        costs = {"picking": ("wave", "picking"), "packing": ("packing",)}[stage]
        orders = sum(promises["late_causes"].get(cause, 0) for cause in costs)
        return {"stage": stage, "at": _local(at).strftime("%H:%M"), "orders": orders}
    reference_check(run.params, baseline)
    margins = _behind_margins(run)
    hit = first_behind(stage_queues(run), baseline["queues"], margins)
    minutes = 0
    if hit is not None:
        stage, k, gap = hit
        found.append((run.ticks[k].at, stage, "plan", gap))
        minutes = round(60 * BEHIND_MARGIN_HOURS * gap / margins[stage][k])
    external_ids = {pk: t.external_id for pk, t in run.traces.items()}
    deliveries = run.params.what_if in CARRIER_WHAT_IFS
    cost = what_if_cost(rows, external_ids, baseline["orders"], deliveries=deliveries)
    first_late_delivery = cost.pop("first_late_delivery")
    if not found and first_late_delivery is not None:
        found.append((first_late_delivery, CARRIER_STAGE, "deliveries", 0.0))
    result: dict[str, Any] = {"stage": "", "at": None, **cost, "reference": "normal day", "why": ""}
    result.update(behind_lines=0.0, behind_minutes=0)
    if found:
        at, stage, why, gap = min(found, key=lambda item: (item[0], item[1]))
        local = _local(at)
        shown = local.strftime("%H:%M") if local.date() == world_mod.SIM_DAY else local.strftime("%Y-%m-%d %H:%M")
        result.update(stage=stage, at=shown, why=why)
        if why == "plan":
            result.update(behind_lines=round(gap, 1), behind_minutes=minutes)
    return result


def run_figures(run: Run, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of the report (deterministic for a seed: no wall time in here but ``wall_seconds``); with
    ``baseline`` (``day_trace`` of the same seed's normal day) the first stage behind is measured against it."""
    rows = _promise_rows(run)
    promises = _promises(run, rows)
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
        "stage_behind": _stage_behind(run, promises, rows, baseline),
        "stock": _oversold(),
        "integrity": _integrity(run),
        "utilisation": _utilisation(run),
        "tickets": _tickets(run),
        "manifests": [{**m, "at": _local(m["at"]).strftime("%H:%M")} for m in run.manifests],
        "transit_days": dict(sorted(run.delivered_days.items())),
        "wall_seconds": {k: round(v, 2) for k, v in sorted(run.wall_seconds.items())},
        "cpu_seconds": {k: round(v, 2) for k, v in sorted(run.cpu_seconds.items())},
        "queries": dict(sorted(run.queries.items())),
    }


def _what_if_cost_words(behind: dict[str, Any]) -> str:
    return _(
        "%(orders)s orders against the normal day: %(late)s shipped late, %(later)s promised a later day, "
        "%(delivered)s delivered after their promise"
    ) % {
        "orders": _n(behind["orders"]),
        "late": _n(behind["late"]),
        "later": _n(behind["later_promise"]),
        "delivered": _n(behind["late_delivery"]),
    }


def _behind_words(behind: dict[str, Any], stage: str) -> str:
    """Why the stage is named (``stage`` already shaped for the page: escaped and in bold, or plain)."""
    at = behind["at"]
    if behind.get("why") == "plan":
        return _(
            "%(stage)s at %(at)s, %(minutes)s minutes of its planned crew's work behind the normal day (%(lines)s "
            "lines more waiting)"
        ) % {"stage": stage, "at": at, "minutes": _n(behind["behind_minutes"]), "lines": _n(behind["behind_lines"])}
    if behind.get("why") == "deliveries":
        return _("%(stage)s from %(at)s, the first delivery after its promise where the normal day kept it") % {
            "stage": stage,
            "at": at,
        }
    return _(
        "%(stage)s at %(at)s, its queue of today's work more than its people could still do before the last cut-off"
    ) % {"stage": stage, "at": at}


def _behind_summary(behind: dict[str, Any]) -> str:
    if "reference" not in behind:  # a normal day: the stages against the cut-off only
        if not behind["stage"]:
            return _("none: every stage kept up with the day's work")
        return _("%(stage)s at %(at)s, costing %(orders)s late orders") % {
            "stage": _stage(behind["stage"]),
            "at": behind["at"],
            "orders": _n(behind["orders"]),
        }
    cost = _("cost %(cost)s") % {"cost": _what_if_cost_words(behind)}
    if not behind["stage"]:
        return _("none within half an hour of the normal day; %(cost)s") % {"cost": cost}
    return f"{_behind_words(behind, _stage(behind['stage']))}; {cost}"


def _behind_html(behind: dict[str, Any]) -> str:
    if "reference" not in behind:
        if not behind["stage"]:
            return html.escape(_("No stage fell behind: every stage could finish the day's work in time."))
        return _(
            "First stage to fall behind: <b>%(stage)s</b> at %(at)s (its queue of today's work exceeded what its "
            "people could still do before the last cut-off); it cost <b>%(orders)s</b> orders their ship date."
        ) % {"stage": html.escape(_stage(behind["stage"])), "at": behind["at"], "orders": _n(behind["orders"])}
    cost = html.escape(_("The what-if cost %(cost)s.") % {"cost": _what_if_cost_words(behind)})
    if not behind["stage"]:
        first = html.escape(_("No stage fell half an hour of its planned crew's work behind the normal day."))
    else:
        stage = "<b>" + html.escape(_stage(behind["stage"])) + "</b>"
        first = _("First stage to fall behind: %(why)s.") % {"why": _behind_words(behind, stage)}
    return f"{first} {cost}"


def report_text(figures: dict[str, Any]) -> str:
    """The summary printed at the end of the command, in the active language."""
    p, stock, behind, t = figures["promise"], figures["stock"], figures["stage_behind"], figures["tickets"]
    head = _("Flash-sale day %(day)s (seed %(seed)s") % {"day": figures["day"], "seed": figures["seed"]}
    if figures["what_if"]:
        head += _(", what-if %(what_if)s") % {"what_if": figures["what_if"]}
    head += _("): %(orders_in)s of %(planned)s orders in, spike ×%(spike)s") % {
        "orders_in": _n(figures["orders_in"]),
        "planned": _n(figures["orders_planned"]),
        "spike": f"{figures['spike']:g}",
    }
    rows = [
        (
            pgettext("report line", "shipped on time"),
            _("%(rate)s (%(on_time)s of %(due)s due today; target ≥ %(target)s)")
            % {
                "rate": _pct(p["shipped_on_time_rate"], 2),
                "on_time": _n(p["shipped_on_time"]),
                "due": _n(p["ship_today"]),
                "target": _pct(TARGET_ON_TIME),
            },
        ),
        (
            _("delivered by promised"),
            _("%(rate)s (%(kept)s of %(decided)s delivered; target ≥ %(target)s)")
            % {
                "rate": _pct(p["delivered_rate"], 2),
                "kept": _n(p["delivered_kept"]),
                "decided": _n(p["delivered_decided"]),
                "target": _pct(TARGET_DELIVERED, 0),
            },
        ),
        (
            _("oversold units"),
            _("%(units)s (drift %(drift)s)") % {"units": stock["oversold_units"], "drift": stock["drift"]},
        ),
        (
            _("tickets"),
            _("%(opened)s opened, first response on time %(rate)s")
            % {"opened": _n(t["opened"]), "rate": _pct(t["first_response_rate"])},
        ),
        (_("at the end of the day"), ", ".join(f"{_stage(k)} {_n(v)}" for k, v in figures["stages_end"].items())),
    ]
    if p["late_causes"]:
        rows.append(
            (_("late shipments by cause"), ", ".join(f"{_cause(k)} {_n(v)}" for k, v in p["late_causes"].items()))
        )
    if p["broken_causes"]:
        rows.append(
            (_("late deliveries by cause"), ", ".join(f"{_cause(k)} {_n(v)}" for k, v in p["broken_causes"].items()))
        )
    rows.append((_("first stage behind"), _behind_summary(behind)))
    rows.append((_("wall time"), f"{_n(figures['wall_seconds'].get('total', 0))} s"))
    width = max(len(label) for label, _value in rows) + 2
    return "\n".join([head, *(f"  {label.ljust(width)}{value}" for label, value in rows)])


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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>',
    ]
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_n(value)}</text>')
    for k, (label, value) in enumerate(values):
        h = plot_h * value / peak
        x = left + k * bar
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(1.0, bar - 2):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{html.escape(label)}: {_n(value)}</title></rect>'
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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>',
    ]
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_n(value)}</text>')
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
        parts.append(f'<text x="{left + plot_w + 36}" y="{y + 2}" class="legend">{html.escape(_stage(key))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _verdict(ok: bool) -> str:
    word = _("met") if ok else _("missed")
    return f'<span class="ok">✔ {word}</span>' if ok else f'<span class="miss">✘ {word}</span>'


def _late_list(misses: list[list[str]], total: int) -> str:
    if not misses:
        return ""
    if total > len(misses):
        shown = _("the first %(shown)s of %(total)s") % {"shown": _n(len(misses)), "total": _n(total)}
    else:
        shown = _("all %(total)s") % {"total": _n(total)}
    return (
        "<details><summary>"
        + html.escape(_("Late orders (%(shown)s)") % {"shown": shown})
        + "</summary>"
        + _table(misses, [_("order"), _("ship by"), _("cause")])
        + "</details>"
    )


def report_html(run: Run, figures: dict[str, Any]) -> str:
    """The report page in the active language (``manage.py simulate ... --lang fr``)."""
    p, stock, t, behind = figures["promise"], figures["stock"], figures["tickets"], figures["stage_behind"]
    integrity = figures["integrity"]
    hours = list(figures["orders_per_hour"].items())
    headline = [
        [
            _("Orders in"),
            _n(figures["orders_in"]),
            _("of %(planned)s drawn") % {"planned": _n(figures["orders_planned"])},
            "",
        ],
        [
            _("Shipped on time"),
            _pct(p["shipped_on_time_rate"], 2),
            _("%(on_time)s of %(due)s due by the day's cut-offs")
            % {"on_time": _n(p["shipped_on_time"]), "due": _n(p["ship_today"])},
            f"≥ {_pct(TARGET_ON_TIME)} " + _verdict(p["shipped_on_time_rate"] >= TARGET_ON_TIME),
        ],
        [
            _("Delivered by the promised date"),
            _pct(p["delivered_rate"], 2),
            _("%(kept)s of %(decided)s delivered")
            % {"kept": _n(p["delivered_kept"]), "decided": _n(p["delivered_decided"])},
            f"≥ {_pct(TARGET_DELIVERED, 0)} " + _verdict(p["delivered_rate"] >= TARGET_DELIVERED),
        ],
        [
            _("Oversold units"),
            _n(stock["oversold_units"]),
            _("stock check: %(drift)s drift, %(negative)s negative places")
            % {"drift": _n(stock["drift"]), "negative": _n(stock["negative_places"])},
            "0 " + _verdict(stock["oversold_units"] == 0 and stock["drift"] == 0),
        ],
        [
            _("Tickets (where is my order?)"),
            _n(t["opened"]),
            _("first response on time %(rate)s, %(agents)s by agents")
            % {"rate": _pct(t["first_response_rate"]), "agents": _n(t["answered_by_agents"])},
            "",
        ],
    ]
    headline = [[html.escape(cell) if k < 3 else cell for k, cell in enumerate(row)] for row in headline]
    causes = [[html.escape(_cause(k)), _n(v)] for k, v in p["late_causes"].items()]
    broken = [[html.escape(_cause(k)), _n(v)] for k, v in p["broken_causes"].items()]
    misses = [
        [
            html.escape(row["external_id"] or str(row["order_id"])),
            _local(row["ship_by"]).strftime("%H:%M") if row["ship_by"] else "-",
            html.escape(_cause(row["cause"])),
        ]
        for row in p["late_orders"][:50]
    ]
    utilisation = [
        [
            html.escape(str(Activity(u["activity"]).label) if u["activity"] in Activity.values else u["activity"]),
            html.escape(_("all zones") if u["zone"] == "all" else u["zone"]),
            _n(u["hours_available"], 1),
            _n(u["hours_worked"], 1),
            _pct(u["utilisation"], 0),
        ]
        for u in figures["utilisation"]
    ]
    manifests = [[html.escape(m["service"]), m["at"], _n(m["parcels"]), _n(m["missing"])] for m in figures["manifests"]]
    behind_text = _behind_html(behind)
    checks = [[html.escape(str(CHECK_LABELS.get(k, k.replace("_", " ")))), _n(v)] for k, v in integrity.items()]
    what_if = (
        ", " + _("what-if <b>%(what_if)s</b>") % {"what_if": html.escape(figures["what_if"])}
        if figures["what_if"]
        else ""
    )
    intro = _(
        "Seed %(seed)s%(what_if)s, %(hours)s simulated hours, spike ×%(spike)s. Every figure below was read back "
        "from what Quai's own services wrote."
    ) % {"seed": figures["seed"], "what_if": what_if, "hours": figures["hours"], "spike": f"{figures['spike']:g}"}
    promise_text = _(
        "Shipped on time: %(on_time)s of %(due)s orders promised to ship on the day (%(rate)s); %(later)s orders "
        "were promised for a later day (%(early)s of them left early). Delivered by the promised date: %(kept)s of "
        "%(decided)s (%(delivered_rate)s)."
    ) % {
        "on_time": _n(p["shipped_on_time"]),
        "due": _n(p["ship_today"]),
        "rate": _pct(p["shipped_on_time_rate"], 2),
        "later": _n(p["ship_later"]),
        "early": _n(p["shipped_early"]),
        "kept": _n(p["delivered_kept"]),
        "decided": _n(p["delivered_decided"]),
        "delivered_rate": _pct(p["delivered_rate"], 2),
    }
    tickets_text = _(
        "%(opened)s tickets opened, %(answered)s answered (%(agents)s by agents, the rest by the automatic answer), "
        "%(escalated)s escalated; first response within its SLA: %(met)s (%(rate)s). Peak agents planned "
        "(Erlang C): %(peak)s."
    ) % {
        "opened": _n(t["opened"]),
        "answered": _n(t["answered"]),
        "agents": _n(t["answered_by_agents"]),
        "escalated": _n(t["escalated"]),
        "met": _n(t["first_response_met"]),
        "rate": _pct(t["first_response_rate"]),
        "peak": t["peak_agents"],
    }
    none = "<p>" + html.escape(_("None.")) + "</p>"
    trucks = (
        _table(manifests, [_("service"), pgettext("simulation report", "closed at"), _("parcels"), _("missing")])
        if manifests
        else "<p>" + html.escape(_("No truck left.")) + "</p>"
    )
    lang = get_language() or "en"
    words = {
        "flash_sale_simulation_seed_s": pgettext("simulation report", "Flash-sale simulation, seed %(seed)s"),
        "flash_sale_day_day_s": pgettext("simulation report", "Flash-sale day, %(day)s"),
        "figure": pgettext("simulation report", "figure"),
        "value": pgettext("simulation report", "value"),
        "detail": pgettext("simulation report", "detail"),
        "target": pgettext("simulation report", "target"),
        "orders_per_hour": pgettext("simulation report", "Orders per hour"),
        "orders_received_per_hour_loc": pgettext("simulation report", "Orders received per hour (local time)"),
        "backlog_per_stage_over_the_d": pgettext("simulation report", "Backlog per stage over the day"),
        "orders_waiting_in_each_stage": pgettext("simulation report", "Orders waiting in each stage"),
        "orders_shipped_cumulative": pgettext("simulation report", "Orders shipped (cumulative)"),
        "promise_kept": pgettext("simulation report", "Promise kept"),
        "why_shipments_were_late_the": pgettext(
            "simulation report", "Why shipments were late (the stage each order was in at its cut-off)"
        ),
        "cause": pgettext("simulation report", "cause"),
        "orders": pgettext("simulation report", "orders"),
        "why_deliveries_were_late_the": pgettext(
            "simulation report", "Why deliveries were late (the promise's own cause)"
        ),
        "staff_utilisation": pgettext("simulation report", "Staff utilisation"),
        "activity": pgettext("simulation report", "activity"),
        "zone": pgettext("simulation report", "zone"),
        "hours_available": pgettext("simulation report", "hours available"),
        "hours_worked": pgettext("simulation report", "hours worked"),
        "utilisation": pgettext("simulation report", "utilisation"),
        "trucks": pgettext("simulation report", "Trucks"),
        "tickets_and_sla": pgettext("simulation report", "Tickets and SLA"),
        "checks": pgettext("simulation report", "Checks"),
        "check": pgettext("simulation report", "check"),
        "count": pgettext("simulation report", "count"),
    }
    per_hour_chart = _svg_bars(hours, title=words["orders_received_per_hour_loc"], colour=COLOURS["orders"])
    waiting_chart = _svg_lines(
        figures["series"], ["released", "picking", "packed"], title=words["orders_waiting_in_each_stage"]
    )
    shipped_chart = _svg_lines(figures["series"], ["shipped"], title=words["orders_shipped_cumulative"], height=220)
    utilisation_table = _table(
        utilisation,
        [words["activity"], words["zone"], words["hours_available"], words["hours_worked"], words["utilisation"]],
    )
    return f"""<!doctype html>
<html lang="{html.escape(lang)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(words["flash_sale_simulation_seed_s"] % {"seed": figures["seed"]})}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 960px; padding: 0 8px; color: #222; }}
h1 {{ font-size: 26px; margin-bottom: 4px; }} h2 {{ font-size: 20px; margin-top: 32px; }}
table {{ border-collapse: collapse; margin: 8px 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px;
text-align: left; font-size: 15px; }} th {{ background: #f2f2f2; }}
.chart {{ display: block; margin: 8px 0; background: #fff; border: 1px solid #ddd; }}
.scroll {{ overflow-x: auto; }}
.chart .title {{ font-size: 15px; font-weight: 600; }} .chart .axis {{ font-size: 12px; fill: #555; }}
.chart .legend {{ font-size: 14px; }} .chart .grid {{ stroke: #e4e4e4; }}
.ok {{ color: #1a7f37; font-weight: 600; }} .miss {{ color: #c62828; font-weight: 600; }}
.callout {{ background: #fff7e0; border-left: 4px solid #f2a900; padding: 8px 12px; }}
.muted {{ color: #666; font-size: 14px; }}
</style></head><body>
<h1>{html.escape(words["flash_sale_day_day_s"] % {"day": figures["day"]})}</h1>
<p class="muted">{intro}</p>
{_table(headline, [words["figure"], words["value"], words["detail"], words["target"]])}
<p class="callout">{behind_text}</p>
<h2>{html.escape(words["orders_per_hour"])}</h2>
<div class="scroll">{per_hour_chart}</div>
<h2>{html.escape(words["backlog_per_stage_over_the_d"])}</h2>
<div class="scroll">{waiting_chart}</div>
<div class="scroll">{shipped_chart}</div>
<h2>{html.escape(words["promise_kept"])}</h2>
<p>{html.escape(promise_text)}</p>
<h3>{html.escape(words["why_shipments_were_late_the"])}</h3>
{_table(causes, [words["cause"], words["orders"]]) if causes else none}
<h3>{html.escape(words["why_deliveries_were_late_the"])}</h3>
{_table(broken, [words["cause"], words["orders"]]) if broken else none}
{_late_list(misses, p["ship_today"] - p["shipped_on_time"])}
<h2>{html.escape(words["staff_utilisation"])}</h2>
{utilisation_table}
<h2>{html.escape(words["trucks"])}</h2>
{trucks}
<h2>{html.escape(words["tickets_and_sla"])}</h2>
<p>{html.escape(tickets_text)}</p>
<h2>{html.escape(words["checks"])}</h2>
{_table(checks, [words["check"], words["count"]])}
</body></html>
"""
