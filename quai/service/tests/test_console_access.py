"""Who opens the agent console and the returns desk: warehouse staff with a role, never a merchant's user."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.service import services
from quai.tenants.tests.factories import MerchantUserFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def test_a_merchants_user_given_a_staff_role_never_sees_another_merchants_tickets(merchant, other_merchant):
    # The back office attaches any user to a merchant; made staff with the agent role too, that user read every
    # merchant's tickets on the console (its staff scope) while the API held the same session to its own merchant.
    theirs = services.ticket_open(
        merchant_id=other_merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Où est mon colis ?", subject="Other shop's ticket", email="a@b.fr"),
        auto_answer=False,
    )
    user: Any = StaffUserFactory(username="shop-agent")
    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    MerchantUserFactory(merchant=merchant, user=user)
    client = Client()
    client.force_login(user)
    for path in ("/ops/service/", f"/ops/service/tickets/{theirs.pk}/", "/ops/service/returns/"):
        answer = client.get(path)
        assert answer.status_code == 403 and b"Other shop" not in answer.content, path
    staff: Any = StaffUserFactory(username="agathe")
    staff.groups.add(Group.objects.get(name="agent"))
    client.force_login(staff)
    assert b"Other shop" in client.get("/ops/service/").content
