"""Agent actions through the warehouse's own services; returns, exchanges, refunds, reships; and the API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.orders.models import Order
from quai.service import services
from quai.service.models import AgentAction, Rma, RmaStatus
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def test_a_hold_by_an_agent_is_the_orders_own_hold(merchant, place):
    order = place("H-1", to_status="picking")
    services.action_hold(scope=Scope.merchant(merchant), order_id=order.pk, actor="agent", note="shopper asked")
    order.refresh_from_db()
    assert (order.status, order.hold_reason, order.held_from) == ("on_hold", "customer_service", "picking")
    services.action_release_hold(scope=Scope.merchant(merchant), order_id=order.pk, actor="agent")
    order.refresh_from_db()
    assert order.status == "picking"
    assert list(AgentAction.objects.values_list("kind", "outcome")) == [("release_hold", "done"), ("hold", "done")]


def test_a_labelled_order_refuses_hold_cancel_and_address_with_the_reason_kept(merchant, place):
    order = place("H-2", to_status="packed")
    scope = Scope.merchant(merchant)
    for call in (
        lambda: services.action_hold(scope=scope, order_id=order.pk, actor="agent"),
        lambda: services.action_cancel(scope=scope, order_id=order.pk, actor="agent", reason="x"),
        lambda: services.action_address_change(
            scope=scope,
            order_id=order.pk,
            actor="agent",
            address={"line1": "1 rue X", "postcode": "69001", "city": "Lyon", "country": "FR"},
        ),
    ):
        with pytest.raises(Conflict) as refused:
            call()
        assert refused.value.code == "order_labelled"
    order.refresh_from_db()
    assert order.status == "packed" and order.city == "Paris"
    refusals = AgentAction.objects.filter(outcome="refused")
    assert refusals.count() == 3 and all(a.code == "order_labelled" and a.message for a in refusals)


def test_an_action_on_another_merchants_order_is_not_found(merchant, other_merchant, place):
    order = place("H-3")
    with pytest.raises(NotFound):
        services.action_cancel(scope=Scope.merchant(other_merchant), order_id=order.pk, actor="x", reason="x")
    order.refresh_from_db()
    assert order.status == "allocated"


def test_a_reship_is_a_new_free_order_through_intake_saying_why_and_who_pays(merchant, place):
    order = place("H-4", to_status="delivered")
    line = order.lines.get()
    created = services.action_reship(
        scope=Scope.merchant(merchant),
        order_id=order.pk,
        actor="agent",
        lines=[{"line_id": line.pk, "quantity": 1}],
        reason="arrived broken",
        paid_by="carrier",
    )
    assert created.external_id == "H-4-R1" and created.channel == "service"
    assert created.total == Decimal("0") and created.status == "allocated"
    assert "arrived broken" in created.notes and "carrier" in created.notes
    assert created.address_line1 == order.address_line1
    with pytest.raises(ValidationFailed):
        services.action_reship(
            scope=Scope.merchant(merchant),
            order_id=order.pk,
            actor="agent",
            lines=[{"line_id": line.pk, "quantity": 9}],
            reason="x",
            paid_by="carrier",
        )


def test_a_return_is_opened_on_a_shipped_order_with_its_label_requested(merchant, place):
    order = place("R-1", to_status="shipped")
    line = order.lines.get()
    rma = services.rma_open(
        scope=Scope.merchant(merchant),
        order_id=order.pk,
        actor="agent",
        lines=[{"line_id": line.pk, "quantity": 2}],
        reason="damaged",
    )
    assert rma.status == RmaStatus.LABEL_REQUESTED and rma.label_requested_at is not None
    assert OutboxEvent.objects.filter(name="service.rma_opened").count() == 1
    assert OutboxEvent.objects.filter(name="service.rma_status_changed", payload__to_status="label_requested").exists()
    with pytest.raises(ValidationFailed) as refused:
        services.rma_open(
            scope=Scope.merchant(merchant),
            order_id=order.pk,
            actor="agent",
            lines=[{"line_id": line.pk, "quantity": 1}],
            reason="damaged",
        )
    assert refused.value.code == "return_exceeds_quantity"


def test_a_return_on_an_order_still_in_the_warehouse_is_refused(merchant, place):
    order = place("R-2", to_status="picking")
    with pytest.raises(Conflict) as refused:
        services.rma_open(
            scope=Scope.merchant(merchant),
            order_id=order.pk,
            actor="agent",
            lines=[{"line_id": order.lines.get().pk, "quantity": 1}],
            reason="return",
        )
    assert refused.value.code == "order_not_shipped"
    assert not Rma.objects.exists()


def test_an_exchange_reserves_its_replacement_on_hold_until_the_return_is_received(merchant, place):
    order = place("X-1", to_status="delivered")
    rma = services.rma_open(
        scope=Scope.merchant(merchant),
        order_id=order.pk,
        actor="agent",
        lines=[{"line_id": order.lines.get().pk, "quantity": 1}],
        reason="wrong_item",
        kind="exchange",
    )
    replacement = Order.objects.get(pk=rma.replacement_order_id)
    assert replacement.status == "on_hold" and replacement.held_from == "allocated"
    services.rma_transition(rma=rma, to_status="in_transit")
    services.rma_transition(rma=rma, to_status="received", actor="returns desk")
    replacement.refresh_from_db()
    assert replacement.status == "allocated"


def test_a_refund_is_bounded_by_what_was_paid_less_earlier_refunds(merchant, place):
    order = place("F-1", to_status="delivered")  # 2 × 19.90 + 4.90 = 44.70
    scope = Scope.merchant(merchant)
    first = services.refund_issue(scope=scope, order_id=order.pk, actor="agent", amount="40.00", reason="damaged")
    assert first.state == "recorded" and first.amount == Decimal("40.00")
    with pytest.raises(ValidationFailed) as refused:
        services.refund_issue(scope=scope, order_id=order.pk, actor="agent", amount="4.71", reason="again")
    assert refused.value.code == "refund_exceeds_paid" and refused.value.details["left"] == "4.70"
    services.refund_issue(scope=scope, order_id=order.pk, actor="agent", amount="4.70", reason="shipping")
    assert OutboxEvent.objects.filter(name="service.refund_recorded").count() == 2


# --- API ----------------------------------------------------------------------------------------------------------


def test_the_api_opens_a_ticket_answers_it_and_notes_it(api, merchant, place):
    order = place("API-1", to_status="picking")
    created = api.post(
        "service/tickets", {"body": "Le colis API-1 est arrivé abîmé", "email": "camille@example.fr", "channel": "shop"}
    )
    assert created.status_code == 201, created.content
    ticket = created.json()
    assert ticket["order_ids"] == [order.pk] and ticket["category"] == "damaged" and ticket["channel"] == "shop"
    replied = api.post(f"service/tickets/{ticket['id']}/replies", {"body": "Nous renvoyons."})
    assert replied.json()["status"] == "pending"
    noted = api.post(f"service/tickets/{ticket['id']}/notes", {"body": "carrier claim"})
    assert [m["kind"] for m in noted.json()["messages"]] == ["inbound", "outbound", "note"]
    listed = api.get("service/tickets", status="pending").json()
    assert listed["count"] == 1


def test_the_api_refuses_another_merchants_rows(api, other_api, place):
    order = place("API-2", to_status="delivered")
    ticket = api.post("service/tickets", {"body": "Question", "email": "camille@example.fr"}).json()
    assert other_api.get(f"service/tickets/{ticket['id']}").json()["error"]["code"] == "ticket_not_found"
    refused = other_api.post("service/refunds", {"order_id": order.pk, "amount": "1.00", "reason": "x"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "order_not_found"


def test_the_api_refuses_a_refund_larger_than_paid(api, place):
    order = place("API-3", to_status="delivered")
    answer = api.post("service/refunds", {"order_id": order.pk, "amount": "100.00", "reason": "too much"})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "refund_exceeds_paid"


def test_the_api_exports_and_erases_a_customer(api, merchant, place):
    place("API-4")
    from quai.core.outbox import outbox_relay

    outbox_relay()
    customers = api.get("service/customers").json()["items"]
    customer_id = customers[0]["id"]
    export = api.get(f"service/customers/{customer_id}/export").json()
    assert export["orders"][0]["external_id"] == "API-4"
    erased = api.post(f"service/customers/{customer_id}/erase").json()
    assert erased["email"] == "" and erased["erased_at"]


@pytest.mark.parametrize("status", ["allocated", "picking", "packed"])
def test_an_order_still_in_the_warehouse_is_not_reshipped(merchant, place, status):
    # The console reshipped an order that had not left (even a reship of a reship still allocated): a second free
    # order for items the shopper cannot have lost yet. Returns already refused it (order_not_shipped).
    order = place(f"H-NS-{status}", to_status=status)
    line = order.lines.get()
    with pytest.raises(Conflict) as refused:
        services.action_reship(
            scope=Scope.merchant(merchant),
            order_id=order.pk,
            actor="agent",
            lines=[{"line_id": line.pk, "quantity": 1}],
            reason="missing",
            paid_by="warehouse",
        )
    assert refused.value.code == "order_not_shipped"
    assert not Order.objects.filter(external_id__startswith=f"{order.external_id}-R").exists()
