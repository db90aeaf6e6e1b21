from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from quai.tenants.models import StaffRole
from quai.tenants.services import staff_roles_sync

pytestmark = pytest.mark.django_db


def _perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_staff_role_exists_as_a_group_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= set(StaffRole.values)


def test_a_receiver_handles_asns_but_cannot_touch_merchants_or_the_layout():
    receiver = _perms(StaffRole.RECEIVER)
    assert "inbound.add_asn" in receiver
    assert "catalog.view_sku" in receiver
    assert "tenants.change_merchant" not in receiver
    assert "warehouse.change_zone" not in receiver


def test_the_admin_role_carries_every_permission_and_a_supervisor_can_reshape_zones():
    assert "tenants.change_apikey" in _perms(StaffRole.ADMIN)
    assert "warehouse.change_zone" in _perms(StaffRole.SUPERVISOR)
    assert "tenants.change_merchant" not in _perms(StaffRole.SUPERVISOR)


def test_syncing_the_roles_twice_changes_nothing():
    before = {role: _perms(role) for role in StaffRole.values}
    staff_roles_sync()
    assert {role: _perms(role) for role in StaffRole.values} == before


def test_a_supervisor_plans_staff_and_reads_the_event_sales_in_the_back_office(client):
    # The supervisor's role carried no labour nor campaign permission: the back office showed them neither the
    # shifts and staffing plans nor the event sales that the README promises them.
    from quai.tenants.tests.factories import StaffUserFactory

    supervisor = _perms(StaffRole.SUPERVISOR)
    assert {"labor.add_shift", "labor.view_staffingplan", "labor.change_standard"} <= supervisor
    assert "campaigns.view_campaign" in supervisor and "campaigns.change_campaign" not in supervisor
    user = StaffUserFactory(username="nora")
    user.groups.add(Group.objects.get(name=StaffRole.SUPERVISOR))
    client.force_login(user)
    for page in ("/admin/labor/shift/", "/admin/labor/staffingplan/", "/admin/campaigns/campaign/"):
        assert client.get(page).status_code == 200, page
