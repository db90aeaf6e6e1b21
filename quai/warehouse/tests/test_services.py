"""Layout services on the database: rack bulk creation, the zone-closing rule, temporary zones, moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse import selectors, services
from quai.warehouse.domain import ZoneCloseBlocker
from quai.warehouse.models import Location, LocationStatus, Site, Zone, ZoneStatus
from quai.warehouse.site_map import site_map_svg
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site() -> Site:
    return services.site_create(code="lyon", name="Lyon Gerland")


@pytest.fixture
def storage(site: Site) -> Zone:
    return services.zone_create(site=site, code="STO", name="Réserve", kind="storage")


def _rack(site: Site, zone: Zone, **overrides: object) -> services.RackCreated:
    arguments: dict[str, object] = {
        "aisles": "A-F",
        "bays": "1-30",
        "levels": "1-4",
        "origin_x_m": 2,
        "origin_y_m": 4,
        "aisle_spacing_m": 3,
        "bay_width_m": "1.2",
        "max_volume_cm3": 120_000,
        "max_weight_g": 250_000,
    }
    arguments.update(overrides)
    return services.rack_bulk_create(site=site, zone=zone, **arguments)  # type: ignore[arg-type]


# --- Racks in bulk ---------------------------------------------------------------------------------------------


def test_a_rack_pattern_creates_every_location_with_its_address_capacity_and_sequence(site, storage):
    result = _rack(site, storage)

    assert result.count == 720
    assert (result.first_code, result.last_code) == (
        "A-01-01-01",
        "F-02-04-01",
    )  # F is walked down, ending at the front
    assert Location.objects.filter(site=site, zone=storage).count() == 720
    corner = Location.objects.get(site=site, code="B-02-03-01")
    assert (corner.aisle, corner.bay, corner.level, corner.position, corner.side) == ("B", 2, 3, 1, "right")
    assert (corner.x_m, corner.y_m) == (Decimal("7.00"), Decimal("4.60"))
    assert (corner.max_volume_cm3, corner.max_weight_g, corner.mixed_sku) == (120_000, 250_000, True)
    sequences = list(
        Location.objects.filter(site=site).order_by("pick_sequence").values_list("pick_sequence", flat=True)
    )
    assert sequences == list(range(1, 721))


def test_a_second_rack_continues_the_pick_sequence_after_the_first(site, storage):
    _rack(site, storage, aisles="A", bays=2, levels=1)
    result = _rack(site, storage, aisles="B", bays=2, levels=1)
    assert (result.first_sequence, result.last_sequence) == (3, 4)


def test_a_rack_that_clashes_with_one_existing_code_creates_nothing_and_names_the_clash(site, storage):
    services.location_create(site=site, zone=storage, code="C-10-02-01")
    services.location_create(site=site, zone=storage, code="A-01-01-01")

    with pytest.raises(Conflict) as excinfo:
        _rack(site, storage)

    assert excinfo.value.code == "duplicate_location_code"
    assert excinfo.value.details == {"codes": ["A-01-01-01", "C-10-02-01"], "count": 2}
    assert Location.objects.filter(site=site).count() == 2


def test_a_long_list_of_clashes_is_cut_but_counted(site, storage):
    _rack(site, storage, aisles="A", bays=30, levels=1)
    with pytest.raises(Conflict) as excinfo:
        _rack(site, storage, aisles="A-B", bays=30, levels=1)
    assert excinfo.value.details["count"] == 30
    assert len(excinfo.value.details["codes"]) == services.CLASH_LIST_LIMIT
    assert Location.objects.filter(site=site).count() == 30


def test_the_same_codes_on_another_site_are_no_clash(site, storage):
    other = services.site_create(code="lille", name="Lille")
    other_zone = services.zone_create(site=other, code="STO", name="Réserve", kind="storage")
    _rack(site, storage, aisles="A", bays=2, levels=1)
    assert _rack(other, other_zone, aisles="A", bays=2, levels=1).count == 2


def test_a_rack_goes_only_into_an_open_zone_of_its_own_site(site, storage):
    other_site_zone = ZoneFactory()
    with pytest.raises(ValidationFailed) as excinfo:
        _rack(site, other_site_zone)
    assert excinfo.value.code == "zone_site_mismatch"
    services.zone_close(zone=storage)
    with pytest.raises(Conflict) as excinfo:
        _rack(site, storage)
    assert excinfo.value.code == "zone_closed"
    assert not Location.objects.exists()


def test_a_malformed_rack_pattern_is_refused_with_its_code(site, storage):
    with pytest.raises(ValidationFailed) as excinfo:
        _rack(site, storage, aisles="F-A")
    assert excinfo.value.code == "invalid_rack_pattern"


def test_two_thousand_locations_are_created_in_a_few_bulk_queries(site, storage, django_assert_max_num_queries):
    # Speed belongs to bench/, not to a timed unit test: what a test can hold is that the rack is written in bulk,
    # a bounded number of statements whatever its size, not one INSERT per location.
    with django_assert_max_num_queries(60):
        result = _rack(site, storage, aisles="A-J", bays=50, levels=4)  # 2,000 locations
    assert result.count == 2000
    assert Location.objects.filter(site=site).count() == 2000


# --- Closing zones ---------------------------------------------------------------------------------------------


@pytest.fixture
def active_locations_check() -> Iterator[None]:
    """A real check, as inventory will register one: it counts rows that are really there (active locations)."""

    def check(zone: Zone) -> list[ZoneCloseBlocker]:
        count = Location.objects.filter(zone=zone, status=LocationStatus.ACTIVE).count()
        return [ZoneCloseBlocker(kind="active_locations", message="active locations", count=count)] if count else []

    services.register_zone_close_check("test.active_locations", check)
    yield
    services.unregister_zone_close_check("test.active_locations")


def test_a_zone_does_not_close_while_a_registered_check_finds_something(site, storage, active_locations_check):
    _rack(site, storage, aisles="A", bays=2, levels=2)

    with pytest.raises(Conflict) as excinfo:
        services.zone_close(zone=storage)

    assert excinfo.value.code == "zone_not_empty"
    assert excinfo.value.details["blockers"] == [
        {"kind": "active_locations", "message": "active locations", "count": 4}
    ]
    storage.refresh_from_db()
    assert (storage.status, storage.closed_at, storage.version) == (ZoneStatus.OPEN, None, 1)


def test_a_zone_closes_once_every_check_finds_nothing(site, storage, active_locations_check, staff_user):
    _rack(site, storage, aisles="A", bays=2, levels=1)
    for location in Location.objects.filter(zone=storage):
        services.location_block(location=location, reason="emptied")
    moment = datetime(2026, 12, 24, 18, 30, tzinfo=UTC)
    clock.set_now(moment)

    closed = services.zone_close(zone=storage, actor=staff_user)

    closed.refresh_from_db()
    assert (closed.status, closed.closed_at, closed.closed_by, closed.version) == (
        ZoneStatus.CLOSED,
        moment,
        staff_user,
        2,
    )


def test_every_registered_check_is_asked_and_every_blocker_reported(site, storage, active_locations_check):
    LocationFactory(zone=storage)
    services.register_zone_close_check(
        "test.tasks", lambda zone: [ZoneCloseBlocker(kind="open_tasks", message="open pick tasks", count=3)]
    )
    try:
        with pytest.raises(Conflict) as excinfo:
            services.zone_close(zone=storage)
    finally:
        services.unregister_zone_close_check("test.tasks")
    assert [b["kind"] for b in excinfo.value.details["blockers"]] == ["active_locations", "open_tasks"]
    assert "open pick tasks (3)" in excinfo.value.message


def test_the_warehouse_itself_registers_no_stock_check(site, storage):
    LocationFactory(zone=storage)
    assert services.zone_close_blockers(zone=storage) == []
    assert services.zone_close(zone=storage).status == ZoneStatus.CLOSED


def test_a_closed_zone_opens_again_and_takes_locations(site, storage):
    services.zone_close(zone=storage)
    opened = services.zone_open(zone=storage)
    assert (opened.status, opened.closed_at) == (ZoneStatus.OPEN, None)
    assert services.location_create(site=site, zone=opened, code="A-01-01-01").zone_id == storage.pk


# --- Zones: kinds, windows, versions ---------------------------------------------------------------------------


def test_an_unknown_zone_kind_is_refused_and_nothing_is_written(site):
    with pytest.raises(ValidationFailed) as excinfo:
        services.zone_create(site=site, code="X", name="X", kind="freezer")
    assert excinfo.value.code == "unknown_zone_kind"
    assert "storage" in excinfo.value.details["allowed"]
    assert not Zone.objects.exists()


def test_a_window_that_ends_before_it_starts_is_refused(site):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as excinfo:
        services.zone_create(
            site=site, code="VE", name="Vente", kind="picking", valid_from=start, valid_until=start - timedelta(hours=1)
        )
    assert excinfo.value.code == "invalid_validity_window"
    assert not Zone.objects.exists()


def test_a_duplicate_zone_code_in_the_same_site_is_a_conflict(site, storage):
    with pytest.raises(Conflict) as excinfo:
        services.zone_create(site=site, code="sto", name="again", kind="storage")
    assert excinfo.value.code == "duplicate_zone_code"


def test_a_temporary_zone_is_active_only_inside_its_window(site, storage):
    start, end = datetime(2026, 11, 27, 6, tzinfo=UTC), datetime(2026, 11, 30, 22, tzinfo=UTC)
    flash = services.zone_create(
        site=site, code="BF", name="Black Friday", kind="picking", valid_from=start, valid_until=end
    )

    def active_now() -> set[str]:
        return set(Zone.objects.filter(selectors.zone_active_q(clock.now())).values_list("code", flat=True))

    clock.set_now(start - timedelta(minutes=1))
    assert active_now() == {"STO"}
    clock.advance(timedelta(minutes=1))
    assert active_now() == {"STO", "BF"}
    clock.set_now(end - timedelta(seconds=1))
    assert active_now() == {"STO", "BF"}
    clock.advance(timedelta(seconds=1))
    assert active_now() == {"STO"}
    # Through a relation, as inventory filters locations in active zones.
    location = LocationFactory(zone=flash)
    clock.set_now(start + timedelta(days=1))
    in_active = Location.objects.filter(selectors.zone_active_q(clock.now(), prefix="zone__"))
    assert location in in_active
    services.zone_close(zone=flash)
    assert location not in Location.objects.filter(selectors.zone_active_q(clock.now(), prefix="zone__"))


def test_zone_list_filters_by_kind_status_merchant_and_active_time(site, storage):
    merchant = MerchantFactory()
    owned = services.zone_create(site=site, code="M1", name="Dédiée", kind="picking", merchant=merchant)
    later = services.zone_create(
        site=site, code="LATER", name="Later", kind="picking", valid_from=datetime(2030, 1, 1, tzinfo=UTC)
    )
    services.zone_close(zone=owned)
    assert list(selectors.zone_list(site_id=site.pk, kind="picking")) == [later, owned]
    assert list(selectors.zone_list(status="closed")) == [owned]
    assert list(selectors.zone_list(merchant_id=merchant.pk)) == [owned]
    assert list(selectors.zone_list(shared=True)) == [later, storage]
    assert list(selectors.zone_list(active_at=datetime(2026, 12, 1, tzinfo=UTC))) == [storage]


def test_a_zone_edit_on_a_stale_version_is_refused(site, storage):
    merchant = MerchantFactory()
    services.zone_update(zone=storage, version=1, name="Réserve haute", merchant=merchant)
    with pytest.raises(Conflict) as excinfo:
        services.zone_update(zone=storage, version=1, name="Écrasé")
    assert excinfo.value.code == "stale_version"
    storage.refresh_from_db()
    assert (storage.name, storage.merchant, storage.version) == ("Réserve haute", merchant, 2)


def test_re_windowing_a_zone_checks_the_whole_window(site):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    zone = services.zone_create(site=site, code="VE", name="Vente", kind="picking", valid_from=start)
    with pytest.raises(ValidationFailed):
        services.zone_update(zone=zone, version=1, valid_until=start - timedelta(days=1))
    updated = services.zone_update(zone=zone, version=1, valid_until=start + timedelta(days=3))
    assert updated.valid_until == start + timedelta(days=3)


# --- Locations -------------------------------------------------------------------------------------------------


def test_a_duplicate_location_code_is_a_conflict_and_writes_nothing(site, storage):
    services.location_create(site=site, zone=storage, code="A-01-01-01")
    with pytest.raises(Conflict) as excinfo:
        services.location_create(site=site, zone=storage, code=" a-01-01-01 ")
    assert excinfo.value.code == "duplicate_location_code"
    assert excinfo.value.details["codes"] == ["A-01-01-01"]
    assert Location.objects.count() == 1


def test_a_rack_shaped_code_fills_its_own_address_and_side(site, storage):
    location = services.location_create(site=site, zone=storage, code="C-07-02-01", x_m="12.5", y_m=3)
    assert (location.aisle, location.bay, location.level, location.position, location.side) == ("C", 7, 2, 1, "left")
    dock = services.location_create(site=site, zone=storage, code="DOCK-1")
    assert (dock.aisle, dock.bay, dock.pick_sequence) == ("", None, 2)


def test_location_get_by_code_reads_what_a_scanner_typed(site, storage):
    location = services.location_create(site=site, zone=storage, code="A-01-01-01")
    assert selectors.location_get_by_code(site=site, code=" a-01-01-01") == location
    with pytest.raises(NotFound) as excinfo:
        selectors.location_get_by_code(site=site, code="Z-99-99-99")
    assert excinfo.value.code == "location_not_found"


def test_locations_move_between_zones_of_the_same_site_and_the_move_is_counted(site, storage):
    picking = services.zone_create(site=site, code="PICK", name="Picking", kind="picking")
    _rack(site, storage, aisles="A", bays=2, levels=2)
    ids = list(Location.objects.filter(site=site).values_list("pk", flat=True))
    services.locations_move_to_zone(zone=picking, location_ids=ids[:1])

    result = services.locations_move_to_zone(zone=picking, location_ids=ids)

    assert (result.moved, result.already_there) == (3, 1)
    assert Location.objects.filter(zone=picking).count() == 4


def test_locations_do_not_move_to_another_site_or_a_closed_zone(site, storage):
    location = LocationFactory(zone=storage)
    elsewhere = ZoneFactory(site=SiteFactory())
    with pytest.raises(ValidationFailed) as excinfo:
        services.locations_move_to_zone(zone=elsewhere, location_ids=[location.pk])
    assert excinfo.value.code == "location_site_mismatch"
    closed = services.zone_close(zone=services.zone_create(site=site, code="OLD", name="Old", kind="returns"))
    with pytest.raises(Conflict) as excinfo:
        services.locations_move_to_zone(zone=closed, location_ids=[location.pk])
    assert excinfo.value.code == "zone_closed"
    with pytest.raises(NotFound):
        services.locations_move_to_zone(zone=storage, location_ids=[location.pk, 987654])
    location.refresh_from_db()
    assert location.zone_id == storage.pk


def test_a_location_is_blocked_with_a_reason_and_unblocked(site, storage):
    location = LocationFactory(zone=storage)
    blocked = services.location_block(location=location, reason="rack damaged")
    assert (blocked.status, blocked.blocked_reason) == (LocationStatus.BLOCKED, "rack damaged")
    unblocked = services.location_unblock(location=location)
    assert (unblocked.status, unblocked.blocked_reason) == (LocationStatus.ACTIVE, "")


def test_a_site_refuses_an_unknown_time_zone_and_closing_before_opening(site):
    with pytest.raises(ValidationFailed) as excinfo:
        services.site_create(code="x", name="X", time_zone="Europe/Atlantis")
    assert excinfo.value.code == "invalid_time_zone"
    with pytest.raises(ValidationFailed) as excinfo:
        services.site_update(site=site, opens_at=datetime(2026, 1, 1, 19).time())
    assert excinfo.value.code == "invalid_opening_hours"
    updated = services.site_update(site=site, opening_days=[6, 1, 2], city="Lyon")
    assert (updated.opening_days, updated.city) == ([1, 2, 6], "Lyon")
    with pytest.raises(Conflict):
        services.site_create(code="lyon", name="Again")


def test_the_site_map_shows_every_zone_and_slot(site, storage, active_locations_check):
    _rack(site, storage, aisles="A-B", bays=4, levels=2)
    services.location_block(location=Location.objects.get(code="A-01-01-01"))
    svg = site_map_svg(site=site)
    assert svg.count('class="slot') == 8
    assert svg.count('class="slot blocked"') == 1
    assert "Lyon Gerland" in svg


# --- Zone-change listeners -------------------------------------------------------------------------------------


@pytest.fixture
def heard() -> Iterator[list[tuple[str, int]]]:
    calls: list[tuple[str, int]] = []
    services.register_zone_change_listener("test.recorder", lambda zone: calls.append((zone.code, zone.version)))
    yield calls
    services.unregister_zone_change_listener("test.recorder")


def test_a_listener_hears_a_zone_re_windowed_and_opened_again(site, storage, heard):
    services.zone_update(zone=storage, version=1, valid_until=datetime(2031, 1, 1, tzinfo=UTC))
    LocationFactory(zone=storage)
    services.zone_close(zone=storage)
    services.zone_open(zone=storage)
    services.zone_open(zone=storage)  # already open: nothing changed, nothing told
    assert heard == [("STO", 2), ("STO", 4)]


def test_a_listener_hears_both_zones_when_locations_move_between_them(site, storage, heard):
    picking = services.zone_create(site=site, code="PCK", name="Picking", kind="picking")
    location = LocationFactory(zone=storage, site=site)
    services.locations_move_to_zone(zone=picking, location_ids=[location.pk])
    services.locations_move_to_zone(zone=picking, location_ids=[location.pk])  # already there: nothing told
    assert [code for code, _version in heard] == ["STO", "PCK"]


def test_a_failing_listener_undoes_the_zone_change(site, storage):
    def refuse(zone: Zone) -> None:
        raise Conflict("no", code="listener_refused")

    services.register_zone_change_listener("test.refuse", refuse)
    try:
        with pytest.raises(Conflict):
            services.zone_update(zone=storage, version=1, name="Renamed")
    finally:
        services.unregister_zone_change_listener("test.refuse")
    storage.refresh_from_db()
    assert (storage.name, storage.version) == ("Réserve", 1)
