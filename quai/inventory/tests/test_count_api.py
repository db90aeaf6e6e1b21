"""Cycle counts, moves and adjustments over the API (staff only), and count approval in the back office."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.inventory import selectors, services
from quai.inventory.models import CountTask, CountTaskStatus, MovementKind, StockMovement, StockQuantity
from quai.inventory.tests.factories import LocationFactory, stocked_sku
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


def _on_hand(sku, location) -> int:
    return sum(StockQuantity.objects.filter(sku=sku, location=location).values_list("on_hand", flat=True))


def test_staff_count_a_location_through_the_api_and_a_supervisor_approves(staff_api, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    created = staff_api.post("inventory/count-tasks", {"location_id": location.pk})
    assert created.status_code == 201, created.content
    task_id = created.json()[0]["id"]
    assert created.json()[0]["blind"] is True

    line = staff_api.post(f"inventory/count-tasks/{task_id}/lines", {"sku_id": sku.pk, "counted_quantity": 3})
    assert line.status_code == 200, line.content
    assert line.json()["expected_quantity"] is None, "nothing of the books is shown before submission"

    submitted = staff_api.post(f"inventory/count-tasks/{task_id}/submit").json()
    assert (submitted["status"], submitted["review_reasons"]) == ("submitted", ["variance_above_threshold"])
    assert submitted["lines"][0]["variance"] == -7

    listed = staff_api.get("inventory/count-tasks", status="submitted").json()
    assert [item["id"] for item in listed["items"]] == [task_id]

    approved = staff_api.post(f"inventory/count-tasks/{task_id}/approve", {"note": "checked"})
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "applied"
    assert _on_hand(sku, location) == 3
    assert staff_api.get(f"inventory/count-tasks/{task_id}").json()["applied_at"] is not None


def test_a_rejected_count_goes_back_to_counting_through_the_api(staff_api, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task_id = staff_api.post("inventory/count-tasks", {"sku_id": sku.pk}).json()[0]["id"]
    staff_api.post(f"inventory/count-tasks/{task_id}/lines", {"sku_id": sku.pk, "counted_quantity": 0})
    staff_api.post(f"inventory/count-tasks/{task_id}/submit")
    rejected = staff_api.post(f"inventory/count-tasks/{task_id}/reject", {"note": "recount"}).json()
    assert (rejected["status"], rejected["lines"]) == ("rejected", [])
    assert _on_hand(sku, location) == 10


def test_api_refusals_come_with_their_code_and_write_nothing(staff_api, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    before = StockMovement.objects.count()
    assert staff_api.post("inventory/count-tasks", {}).json()["error"]["code"] == "count_scope_required"
    task_id = staff_api.post("inventory/count-tasks", {"location_id": location.pk}).json()[0]["id"]
    again = staff_api.post("inventory/count-tasks", {"location_id": location.pk})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "count_already_open")
    approve = staff_api.post(f"inventory/count-tasks/{task_id}/approve", {})
    assert (approve.status_code, approve.json()["error"]["code"]) == (409, "invalid_transition")
    missing = staff_api.get("inventory/count-tasks/999999")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "count_task_not_found")
    bad = staff_api.post(f"inventory/count-tasks/{task_id}/lines", {"sku_id": sku.pk, "counted_quantity": -2})
    assert bad.status_code == 422
    assert StockMovement.objects.count() == before
    assert selectors.stock_drift() == []


def test_a_merchant_key_cannot_reach_counts_moves_or_adjustments(api, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    task = services.count_task_create(location=location)[0]
    for method, path, body in [
        ("get", "inventory/count-tasks", None),
        ("get", f"inventory/count-tasks/{task.pk}", None),
        ("post", "inventory/count-tasks", {"location_id": location.pk}),
        ("post", f"inventory/count-tasks/{task.pk}/submit", None),
        (
            "post",
            "inventory/adjustments",
            {"sku_id": sku.pk, "location_id": location.pk, "quantity_delta": 1, "reason": "x"},
        ),
    ]:
        response = api.get(path) if method == "get" else api.post(path, body)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "staff_only"), path
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.OPEN


def test_staff_move_and_adjust_stock_through_the_api(staff_api, merchant):
    sku, source = stocked_sku(merchant=merchant, quantity=6)
    target = LocationFactory(zone=source.zone, site=source.site)
    moved = staff_api.post(
        "inventory/moves",
        {"sku_id": sku.pk, "from_location_id": source.pk, "to_location_id": target.pk, "quantity": 4},
    )
    assert moved.status_code == 201, moved.content
    assert (moved.json()["kind"], moved.json()["quantity"]) == ("move", 4)
    adjusted = staff_api.post(
        "inventory/adjustments",
        {"sku_id": sku.pk, "location_id": target.pk, "quantity_delta": -1, "reason": "broken in handling"},
    )
    assert adjusted.status_code == 201, adjusted.content
    assert adjusted.json()["reason"] == "broken in handling"
    assert (_on_hand(sku, source), _on_hand(sku, target)) == (2, 3)
    assert StockMovement.objects.filter(kind=MovementKind.ADJUSTMENT).count() == 1


def test_bad_moves_and_adjustments_are_refused_with_a_code_and_the_ledger_unchanged(staff_api, merchant):
    sku, source = stocked_sku(merchant=merchant, quantity=2)
    target = LocationFactory(zone=source.zone, site=source.site)
    before = (StockMovement.objects.count(), list(StockQuantity.objects.values_list("pk", "on_hand")))
    cases = [
        (
            "inventory/moves",
            {"sku_id": sku.pk, "from_location_id": source.pk, "to_location_id": target.pk, "quantity": 3},
            409,
            "insufficient_stock",
        ),
        (
            "inventory/moves",
            {"sku_id": sku.pk, "from_location_id": source.pk, "to_location_id": source.pk, "quantity": 1},
            422,
            "same_place",
        ),
        (
            "inventory/moves",
            {"sku_id": 999999, "from_location_id": source.pk, "to_location_id": target.pk, "quantity": 1},
            404,
            "sku_not_found",
        ),
        (
            "inventory/adjustments",
            {"sku_id": sku.pk, "location_id": source.pk, "quantity_delta": -1, "reason": "  "},
            422,
            "reason_required",
        ),
        (
            "inventory/adjustments",
            {"sku_id": sku.pk, "location_id": source.pk, "quantity_delta": 0, "reason": "x"},
            422,
            "invalid_quantity",
        ),
        (
            "inventory/adjustments",
            {"sku_id": sku.pk, "location_id": 999999, "quantity_delta": 1, "reason": "x"},
            404,
            "location_not_found",
        ),
    ]
    for path, body, status, code in cases:
        response = staff_api.post(path, body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.content)
    missing_reason = staff_api.post(
        "inventory/adjustments", {"sku_id": sku.pk, "location_id": source.pk, "quantity_delta": 1}
    )
    assert missing_reason.status_code == 422
    assert (StockMovement.objects.count(), list(StockQuantity.objects.values_list("pk", "on_hand"))) == before


# --- Back office ---------------------------------------------------------------------------------------------------


def _waiting_count(merchant, *, counted: int):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=counted)
    return services.count_submit(task=task), sku, location


def test_a_supervisor_approves_a_count_in_the_back_office(admin_client, merchant):
    task, sku, location = _waiting_count(merchant, counted=2)
    page = admin_client.get(f"/admin/inventory/counttask/{task.pk}/change/", headers={"accept-language": "en"})
    assert page.status_code == 200 and b"variance" in page.content.lower()
    response = admin_client.post(
        "/admin/inventory/counttask/",
        {"action": "approve", "_selected_action": [task.pk]},
        headers={"accept-language": "en"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"1 count(s) approved and applied." in response.content
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.APPLIED
    assert _on_hand(sku, location) == 2


def test_a_refused_approval_shows_its_reason_in_the_back_office_and_changes_nothing(merchant):
    task, sku, location = _waiting_count(merchant, counted=2)
    services.stock_receive(sku=sku, location=location, quantity=1, reason="late putaway")
    staff = StaffUserFactory(is_superuser=True)
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/inventory/counttask/",
        {"action": "approve", "_selected_action": [task.pk]},
        headers={"accept-language": "en"},
        follow=True,
    )
    assert b"count_stale" in response.content
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.SUBMITTED
    assert _on_hand(sku, location) == 11


def test_a_staff_member_who_is_not_a_supervisor_cannot_approve_in_the_back_office(merchant):
    task, _sku, _location = _waiting_count(merchant, counted=2)
    staff = StaffUserFactory()
    staff.groups.add(Group.objects.get_or_create(name="picker")[0])
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_counttask"))
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/inventory/counttask/",
        {"action": "reject", "_selected_action": [task.pk]},
        headers={"accept-language": "en"},
        follow=True,
    )
    assert b"supervisor_only" in response.content
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.SUBMITTED
