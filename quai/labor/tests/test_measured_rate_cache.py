"""Labour's measured rate read through the process's cache of scans (``selectors.measured_rate``): for any window,
the very figure ``domain.measured_rate`` gives over the entries read from the database at that moment, after
entries are added at the end, backdated into the past, deleted, or the table emptied and filled again (once its
check of the entries seen is due); and a warm read costs two small queries, one between checks, not a read of every
scan."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.test.utils import CaptureQueriesContext

from quai.labor import domain, selectors
from quai.labor.models import ProductivityEntry
from quai.tenants.tests.factories import StaffUserFactory
from quai.warehouse.tests.factories import SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db
NINE = datetime(2030, 1, 7, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(selectors, "SCAN_CHECK_SECONDS", 0.0)  # every read checks the entries seen
    selectors.measured_rate_invalidate()
    yield
    selectors.measured_rate_invalidate()


def _read_directly(*, site: Any, activity: str, zone: Any, since: datetime, until: datetime) -> domain.MeasuredRate:
    """What the selector computed before it had a cache: every entry of the window, in (time, id) order."""
    rows = ProductivityEntry.objects.filter(activity=activity, occurred_at__gte=since, occurred_at__lt=until).filter(
        Q(site=site) | Q(site__isnull=True)
    )
    if zone is not None:
        rows = rows.filter(zone=zone)
    scans = [
        domain.Scan(operator=str(operator_id or label), at=at, lines=lines)
        for operator_id, label, at, lines in rows.order_by("occurred_at", "id").values_list(
            "operator_id", "operator_label", "occurred_at", "lines"
        )
    ]
    return domain.measured_rate(scans)


def _entries(rng: random.Random, count: int, *, start: datetime, sites: list[Any], zones: list[Any], users: list[Any]):  # type: ignore[no-untyped-def]
    rows = []
    for _ in range(count):
        user = rng.choice([*users, None])
        rows.append(
            ProductivityEntry(
                event_id=uuid.uuid4(),
                activity=rng.choice(["pick", "pack"]),
                operator=user,
                operator_label=user.username if user else rng.choice(["anon-a", "anon-b"]),
                site=rng.choice([*sites, None]),
                zone=rng.choice([*zones, None]),
                lines=rng.randint(1, 3),
                # microseconds too: the sum must be exact whatever order the gaps are added in
                occurred_at=start + timedelta(seconds=rng.randint(0, 4 * 3600), microseconds=rng.randint(0, 999_999)),
            )
        )
    ProductivityEntry.objects.bulk_create(rows)


def _windows(rng: random.Random) -> list[tuple[datetime, datetime]]:
    windows = [(NINE - timedelta(days=14), NINE + timedelta(hours=5))]
    for _ in range(6):
        since = NINE + timedelta(minutes=rng.randint(0, 200))
        windows.append((since, since + timedelta(minutes=rng.randint(1, 200))))
    return windows


def _check_every_window(rng: random.Random, sites: list[Any], zones: list[Any]) -> None:
    for since, until in _windows(rng):
        for site in sites:
            for zone in [None, *zones]:
                for activity in ("pick", "pack"):
                    cached = selectors.measured_rate(site=site, activity=activity, zone=zone, since=since, until=until)
                    direct = _read_directly(site=site, activity=activity, zone=zone, since=since, until=until)
                    assert cached == direct, (site.pk, zone, activity, since, until)


def test_the_cached_measured_rate_is_the_direct_one_through_appends_backdated_entries_and_deletions() -> None:
    rng = random.Random(17)
    sites = [SiteFactory(), SiteFactory()]
    zones = [ZoneFactory(site=sites[0])]
    users = [StaffUserFactory() for _ in range(4)]
    _entries(rng, 300, start=NINE, sites=sites, zones=zones, users=users)
    _check_every_window(rng, sites, zones)
    # later scans, then scans written late with an earlier time (the relay records events that happened before)
    _entries(rng, 120, start=NINE + timedelta(hours=3), sites=sites, zones=zones, users=users)
    _check_every_window(rng, sites, zones)
    _entries(rng, 80, start=NINE - timedelta(hours=1), sites=sites, zones=zones, users=users)
    _check_every_window(rng, sites, zones)
    ProductivityEntry.objects.filter(pk__in=list(ProductivityEntry.objects.values_list("pk", flat=True)[:50])).delete()
    _check_every_window(rng, sites, zones)


def test_a_table_emptied_and_filled_again_is_read_again() -> None:
    rng = random.Random(3)
    sites = [SiteFactory()]
    users = [StaffUserFactory() for _ in range(2)]
    _entries(rng, 100, start=NINE, sites=sites, zones=[], users=users)
    _check_every_window(rng, sites, [])
    ProductivityEntry.objects.all().delete()
    _entries(rng, 100, start=NINE + timedelta(minutes=7), sites=sites, zones=[], users=users)
    _check_every_window(rng, sites, [])


def test_a_warm_read_costs_two_queries_whatever_the_scans_and_one_between_checks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    sites = [SiteFactory()]
    users = [StaffUserFactory() for _ in range(3)]
    _entries(rng, 400, start=NINE, sites=sites, zones=[], users=users)
    window = {"site": sites[0], "activity": "pick", "zone": None, "until": NINE + timedelta(hours=5)}
    selectors.measured_rate(since=NINE - timedelta(days=14), **window)
    _entries(rng, 10, start=NINE + timedelta(hours=2), sites=sites, zones=[], users=users)
    with CaptureQueriesContext(connection) as queries:
        cached = selectors.measured_rate(since=NINE - timedelta(days=13), **window)
    assert len(queries) == 2
    assert cached == _read_directly(since=NINE - timedelta(days=13), **window)
    monkeypatch.setattr(selectors, "SCAN_CHECK_SECONDS", 3600.0)
    _entries(rng, 10, start=NINE + timedelta(hours=3), sites=sites, zones=[], users=users)
    with CaptureQueriesContext(connection) as queries:
        cached = selectors.measured_rate(since=NINE - timedelta(days=13), **window)
    assert len(queries) == 1
    assert cached == _read_directly(since=NINE - timedelta(days=13), **window)


def test_the_rate_sums_whole_microseconds_so_the_order_of_the_gaps_does_not_matter() -> None:
    at = NINE
    scans = []
    for n in range(50):
        at += timedelta(seconds=1, microseconds=100_003 * (n % 7))
        scans.append(domain.Scan(operator=f"op{n % 3}", at=at, lines=1))
    forwards = domain.measured_rate(scans)
    backwards = domain.measured_rate(list(reversed(scans)))
    micro = 0
    for op in ("op0", "op1", "op2"):
        own = [s for s in scans if s.operator == op]
        micro += sum((b.at - a.at) // timedelta(microseconds=1) for a, b in itertools.pairwise(own))
    assert forwards == backwards
    assert forwards.active_hours == micro / 3_600_000_000


def test_the_check_written_once_answers_what_the_orms_aggregate_answers() -> None:
    """The check's statement (compiled once per cache, the last id its parameter) gives the ORM's
    ``aggregate(Count, Sum, Max)`` over the entries seen, for every key, after entries are added and deleted."""
    rng = random.Random(11)
    sites = [SiteFactory(), SiteFactory()]
    zones = [ZoneFactory(site=sites[0])]
    users = [StaffUserFactory() for _ in range(3)]
    _entries(rng, 200, start=NINE, sites=sites, zones=zones, users=users)
    for step in range(3):
        _check_every_window(rng, sites, zones)
        checked = 0
        for (_db, site_id, activity, zone_id), cache in selectors._scan_caches.items():
            if cache.check_sql is None:
                continue
            rows = selectors._entries(site_id=site_id, activity=activity, zone_id=zone_id)
            for last_id in (cache.last_id, cache.last_id // 2, 0):
                seen = rows.filter(occurred_at__gte=cache.loaded_from, pk__lte=last_id).aggregate(
                    n=Count("pk"), lines=Sum("lines"), at=Max("occurred_at")
                )
                count, lines, newest = selectors._read_marked(cache.check_sql, last_id)[0]
                convert = getattr(connection.ops, "convert_datetimefield_value", None)
                if convert is not None and newest is not None:
                    newest = convert(newest, None, connection)
                assert (count, lines, newest) == (seen["n"], seen["lines"], seen["at"]), (site_id, activity, zone_id)
                checked += 1
        assert checked
        if step == 0:
            _entries(rng, 60, start=NINE + timedelta(hours=1), sites=sites, zones=zones, users=users)
        else:
            ProductivityEntry.objects.filter(
                pk__in=list(ProductivityEntry.objects.values_list("pk", flat=True)[:30])
            ).delete()


def test_a_window_in_a_local_zone_is_the_same_instants_in_utc() -> None:
    """The simulated day's clock is the site's local time: its window is put in UTC before the scans are searched
    (comparisons across zones are ~100 times slower), the figure the same as the direct read's."""
    rng = random.Random(11)
    sites = [SiteFactory()]
    users = [StaffUserFactory() for _ in range(3)]
    _entries(rng, 300, start=NINE, sites=sites, zones=[], users=users)
    for since, until in _windows(rng):
        direct = _read_directly(site=sites[0], activity="pick", zone=None, since=since, until=until)
        assert direct.lines > 0 or until - since < timedelta(hours=1)
        for name in ("Europe/Paris", "America/New_York", "Asia/Kolkata"):
            local = ZoneInfo(name)
            cached = selectors.measured_rate(
                site=sites[0], activity="pick", zone=None, since=since.astimezone(local), until=until.astimezone(local)
            )
            assert cached == direct, (name, since, until)
