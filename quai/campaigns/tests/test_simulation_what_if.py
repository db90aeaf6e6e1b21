"""The what-if's verdict: the first stage to fall behind the same seed's normal day, when, and the orders it costs
(pure: no database; the run of a cut day against its normal day is in test_simulation.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from quai.campaigns.simulation.engine import OrderTrace, Tick
from quai.campaigns.simulation.params import ParamsError, SimulationParams, reference_check, reference_params
from quai.campaigns.simulation.report import first_behind, report_html, report_text, stage_queues, what_if_cost
from quai.tenants.models import Merchant

T0 = datetime(2027, 3, 16, 9, tzinfo=UTC)


def test_the_first_stage_named_is_the_first_whose_queue_passes_the_normal_days_by_more_than_its_margin() -> None:
    normal = {"picking": [10.0, 20.0, 30.0, 10.0], "packing": [0.0, 5.0, 10.0, 10.0]}
    margins = {"picking": [60.0] * 4, "packing": [45.0] * 4}
    cut = {"picking": [10.0, 50.0, 91.0, 40.0], "packing": [0.0, 5.0, 56.0, 90.0]}

    assert first_behind(cut, normal, margins) == ("picking", 2, 61.0)
    assert first_behind(normal, normal, margins) is None
    just_within = {"picking": [70.0, 80.0, 90.0, 70.0], "packing": [45.0, 50.0, 55.0, 55.0]}
    assert first_behind(just_within, normal, margins) is None
    # On the same tick the upstream stage is named: the packers wait for what the pickers have not done.
    both = {"picking": [10.0, 81.0, 30.0, 10.0], "packing": [0.0, 51.0, 10.0, 10.0]}
    assert first_behind(both, normal, margins) == ("picking", 1, 61.0)


def _row(order_id: int, ship_date: date | None, on_time: bool | None, status: str, at: datetime | None = None) -> Any:
    return {
        "order_id": order_id,
        "ship_date": ship_date,
        "shipped_on_time": on_time,
        "status": status,
        "delivered_at": at,
    }


def test_an_order_costs_once_whether_shipped_late_promised_later_or_delivered_late() -> None:
    today, tomorrow = date(2027, 3, 16), date(2027, 3, 17)
    normal = {
        "A": [today.isoformat(), True, "kept"],
        "B": [today.isoformat(), True, "kept"],
        "C": [today.isoformat(), True, "kept"],
        "D": [tomorrow.isoformat(), None, "kept"],
        "E": [today.isoformat(), True, "broken"],
    }
    first, second = T0 + timedelta(days=2), T0 + timedelta(days=3)
    cut = [
        _row(1, today, False, "broken", second),  # shipped late, and so delivered late
        _row(2, tomorrow, None, "kept"),  # promised a later day
        _row(3, today, True, "broken", first),  # delivered late where the normal day kept it
        _row(4, tomorrow, None, "kept"),  # the same next-day promise as the normal day
        _row(5, today, True, "broken", T0),  # late on the normal day too: not the what-if's
        _row(6, today, False, "open"),  # not in the normal day's trace: nothing to compare with
    ]
    ids = {1: "A", 2: "B", 3: "C", 4: "D", 5: "E", 6: "F"}

    floor = what_if_cost(cut, ids, normal, deliveries=False)
    assert floor == {"orders": 2, "late": 1, "later_promise": 1, "late_delivery": 0, "first_late_delivery": None}
    carrier = what_if_cost(cut, ids, normal, deliveries=True)
    assert carrier == {"orders": 3, "late": 1, "later_promise": 1, "late_delivery": 2, "first_late_delivery": first}


def test_the_queues_follow_each_order_from_intake_to_pick_and_from_pick_to_pack() -> None:
    ticks = [T0 + timedelta(minutes=10 * k) for k in range(1, 6)]

    def trace(pk: int, lines: int, received: int, picked: int | None, packed: int | None) -> OrderTrace:
        return OrderTrace(
            pk=pk,
            external_id=f"X{pk}",
            service="s",
            lines=lines,
            units=lines,
            received_at=ticks[received],
            picked_at=ticks[picked] if picked is not None else None,
            packed_at=ticks[packed] if packed is not None else None,
        )

    run = SimpleNamespace(
        ticks=[Tick(at=at, orders_in=0, intake=0, stages={}, pick_heads=1, pack_heads=1) for at in ticks],
        traces={1: trace(1, 2, 0, 2, 3), 2: trace(2, 1, 1, None, None), 3: trace(3, 3, 1, 1, None)},
    )

    queues = stage_queues(run)  # type: ignore[arg-type]

    assert queues["picking"] == [2.0, 3.0, 1.0, 1.0, 1.0]
    # packing: the order's lines and one line's worth for the parcel's own handling
    assert queues["packing"] == [0.0, 4.0, 7.0, 4.0, 4.0]


def test_a_reference_of_another_day_or_of_a_what_if_is_refused_with_a_sentence() -> None:
    params = SimulationParams(seed=3, orders=120, hours=8, what_if="staff-30")
    same = {"params": reference_params(SimulationParams(seed=3, orders=120, hours=8)), "what_if": ""}
    reference_check(params, same)

    with pytest.raises(ParamsError, match="differs in: seed, orders"):
        reference_check(params, {**same, "params": {**same["params"], "seed": 4, "orders": 100}})
    with pytest.raises(ParamsError, match="what-if zone-closed"):
        reference_check(params, {**same, "what_if": "zone-closed"})


@pytest.mark.django_db
def test_the_command_refuses_a_reference_of_another_day_before_anything_runs(tmp_path: Path) -> None:
    reference = tmp_path / "normal.json"
    reference.write_text(json.dumps({"params": reference_params(SimulationParams(seed=9)), "what_if": ""}))

    with pytest.raises(CommandError, match="differs in: seed"):
        call_command("simulate", "flash-sale", "--scratch", "--what-if=staff-30", f"--baseline={reference}")
    with pytest.raises(CommandError, match="give --what-if"):
        call_command("simulate", "flash-sale", "--scratch", "--seed=9", f"--baseline={reference}")
    assert not Merchant.objects.exists()


def _figures(behind: dict[str, Any]) -> dict[str, Any]:
    from quai.campaigns.tests.test_simulation import _figures_of_a_day

    return {**_figures_of_a_day(), "stage_behind": behind}


CUT = {
    "stage": "picking",
    "at": "10:40",
    "orders": 53,
    "late": 2,
    "later_promise": 51,
    "late_delivery": 0,
    "reference": "normal day",
    "why": "plan",
    "behind_lines": 1234.5,
    "behind_minutes": 41,
}


def test_the_what_ifs_verdict_reads_in_english_and_in_french() -> None:
    figures = _figures(CUT)
    with translation.override("en"):
        page, summary = report_html(None, figures), report_text(figures)  # type: ignore[arg-type]
    assert (
        "First stage to fall behind: <b>picking</b> at 10:40, 41 minutes of its planned crew's work behind the normal "
        "day (1,234 lines more waiting)." in page
    )
    assert "The what-if cost 53 orders against the normal day: 2 shipped late, 51 promised a later day" in page
    assert "first stage behind" in summary and "picking at 10:40, 41 minutes" in summary
    assert "cost 53 orders against the normal day" in summary

    with translation.override("fr"):
        page, summary = report_html(None, figures), report_text(figures)  # type: ignore[arg-type]
    assert "Première étape à prendre du retard : <b>en préparation</b> à 10:40, 41 minutes" in page
    assert "1\u202f234" in page or "1\xa0234" in page
    assert "53 commandes par rapport à la journée normale" in page
    assert "picking" not in summary and "en préparation à 10:40" in summary
    assert "normal day" not in page and "normal day" not in summary


def test_a_carrier_what_if_names_the_carrier_and_a_day_that_kept_up_says_so() -> None:
    carrier = {**CUT, "stage": "carrier", "at": "2027-03-18 09:40", "why": "deliveries", "behind_minutes": 0}
    carrier.update(orders=40, late=0, later_promise=0, late_delivery=40, behind_lines=0.0)
    kept_up = {**CUT, "stage": "", "at": None, "why": "", "orders": 0, "late": 0, "later_promise": 0}
    with translation.override("en"):
        page = report_html(None, _figures(carrier))  # type: ignore[arg-type]
        summary = report_text(_figures(kept_up))
    assert "<b>in transit</b> from 2027-03-18 09:40, the first delivery after its promise" in page
    assert "40 delivered after their promise" in page
    assert "none within half an hour of the normal day; cost 0 orders" in summary
    with translation.override("fr"):
        page = report_html(None, _figures(carrier))  # type: ignore[arg-type]
    assert "<b>en transport</b>" in page and "40 livrées après leur promesse" in page


def test_the_bench_prints_the_what_ifs_verdict_against_the_issues_target() -> None:
    from bench.flash_sale import what_if_row

    result = {"database": "SQLite", "what_if": "staff-30", "orders_in": 1000, "stage_behind": CUT}
    label, measured, _target, verdict = what_if_row(result)
    assert label == "SQLite: staff-30, first stage behind (1,000 orders)"
    assert measured == (
        "picking at 10:40, 41 min of work behind; costs 53 orders (2 shipped late, 51 promised a later day, "
        "0 delivered late)"
    )
    assert verdict == "PASS"
    kept_up = {**result, "stage_behind": {**CUT, "stage": "", "at": None, "why": ""}}
    assert what_if_row(kept_up)[1].startswith("none; costs 53 orders") and what_if_row(kept_up)[3] == "MISS"
