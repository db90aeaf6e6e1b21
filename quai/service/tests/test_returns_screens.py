"""The returns desk over HTTP (scan a parcel, scan units, grade with a photo, restock scan, parcel done; a wrong
scan refused in red) and the shopper's returns portal on the tracking page (window, quantities, rate limit)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from quai.core import clock
from quai.service import services
from quai.service.models import Refund, ReturnUnit, Rma, RmaStatus
from quai.service.services.wismo import tracking_path
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _staff(role: str) -> Client:
    user = StaffUserFactory(username=f"{role}-1")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def test_the_desk_receives_grades_and_restocks_a_parcel(merchant, place, shirt, desk):
    order = place("D-1", to_status="delivered")
    line = order.lines.get()
    rma = services.rma_open(
        scope=Scope.merchant(merchant),
        order_id=order.pk,
        actor="agent",
        lines=[{"line_id": line.pk, "quantity": 2}],
        reason="return",
    )
    client = _staff("receiver")
    page = client.get("/ops/service/returns/")
    assert page.status_code == 200 and "data-scan" in page.content.decode()
    opened = client.post("/ops/service/returns/scan/", {"code": order.external_id}, **HX)
    assert rma.reference in opened.content.decode()
    wrong = client.post("/ops/service/returns/scan/", {"code": "NOT-AN-ITEM"}, **HX).content.decode()
    assert 'data-result="error"' in wrong and not ReturnUnit.objects.exists()
    received = client.post("/ops/service/returns/scan/", {"code": shirt.code}, **HX).content.decode()
    assert 'data-result="ok"' in received and 'data-grade="A"' in received
    unit = ReturnUnit.objects.get()
    photo = SimpleUploadedFile("unit.jpg", b"\xff\xd8\xff\xe0jpeg", content_type="image/jpeg")
    graded = client.post(
        "/ops/service/returns/grade/", {"unit_id": unit.pk, "grade": "A", "note": "neuf", "photo": photo}, **HX
    ).content.decode()
    assert "A-01-01" in graded and f'data-restock="{unit.pk}"' in graded
    unit.refresh_from_db()
    assert unit.photo_type == "image/jpeg" and bytes(unit.photo).startswith(b"\xff\xd8")
    client.post("/ops/service/returns/scan/", {"code": shirt.code}, **HX)
    second = ReturnUnit.objects.exclude(pk=unit.pk).get()
    done = client.post("/ops/service/returns/grade/", {"unit_id": second.pk, "grade": "C"}, **HX).content.decode()
    assert 'data-result="ok"' in done and "QUA-01" in done
    assert Rma.objects.get(pk=rma.pk).status == RmaStatus.CLOSED and Refund.objects.filter(rma=rma).exists()
    restocked = client.post("/ops/service/returns/restock/", {"unit_id": unit.pk, "code": "A-01-01"}, **HX)
    assert 'data-result="ok"' in restocked.content.decode()
    assert ReturnUnit.objects.get(pk=unit.pk).state == "restocked"


def test_the_desk_is_for_warehouse_staff_only(merchant):
    assert _staff("picker").get("/ops/service/returns/").status_code == 403
    assert Client().get("/ops/service/returns/").status_code == 302


def test_the_portal_opens_a_return_with_its_label_asked(merchant, place):
    cache.clear()
    order = place("W-1", to_status="delivered")
    line = order.lines.get()
    path = tracking_path(order)
    page = Client().get(path).content.decode()
    assert 'id="returns"' in page and f'name="qty_{line.pk}"' in page
    answer = Client().post(path + "return/", {f"qty_{line.pk}": "1", "reason": "damaged", "kind": "refund"})
    rma = Rma.objects.get(order=order)
    assert answer.status_code == 302 and answer["Location"].endswith(f"?rma={rma.pk}#returns")
    assert (rma.status, rma.reason, rma.kind) == (RmaStatus.LABEL_REQUESTED, "damaged", "return")
    shown = Client().get(answer["Location"]).content.decode()
    assert rma.reference in shown
    nothing = Client().post(path + "return/", {"reason": "return"})
    assert nothing.status_code == 422 and Rma.objects.count() == 1


def test_the_portal_refuses_outside_the_window_and_before_shipping(merchant, place):
    cache.clear()
    early = place("W-2", to_status="packed")
    assert 'id="returns"' not in Client().get(tracking_path(early)).content.decode()
    order = place("W-3", to_status="delivered")
    line = order.lines.get()
    clock.advance(timedelta(days=40))
    try:
        page = Client().get(tracking_path(order)).content.decode()
        assert "return-submit" not in page
        late = Client().post(tracking_path(order) + "return/", {f"qty_{line.pk}": "1", "reason": "return"})
        assert late.status_code == 422 and not Rma.objects.filter(order=order).exists()
    finally:
        clock.advance(-timedelta(days=40))


def test_the_portal_is_rate_limited(merchant, place):
    cache.clear()
    order = place("W-4", to_status="delivered")
    path = tracking_path(order) + "return/"
    codes = [Client().post(path, {"reason": "return"}).status_code for _ in range(12)]
    assert codes[:10] == [422] * 10 and codes[-1] == 429
