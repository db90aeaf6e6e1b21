"""Automatic answers to "where is my order": the live status, promised date and tracking when the order is on time;
an agent takes the ticket when it is late or at risk (``quai.service.domain.wismo_decide`` decides)."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _

from quai.core import clock
from quai.service import domain, warehouse
from quai.service.models import ServiceSettings, Ticket
from quai.service.services.tickets import service_settings, ticket_note, ticket_reply
from quai.tenants.scope import Scope

TRACKING_SALT = "quai.service.tracking"


def tracking_token(order: Any) -> str:
    """The signed token of an order's tracking page (no expiry of its own: the page checks its age)."""
    return signing.dumps({"o": order.pk, "m": order.merchant_id}, salt=TRACKING_SALT, compress=True)


def tracking_path(order: Any) -> str:
    return reverse("tracking:signed", kwargs={"token": tracking_token(order)})


def tracking_url(order: Any) -> str:
    """The tracking page as a link that works outside Quai (mails, shop messages): ``QUAI_PUBLIC_URL`` + path."""
    return django_settings.QUAI_PUBLIC_URL.rstrip("/") + tracking_path(order)


def order_status_words(order: Any) -> str:
    """The order's status as a shopper understands it."""
    return {
        "received": _("received, being prepared"),
        "allocated": _("received, being prepared"),
        "backordered": _("waiting for an item to come back in stock"),
        "released": _("being prepared in the warehouse"),
        "picking": _("being prepared in the warehouse"),
        "packed": _("packed, about to leave the warehouse"),
        "partially_shipped": _("partly shipped"),
        "shipped": _("shipped"),
        "delivered": _("delivered"),
        "on_hold": _("on hold"),
        "cancelled": _("cancelled"),
    }.get(order.status, order.get_status_display())


def macro_values(
    *, ticket: Ticket | None, order: Any | None, parcels: list[warehouse.Parcel] | None = None
) -> dict[str, str]:
    """What the placeholders of answers and macros stand for, in the current language. ``parcels``: the order's
    parcels as ``warehouse.order_parcels`` read them in this transaction (the automatic answer has just read them),
    else read here."""
    values = {
        "customer_name": (ticket.requester_name if ticket else "") or "",
        "ticket": ticket.reference if ticket else "",
    }
    if order is not None:
        if parcels is None:
            parcels = warehouse.order_parcels(scope=Scope.merchant(order.merchant_id), order_id=order.pk)
        page = tracking_url(order)  # signed once for both placeholders (two signings could differ by a second)
        values.update(
            order_number=order.external_id,
            order_status=order_status_words(order),
            promised_date=formats.date_format(order.promised_to, "DATE_FORMAT") if order.promised_to else "",
            tracking_number=", ".join(p.tracking_number for p in parcels),
            tracking_link=", ".join(p.tracking_url for p in parcels if p.tracking_url) or page,
            tracking_page=page,
        )
    return values


def wismo_handle(*, ticket: Ticket, order: Any, settings: ServiceSettings | None = None) -> bool:
    """Answer a "where is my order" ticket at once if the order is on time (True), else mark it for an agent.
    ``settings``: the merchant's service settings when the caller (``ticket_open``) has read them already."""
    if settings is None:
        settings = service_settings(merchant_id=ticket.merchant_id)
    parcels = warehouse.order_parcels(scope=Scope.merchant(order.merchant_id), order_id=order.pk)
    last_event_at = max((p.last_event_at for p in parcels if p.last_event_at), default=None)
    decision = domain.wismo_decide(
        status=order.status,
        promised_to=order.promised_to,
        today=clock.today(settings.timezone),
        last_event_at=last_event_at,
        now=clock.now(),
    )
    with translation.override(ticket.language):
        if not decision.automatic:
            Ticket.objects.filter(pk=ticket.pk).update(escalation=decision.reason)
            ticket.escalation = decision.reason
            ticket_note(
                ticket=ticket,
                body=_("Not answered automatically: order %(order)s is %(status)s (%(reason)s).")
                % {"order": order.external_id, "status": order_status_words(order), "reason": decision.reason},
                actor="automatic answer",
            )
            return False
        values = macro_values(ticket=ticket, order=order, parcels=parcels)
        lines = [
            _("Hello,"),
            "",
            _("Your order %(order)s is %(status)s.")
            % {"order": values["order_number"], "status": values["order_status"]},
        ]
        if values.get("promised_date") and order.status != "delivered":
            lines.append(_("It is due to arrive by %(date)s.") % {"date": values["promised_date"]})
        if values.get("tracking_number"):
            lines.append(_("Tracking number: %(number)s") % {"number": values["tracking_number"]})
        lines.append(_("Follow it here: %(link)s") % {"link": values["tracking_link"]})
        lines += ["", _("Reply to this message if you need anything else."), "", settings.brand_name or ""]
        ticket_reply(
            ticket=ticket,
            body="\n".join(lines).strip(),
            actor="automatic answer",
            resolve=True,
            automatic=True,
            settings=settings,
        )
    Ticket.objects.filter(pk=ticket.pk).update(auto_answered=True)
    ticket.auto_answered = True
    return True
