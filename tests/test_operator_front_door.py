"""The operator screens' front door (quai/views.py): signing in and out, who is signed in, and ISO dates."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django import forms
from django.test import Client
from django.utils import formats, translation

from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "quai-handheld-2031"


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    user = StaffUserFactory(username="olga")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_signing_in_at_the_ops_login_page_without_a_next_page_lands_on_the_operator_menu(operator):
    client = Client()
    answer = client.post("/ops/login/", {"username": "olga", "password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/ops/"
    assert client.get("/ops/").status_code == 200


def test_signing_in_goes_back_to_the_screen_that_asked_for_it(operator):
    client = Client()
    asked = client.get("/ops/inventory/move/")
    assert asked.status_code == 302 and asked["Location"].startswith("/ops/login/?next=")
    answer = client.post("/ops/login/", {"username": "olga", "password": PASSWORD, "next": "/ops/inventory/move/"})
    assert answer["Location"] == "/ops/inventory/move/"


def test_signing_out_is_a_post_that_lands_on_the_sign_in_page(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.get("/ops/logout/").status_code == 405, "a link or a prefetch never signs anyone out"
    assert client.post("/ops/logout/").status_code == 403, "without the CSRF token, refused"

    menu = client.get("/ops/")
    token = menu.context["csrf_token"]
    answer = client.post("/ops/logout/", {"csrfmiddlewaretoken": str(token)})
    assert answer.status_code == 302 and answer["Location"] == "/ops/login/"
    assert client.get("/ops/")["Location"].startswith("/ops/login/")


def test_the_menu_says_who_is_signed_in_and_offers_to_sign_out(operator):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(operator)
    html = client.get("/ops/").content.decode()
    assert 'id="signed-in"' in html and "<strong>olga</strong>" in html
    assert 'action="/ops/logout/"' in html and 'id="logout"' in html and "csrfmiddlewaretoken" in html
    assert "Sign out" in html
    french = Client(HTTP_ACCEPT_LANGUAGE="fr")
    french.force_login(operator)
    assert "Se déconnecter" in french.get("/ops/").content.decode()


def test_the_sign_in_page_shows_no_sign_out():
    html = Client().get("/ops/login/").content.decode()
    assert 'id="logout"' not in html


@pytest.mark.parametrize("language", ["fr", "en"])
def test_dates_are_written_and_read_in_iso_8601_in_every_language(language):
    when = datetime(2026, 12, 3, 14, 5)
    with translation.override(language):
        assert formats.date_format(when.date()) == "2026-12-03"
        assert formats.date_format(when.date(), "SHORT_DATE_FORMAT") == "2026-12-03"
        assert formats.date_format(when, "DATETIME_FORMAT") == "2026-12-03 14:05"
        assert formats.date_format(when, "SHORT_DATETIME_FORMAT") == "2026-12-03 14:05"
        assert forms.DateField().clean("2026-12-03") == date(2026, 12, 3)
        assert forms.DateTimeField().clean("2026-12-03 14:05").replace(tzinfo=None) == when


def test_the_menu_offers_every_floor_screen_each_under_its_own_key(operator):
    """A screen whose URL name changed would silently drop off the menu (ops_home skips names that do not
    reverse): every screen listed must be reachable, and each key must be pressed for one screen only."""
    from django.urls import reverse

    from quai.views import SCREENS

    client = Client()
    client.force_login(operator)
    menu = client.get("/ops/")
    links = [screen["url"] for screen in menu.context["screens"]]
    assert links == [reverse(screen.url_name) for screen in SCREENS]
    assert len({screen.key for screen in SCREENS}) == len(SCREENS)
    for url in ("/ops/fulfilment/", "/ops/packing/", "/ops/packing/truck/", "/ops/service/returns/", "/ops/service/"):
        assert url in links
