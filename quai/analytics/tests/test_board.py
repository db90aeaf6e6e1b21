"""The supervisor's board on a small built scenario (``conftest.build``): figures, tenant scope, queries, screen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from conftest import merchant_api
from quai.analytics import selectors
from quai.analytics.tests.conftest import COLISSIMO, NOW, TUESDAY
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _by(rows, key="stage"):  # type: ignore[no-untyped-def]
    return {getattr(row, key): row for row in rows}


def test_the_figures_of_the_built_scenario(scenario):
    board = selectors.supervisor_board(scope=Scope.system("test"), site=scenario.floor.site)
    backlog = _by(board.backlog)
    # acme: 6 in, 4 released, 2 picking, 1 packed; lumen: 3 in.
    assert {stage: row.orders for stage, row in backlog.items()} == {
        "received": 5,
        "released": 2,
        "picking": 1,
        "packed": 1,
    }
    assert board.backlog_total == 9
    # The last hour (09:05–10:05): two orders started picking, one packed; nothing received.
    assert board.throughput == {
        "received": 0,
        "allocated": 0,
        "released": 0,
        "picking": 2,
        "packed": 1,
        "shipped": 0,
    }
    colissimo = next(c for c in board.cutoffs if c.service == "colissimo_home")
    assert colissimo.cutoff == COLISSIMO
    assert (colissimo.due, colissimo.packed, colissimo.shipped, colissimo.left) == (5, 1, 0, 4)
    # 4 left at 1 packed per hour: packed by 14:05, before 15:00.
    assert colissimo.verdict == "on_track" and colissimo.finish_at == NOW + timedelta(hours=4)
    assert [(c.service, c.verdict) for c in board.cutoffs] == [
        ("mondial_relay", "none"),
        ("colissimo_home", "on_track"),
        ("chronopost_13h", "none"),
    ]
    assert board.at_risk_count == 1 and board.at_risk[0].external_id == "A-3"
    pick = next(row for row in board.staffing or [] if row.activity == "pick")
    assert (pick.zone_code, pick.planned, pick.rostered, pick.active, pick.lines_last_hour) == ("PCK", 3, 2, 1, 6)
    # The curve: nothing at 08:00 (opening), 9 in by 09:00 (4 of them released), today's counts at 10:00 and now.
    by_hour = {point.at.hour: point for point in board.curve}
    assert by_hour[8].total == 0
    assert by_hour[9].stages == {"received": 5, "released": 4, "picking": 0, "packed": 0}
    assert board.curve[-1].stages == {"received": 5, "released": 2, "picking": 1, "packed": 1}
    assert board.curve[0].at == TUESDAY + timedelta(hours=8)  # the site opens at 08:00


def test_a_refresh_makes_a_bounded_number_of_queries(scenario, django_assert_max_num_queries):
    site = scenario.floor.site
    selectors.supervisor_board(scope=Scope.system("test"), site=site)  # the promise's configuration cached
    with django_assert_max_num_queries(16):
        selectors.supervisor_board(scope=Scope.system("test"), site=site)


def test_a_refresh_costs_the_same_with_ten_times_the_orders(scenario, django_assert_max_num_queries):
    from quai.analytics.tests.conftest import _order

    for n in range(30):
        _order(scenario.floor, scenario.floor.merchant, f"MORE-{n}")
    site = scenario.floor.site
    selectors.supervisor_board(scope=Scope.system("test"), site=site)
    with django_assert_max_num_queries(16):
        board = selectors.supervisor_board(scope=Scope.system("test"), site=site)
    assert _by(board.backlog)["received"].orders == 35


def test_the_api_gives_staff_everything_and_a_merchant_only_its_own_orders(scenario, staff_api, api):
    staff = staff_api.get("/api/v1/analytics/supervisor?site=LYS1")
    assert staff.status_code == 200, staff.json()
    body = staff.json()
    assert body["site_code"] == "LYS1" and body["merchant_id"] is None
    assert {row["stage"]: row["orders"] for row in body["backlog"]}["received"] == 5
    assert body["staffing"] and body["at_risk"][0]["external_id"] == "A-3"
    mine = api.get("/api/v1/analytics/supervisor?site=LYS1").json()  # acme's key
    assert mine["merchant_id"] == scenario.floor.merchant.pk
    assert {row["stage"]: row["orders"] for row in mine["backlog"]} == {
        "received": 2,
        "released": 2,
        "picking": 1,
        "packed": 1,
    }
    assert mine["staffing"] is None
    assert next(c for c in mine["cutoffs"] if c["service"] == "colissimo_home")["due"] == 4
    lumen = merchant_api(scenario.other).get("/api/v1/analytics/supervisor?site=LYS1").json()
    assert {row["stage"]: row["orders"] for row in lumen["backlog"]}["received"] == 3
    assert lumen["at_risk"] == [] and lumen["at_risk_count"] == 0
    assert lumen["throughput"]["picking"] == 0
    assert sum(point["total"] for point in lumen["curve"][-1:]) == 3
    # Naming another merchant is answered as if it did not exist; an unknown site is site_not_found.
    refused = api.get(f"/api/v1/analytics/supervisor?site=LYS1&merchant_id={scenario.other.pk}")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "merchant_not_found"
    missing = staff_api.get("/api/v1/analytics/supervisor?site=NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "site_not_found"


def test_the_screen_renders_and_its_panel_refreshes(scenario, supervisor):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(supervisor)
    page = client.get("/ops/supervisor/?site=LYS1")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'hx-trigger="every 10s"' in html and "<svg" in html and "<polygon" in html
    assert "Colissimo domicile" in html and "15:00" in html and "On track" in html
    assert f"/admin/orders/order/{scenario.orders['A3'].pk}/change/" in html
    panel = client.get("/ops/supervisor/panel/?site=LYS1")
    assert panel.status_code == 200 and "<html" not in panel.content.decode()
    assert 'id="board"' in panel.content.decode()
    french = Client(HTTP_ACCEPT_LANGUAGE="fr")
    french.force_login(supervisor)
    assert "Départs du jour" in french.get("/ops/supervisor/?site=LYS1").content.decode()


def test_only_supervisors_open_the_screen(scenario):
    from quai.tenants.tests.factories import StaffUserFactory

    picker = Client()
    picker.force_login(StaffUserFactory(username="picker"))
    assert picker.get("/ops/supervisor/").status_code == 403
    assert picker.get("/ops/supervisor/panel/").status_code == 403
    assert Client().get("/ops/supervisor/").status_code == 302  # to the sign-in page


def test_the_menu_opens_the_board_with_the_s_key(supervisor):
    client = Client()
    client.force_login(supervisor)
    screens = client.get("/ops/").context["screens"]
    assert {"url": "/ops/supervisor/", "key": "s"}.items() <= next(
        s for s in screens if s["url"] == "/ops/supervisor/"
    ).items()
