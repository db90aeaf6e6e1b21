"""The operator screens' front door: sign-in and the menu of screens (each screen lives in its own app)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Screen:
    url_name: str
    title: str | Promise
    hint: str | Promise
    key: str  # keyboard shortcut on the menu


SCREENS = [
    Screen("inbound:receiving_home", _("Receiving"), _("Scan an ASN or an SSCC, then every item"), "1"),
    Screen("inbound:putaway_home", _("Putaway"), _("Scan the item, then the location"), "2"),
    Screen("inventory_ops:move_home", _("Move stock"), _("Scan from, item, quantity, to"), "3"),
    Screen("inventory_ops:count_home", _("Cycle count"), _("Count a location blind"), "4"),
    Screen("fulfillment_ops:pick_home", _("Picking"), _("Take a batch, scan location, item and tote"), "5"),
    Screen("packing_ops:pack_home", _("Pack station"), _("Scan a tote or an order, then every unit"), "6"),
    Screen("packing_ops:truck_home", _("Truck loading"), _("Scan each parcel onto the carrier's truck"), "7"),
    Screen("service_ops:returns_desk", _("Returns desk"), _("Scan the return, grade every unit"), "8"),
    Screen("service_ops:queue", _("Customer service"), _("Tickets by SLA, the order's whole story"), "9"),
    Screen("promise_ops:board", _("Delivery promise"), _("Kept rate, orders at risk"), "0"),
    Screen("analytics_ops:board", _("Supervisor"), _("Backlog, cut-offs, throughput, staff per zone"), "s"),
]


class OperatorLoginView(LoginView):
    template_name = "ops/login.html"
    redirect_authenticated_user = True


@login_required
def ops_home(request: HttpRequest) -> HttpResponse:
    screens = []
    for screen in SCREENS:
        try:
            url = reverse(screen.url_name)
        except NoReverseMatch:
            continue  # that app's screens are not installed in this deployment
        screens.append({"url": url, "title": screen.title, "hint": screen.hint, "key": screen.key})
    return render(request, "ops/home.html", {"screens": screens, "screen": "home"})
