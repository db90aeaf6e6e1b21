from __future__ import annotations

import pytest

from quai.promise import selectors as promise_selectors
from quai.promise.services import promise_config_load
from quai.promise.tests.conftest import demo_document
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory


@pytest.fixture
def site(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """A site with the promise's demo configuration (carrier cut-offs, capacity) and one storage place."""
    site = SiteFactory(code="LYS1")
    promise_selectors.snapshot_invalidate()
    with django_capture_on_commit_callbacks(execute=True):
        promise_config_load(document=demo_document(site.code))
    LocationFactory(site=site, zone=ZoneFactory(site=site, code="STO", kind=ZoneKind.STORAGE), code="R-01-01")
    yield site
    promise_selectors.snapshot_invalidate()
