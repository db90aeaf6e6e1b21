"""The simulated flash-sale day: bad input refused before anything runs, a database with data refused, and a small
day run twice in scratch databases (same seed, same figures; nothing lost, nothing oversold, every shipped order
picked and packed; the HTML report holds its charts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from quai.campaigns.simulation.orders import CAMPAIGN_CODES, OTHER_CODES, order_curve, orders_draw
from quai.campaigns.simulation.params import ParamsError, SimulationParams, params_check
from quai.campaigns.simulation.world import curve_hours
from quai.tenants.models import Merchant
from quai.tenants.tests.factories import MerchantFactory


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"hours": 0}, "duration"),
        ({"hours": 25}, "duration"),
        ({"orders": -5}, "negative"),
        ({"orders": 3}, "at least 10"),
        ({"orders": 10**9}, "beyond"),
        ({"spike": 0.5}, "spike"),
        ({"what_if": "meteor"}, "Unknown what-if"),
    ],
)
def test_parameters_out_of_range_are_refused_with_a_sentence(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ParamsError) as refused:
        params_check(SimulationParams(**changes))
    assert words in str(refused.value)
    assert str(refused.value).endswith((".", "figure."))


def test_the_curve_holds_every_order_with_the_spike_at_the_sale_opening() -> None:
    hours = curve_hours(SimulationParams(hours=24))
    curve = order_curve(hours, orders=10_000, spike=50)
    assert sum(curve.values()) == 10_000
    peak = max(curve, key=lambda hour: curve[hour])
    assert peak.hour == 10
    others = [n for hour, n in curve.items() if hour != peak]
    assert curve[peak] == pytest.approx(50 * sum(others) / len(others), rel=0.01)


def test_the_orders_drawn_are_a_function_of_the_seed() -> None:
    curve = order_curve(curve_hours(SimulationParams(hours=8)), orders=300, spike=50)

    def draw(seed: int) -> list[Any]:
        return orders_draw(
            curve=curve, seed=seed, campaign_skus=CAMPAIGN_CODES, other_skus=OTHER_CODES, ticket_share=0.1
        )

    first, again, other = draw(7), draw(7), draw(8)
    assert first == again
    assert first != other
    assert len({o.external_id for o in first}) == 300


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--seed", "-3"], "seed"),
        (["--hours", "30"], "duration"),
        (["--orders", "-1"], "negative"),
        (["--what-if", "staff-50"], "Unknown what-if"),
    ],
)
def test_the_command_refuses_bad_input_before_anything_runs(argv: list[str], words: str) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("simulate", "flash-sale", "--scratch", *argv)
    assert words in str(refused.value)
    assert not Merchant.objects.exists()


@pytest.mark.django_db
def test_the_command_refuses_a_database_that_holds_data() -> None:
    MerchantFactory(code="real-shop")
    with pytest.raises(CommandError) as refused:
        call_command("simulate", "flash-sale", "--orders", "50", "--hours", "4")
    assert "--scratch" in str(refused.value)
    assert "1 merchants" in str(refused.value)
    assert Merchant.objects.count() == 1


def _run(tmp: Path, name: str, *extra: str) -> tuple[dict[str, Any], str]:
    report, figures = tmp / f"{name}.html", tmp / f"{name}.json"
    call_command(
        "simulate",
        "flash-sale",
        "--scratch",
        "--seed=4242",
        "--orders=120",
        "--hours=8",
        f"--report={report}",
        f"--json={figures}",
        *extra,
    )
    return json.loads(figures.read_text()), report.read_text()


def _without_timings(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in ("wall_seconds", "cpu_seconds", "queries")}


@pytest.mark.slow
@pytest.mark.django_db
def test_a_small_day_loses_nothing_oversells_nothing_and_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    figures, page = _run(tmp_path, "first", f"--trace={tmp_path / 'first.trace.json'}")
    again, _page = _run(tmp_path, "again")

    assert _without_timings(figures) == _without_timings(again)
    integrity = figures["integrity"]
    assert figures["orders_in"] == 120
    assert integrity["orders_lost"] == integrity["orders_duplicated"] == integrity["orders_unexpected"] == 0
    assert integrity["shipped"] > 0
    assert integrity["shipped_without_pick"] == integrity["shipped_without_pack"] == 0
    assert figures["stock"] == {"oversold_units": 0, "negative_places": 0, "drift": 0}
    assert figures["promise"]["records"] == 120
    assert figures["promise"]["delivered_decided"] > 0
    assert sum(figures["orders_per_hour"].values()) == 120
    assert page.count("<svg") >= 3 and "<polyline" in page and "<rect" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # A normal day names no stage behind (and keeps its figures' shape: no what-if, no reference).
    assert figures["stage_behind"] == {"stage": "", "at": None, "orders": 0}

    # The same day with 30 % of the plan's people missing on the floor, against that normal day's trace.
    cut, cut_page = _run(tmp_path, "staff-30", "--what-if=staff-30", f"--baseline={tmp_path / 'first.trace.json'}")
    behind = cut["stage_behind"]
    assert behind["reference"] == "normal day"
    # Fewer packers than planned through the spike: its parcels pile up at the pack stations first.
    assert (behind["stage"], behind["at"], behind["why"]) == ("packing", "12:10", "plan")
    assert behind["behind_minutes"] > 30
    assert max(behind["late"], behind["later_promise"]) <= behind["orders"] <= behind["late"] + behind["later_promise"]
    assert behind["late_delivery"] == 0  # a floor what-if: its transit draws fall on other parcels, not counted
    assert cut["integrity"]["orders_lost"] == 0 and cut["stock"]["oversold_units"] == 0
    assert "Première étape à prendre du retard : <b>" in cut_page  # the site's language, French


def test_a_late_shipment_is_blamed_on_the_stage_it_was_in_at_its_cut_off() -> None:
    from datetime import UTC, datetime, timedelta

    from quai.campaigns.simulation.engine import OrderTrace
    from quai.campaigns.simulation.report import _ship_cause

    cut = datetime(2027, 3, 16, 14, tzinfo=UTC)
    before, after = cut - timedelta(minutes=30), cut + timedelta(minutes=30)

    def trace(**moments: Any) -> OrderTrace:
        return OrderTrace(
            pk=1, external_id="X", service="s", lines=1, units=1, received_at=before, ship_by=cut, **moments
        )

    assert _ship_cause(trace(), after) == "release"
    assert _ship_cause(trace(), before) == "wave"
    assert _ship_cause(trace(waved_at=before), None) == "picking"
    assert _ship_cause(trace(waved_at=before, picked_at=before, packed_at=after), None) == "packing"
    assert _ship_cause(trace(waved_at=before, picked_at=before, packed_at=before), None) == "truck"


def _figures_of_a_day() -> dict[str, Any]:
    """The figures ``run_figures`` returns for a small day, written out: the report is a function of them alone."""
    series = [
        {"at": f"{h:02d}:00", "received": 0, "released": 10 * h, "picking": 5, "packed": 3, "shipped": 40 * h}
        for h in range(8, 12)
    ]
    return {
        "seed": 7,
        "what_if": "staff-30",
        "orders_planned": 1500,
        "orders_in": 1500,
        "orders_refused": {},
        "spike": 50.0,
        "hours": 24,
        "day": "2027-03-16",
        "orders_per_hour": {"08:00": 1200, "09:00": 300},
        "stages_end": {"received": 0, "released": 2, "picking": 1, "packed": 0, "shipped": 1497},
        "series": series,
        "promise": {
            "records": 1500,
            "ship_today": 1250,
            "ship_later": 250,
            "shipped_on_time": 1240,
            "shipped_early": 12,
            "shipped_on_time_rate": 0.992,
            "late_causes": {"packing": 10},
            "late_orders": [{"order_id": 5, "external_id": "FS7-000005", "ship_by": None, "cause": "packing"}],
            "delivered_decided": 1000,
            "delivered_kept": 981,
            "delivered_rate": 0.981,
            "broken_causes": {"carrier_late": 19},
            "pending": 500,
        },
        "stage_behind": {"stage": "packing", "at": "12:30", "orders": 10},
        "stock": {"oversold_units": 0, "negative_places": 0, "drift": 0},
        "integrity": {"orders_lost": 0, "orders_duplicated": 0, "shipped": 1497},
        "utilisation": [
            {"activity": "pick", "zone": "all", "hours_available": 80.0, "hours_worked": 60.5, "utilisation": 0.756}
        ],
        "tickets": {
            "opened": 30,
            "answered": 30,
            "answered_by_agents": 12,
            "escalated": 1,
            "first_response_met": 29,
            "first_response_rate": 29 / 30,
            "peak_agents": 3,
        },
        "manifests": [{"service": "colissimo-home", "at": "17:00", "parcels": 1234, "missing": 0}],
        "transit_days": {},
        "wall_seconds": {"total": 12.0},
        "queries": {},
    }


def test_the_report_reads_in_french_with_french_numbers_and_in_english() -> None:
    from django.utils import translation

    from quai.campaigns.simulation.report import report_html, report_text

    figures = _figures_of_a_day()
    with translation.override("fr"):
        page, summary = report_html(None, figures), report_text(figures)  # type: ignore[arg-type]
    assert '<html lang="fr">' in page
    assert "Journée de vente flash" in page and "Expédiées à temps" in page and "Camions" in page
    assert "99,20\u202f%" in page  # a French decimal comma and a narrow space before the sign
    assert "1\u202f234" in page or "1\xa0234" in page  # thousands grouped the French way
    assert "Première étape à prendre du retard : <b>à l&#x27;emballage</b> à 12:30" in page
    assert "emballée après" not in page and "pas encore emballée" in page  # the cause in words
    assert "Shipped on time" not in page and "Orders per hour" not in page
    assert "expédiées à temps" in summary and "99,20\u202f%" in summary
    assert "première étape en retard" in summary

    with translation.override("en"):
        english = report_html(None, figures)  # type: ignore[arg-type]
    assert '<html lang="en">' in english
    assert "Shipped on time" in english and "99.20%" in english and "1,234" in english
    assert "First stage to fall behind: <b>packing</b> at 12:30" in english


def test_the_summary_names_the_causes_of_lateness_in_words_in_both_languages() -> None:
    # The summary printed "late deliveries by cause  carrier_late 19": the cause's key, in French too, where the
    # HTML report said "transport plus long que promis".
    from django.utils import translation

    from quai.campaigns.simulation.report import report_text

    figures = _figures_of_a_day()
    with translation.override("fr"):
        french = report_text(figures)
    assert "transport plus long que promis 19" in french and "pas encore emballée) 10" in french
    assert "carrier_late" not in french and "packing 10" not in french
    with translation.override("en"):
        english = report_text(figures)
    assert "carrier transit longer than promised 19" in english and "packing (picked, not yet packed) 10" in english


@pytest.mark.browser
def test_the_report_opened_on_a_phone_stays_within_the_screen(chromium: Any) -> None:
    # On a 360 px phone the page was 900 px wide (fixed-size charts, no viewport); the charts and tables now scroll
    # inside themselves and the page does not.
    from django.utils import translation

    from quai.campaigns.simulation.report import report_html

    with translation.override("fr"):
        page_html = report_html(None, _figures_of_a_day())  # type: ignore[arg-type]
    page = chromium.new_page(viewport={"width": 360, "height": 740})
    try:
        page.set_content(page_html)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert page.locator("svg.chart").count() == 3
    finally:
        page.close()
