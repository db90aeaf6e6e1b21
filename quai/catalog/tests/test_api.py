from __future__ import annotations

from urllib.parse import quote

import pytest

from quai.catalog.models import Barcode, PackagingType, Sku
from quai.catalog.tests.factories import BarcodeFactory, PackagingTypeFactory, SkuFactory, valid_gtin13
from quai.tenants.models import ApiKey
from quai.tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db


def test_a_merchant_creates_a_sku_and_reads_it_back(api, merchant):
    response = api.post(
        "catalog/skus",
        {"code": "TSHIRT-M", "name": "T-shirt M", "gtin": "9521234543213", "weight_g": 180, "lot_tracked": True},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["merchant_id"] == merchant.pk
    assert body["gtin"] == "09521234543213"
    assert body["barcodes"][0]["is_primary"] is True
    assert body["version"] == 1
    detail = api.get(f"catalog/skus/{body['id']}").json()
    assert detail["code"] == "TSHIRT-M"


def test_an_invalid_gtin_gets_a_422_with_its_code_and_nothing_is_written(api):
    response = api.post("catalog/skus", {"code": "BAD", "name": "Bad", "gtin": "9521234543214"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_gtin"
    assert error["details"]["field"] == "gtin"
    assert not Sku.objects.exists()


def test_a_duplicate_code_gets_a_409(api, merchant):
    SkuFactory(merchant=merchant, code="MUG")
    response = api.post("catalog/skus", {"code": "MUG", "name": "Mug"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_sku_code"
    assert Sku.objects.filter(code="MUG").count() == 1


def test_the_list_is_filtered_and_paginated(api, merchant, other_merchant):
    for i in range(5):
        SkuFactory(merchant=merchant, code=f"SHIRT-{i}", name=f"Shirt {i}", lot_tracked=i % 2 == 0)
    SkuFactory(merchant=merchant, code="MUG", name="Mug", status="inactive")
    SkuFactory(merchant=other_merchant, code="SHIRT-X", name="Their shirt")

    page = api.get("catalog/skus", q="shirt", limit=2, offset=2).json()
    assert page["count"] == 5
    assert [item["code"] for item in page["items"]] == ["SHIRT-2", "SHIRT-3"]
    assert api.get("catalog/skus", lot_tracked="true").json()["count"] == 3
    assert [i["code"] for i in api.get("catalog/skus", status="inactive").json()["items"]] == ["MUG"]
    shirt = Sku.objects.get(code="SHIRT-1")
    by_gtin = api.get("catalog/skus", gtin=shirt.gtin.lstrip("0")).json()
    assert [i["code"] for i in by_gtin["items"]] == ["SHIRT-1"]
    assert api.get("catalog/skus", code="SHIRT-X").json()["count"] == 0


def test_q_finds_a_sku_by_an_extra_barcode(api, merchant):
    sku = SkuFactory(merchant=merchant, code="LAMP")
    BarcodeFactory(sku=sku, code="SUPPLIER-777")
    assert [i["code"] for i in api.get("catalog/skus", q="SUPPLIER-7").json()["items"]] == ["LAMP"]


def test_a_patch_with_the_current_version_updates_and_a_stale_one_gets_409(api, merchant):
    sku = SkuFactory(merchant=merchant)
    response = api.patch(f"catalog/skus/{sku.pk}", {"version": 1, "name": "Renamed", "weight_g": None})
    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["weight_g"], response.json()["version"]) == ("Renamed", None, 2)
    stale = api.patch(f"catalog/skus/{sku.pk}", {"version": 1, "name": "Late"})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_version"
    assert Sku.objects.get(pk=sku.pk).name == "Renamed"


def test_bulk_upsert_through_the_api_reports_every_action(api, merchant):
    SkuFactory(merchant=merchant, code="OLD")
    response = api.post(
        "catalog/skus/bulk",
        {"rows": [{"code": "OLD", "name": "Old renamed"}, {"code": "NEW", "name": "New", "gtin": valid_gtin13(5)}]},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 1)
    assert [(item["index"], item["code"], item["action"]) for item in body["items"]] == [
        (0, "OLD", "updated"),
        (1, "NEW", "created"),
    ]


def test_a_bulk_upsert_with_one_bad_row_writes_nothing_and_lists_the_row(api, merchant):
    response = api.post(
        "catalog/skus/bulk",
        {
            "rows": [
                {"code": "A", "name": "A"},
                {"code": "B", "name": "B", "gtin": "12345678"},
                {"code": "A", "name": "A again"},
            ]
        },
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "bulk_rejected"
    assert [(row["index"], row["errors"][0]["code"]) for row in error["details"]["rows"]] == [
        (1, "invalid_gtin"),
        (2, "duplicate_sku_code"),
    ]
    assert not Sku.objects.filter(merchant=merchant).exists()


def test_a_bulk_upsert_of_too_many_rows_is_refused(api):
    response = api.post("catalog/skus/bulk", {"rows": [{"code": f"C{i}", "name": "x"} for i in range(1001)]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_rows"
    assert not Sku.objects.exists()


def test_barcodes_are_added_listed_and_removed(api, merchant):
    sku = SkuFactory(merchant=merchant)
    created = api.post(f"catalog/skus/{sku.pk}/barcodes", {"code": "SUP-1", "kind": "supplier"})
    assert created.status_code == 201
    listing = api.get(f"catalog/skus/{sku.pk}/barcodes").json()
    assert listing["count"] == 2
    assert listing["items"][0]["is_primary"] is True
    removed = api.delete(f"catalog/skus/{sku.pk}/barcodes/{created.json()['id']}")
    assert removed.status_code == 204
    primary = Barcode.objects.get(sku=sku, is_primary=True)
    refused = api.delete(f"catalog/skus/{sku.pk}/barcodes/{primary.pk}")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "primary_barcode"


def test_a_barcode_of_another_sku_gets_409(api, merchant):
    owner = SkuFactory(merchant=merchant)
    other = SkuFactory(merchant=merchant)
    response = api.post(f"catalog/skus/{other.pk}/barcodes", {"code": owner.gtin})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_barcode"


def test_scan_resolves_a_gs1_string_with_a_group_separator(api, merchant):
    sku = SkuFactory(merchant=merchant, gtin="09521234543213")
    code = "]C1" + "0109521234543213" + "10ABC123" + "\x1d" + "21XYZ"
    response = api.get(f"/api/v1/catalog/scan?code={quote(code)}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["kind"], body["sku"]["id"], body["lot"], body["serial"]) == ("gs1", sku.pk, "ABC123", "XYZ")


def test_an_unknown_scan_answers_404_unknown_code(api):
    response = api.get("catalog/scan", code="NOTHING-HERE")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_code"
    assert "NOTHING-HERE" in error["message"]


def test_a_merchant_cannot_see_or_change_another_merchants_skus(api, other_merchant):
    foreign = SkuFactory(merchant=other_merchant, name="Theirs")
    foreign_barcode = BarcodeFactory(sku=foreign)
    assert api.get("catalog/skus").json()["count"] == 0
    assert api.get(f"catalog/skus/{foreign.pk}").status_code == 404
    assert api.patch(f"catalog/skus/{foreign.pk}", {"version": 1, "name": "Mine now"}).status_code == 404
    assert api.get(f"catalog/skus/{foreign.pk}/barcodes").status_code == 404
    assert api.post(f"catalog/skus/{foreign.pk}/barcodes", {"code": "STOLEN"}).status_code == 404
    assert api.delete(f"catalog/skus/{foreign.pk}/barcodes/{foreign_barcode.pk}").status_code == 404
    assert api.get("catalog/scan", code=foreign.gtin).status_code == 404
    assert api.get("catalog/skus", merchant_id=other_merchant.pk).status_code == 404
    assert api.post("catalog/skus", {"merchant_id": other_merchant.pk, "code": "X", "name": "X"}).status_code == 404
    foreign.refresh_from_db()
    assert (foreign.name, foreign.version) == ("Theirs", 1)
    assert Barcode.objects.filter(sku=foreign).count() == 2


def test_a_foreign_sku_answers_exactly_like_a_missing_one(api, other_merchant):
    foreign = SkuFactory(merchant=other_merchant)
    missing_id = Sku.objects.order_by("-pk").first().pk + 1000
    foreign_error = api.get(f"catalog/skus/{foreign.pk}").json()["error"]
    missing_error = api.get(f"catalog/skus/{missing_id}").json()["error"]
    assert (foreign_error["code"], foreign_error["message"]) == (missing_error["code"], missing_error["message"])


def test_a_revoked_key_cannot_write_to_the_catalog(api, merchant):
    api_key_revoke(api_key_id=ApiKey.objects.get(merchant=merchant).pk)
    response = api.post("catalog/skus", {"code": "X", "name": "X"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert not Sku.objects.exists()


def test_staff_must_say_which_merchant_a_sku_is_for(staff_api, merchant):
    refused = staff_api.post("catalog/skus", {"code": "X", "name": "X"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "merchant_required"
    created = staff_api.post("catalog/skus", {"merchant_id": merchant.pk, "code": "X", "name": "X"})
    assert created.status_code == 201
    assert staff_api.get("catalog/skus").json()["count"] == 1


def test_packaging_types_list_the_operators_and_the_merchants_own(api, merchant, other_merchant):
    shared = PackagingTypeFactory(merchant=None, code="BOX-S")
    PackagingTypeFactory(merchant=merchant, code="MY-BOX")
    PackagingTypeFactory(merchant=other_merchant, code="THEIR-BOX")
    codes = [item["code"] for item in api.get("catalog/packaging-types").json()["items"]]
    assert codes == ["BOX-S", "MY-BOX"]
    assert api.get(f"catalog/packaging-types/{shared.pk}").json()["merchant_id"] is None


def test_a_merchant_creates_its_own_packaging_but_cannot_change_the_operators(api, merchant):
    created = api.post(
        "catalog/packaging-types",
        {
            "code": "ENV-A4",
            "name": "A4 envelope",
            "kind": "envelope",
            "inner_length_mm": 310,
            "inner_width_mm": 220,
            "inner_height_mm": 10,
            "max_weight_g": 1000,
            "tare_weight_g": 20,
            "cost": "0.12",
        },
    )
    assert created.status_code == 201, created.json()
    assert created.json()["merchant_id"] == merchant.pk
    assert created.json()["inner_volume_mm3"] == 310 * 220 * 10
    shared = PackagingTypeFactory(merchant=None)
    refused = api.patch(f"catalog/packaging-types/{shared.pk}", {"version": 1, "name": "Mine"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "staff_only"
    mine = api.patch(f"catalog/packaging-types/{created.json()['id']}", {"version": 1, "cost": "0.15"})
    assert mine.status_code == 200
    assert mine.json()["version"] == 2


def test_staff_create_and_change_the_operators_packaging(staff_api):
    created = staff_api.post(
        "catalog/packaging-types",
        {
            "code": "BOX-M",
            "name": "Medium box",
            "inner_length_mm": 400,
            "inner_width_mm": 300,
            "inner_height_mm": 200,
            "max_weight_g": 10000,
        },
    )
    assert created.status_code == 201
    assert created.json()["merchant_id"] is None
    changed = staff_api.patch(f"catalog/packaging-types/{created.json()['id']}", {"version": 1, "active": False})
    assert changed.json()["active"] is False


def test_another_merchants_packaging_type_answers_404(api, other_merchant):
    theirs = PackagingTypeFactory(merchant=other_merchant)
    assert api.get(f"catalog/packaging-types/{theirs.pk}").status_code == 404
    assert api.patch(f"catalog/packaging-types/{theirs.pk}", {"version": 1, "name": "x"}).status_code == 404
    assert PackagingType.objects.get(pk=theirs.pk).version == 1


def test_errors_are_explained_in_french_by_default(api, merchant):
    # Quai's default language is French; the code stays the same in every language.
    api.headers["Accept-Language"] = "fr"
    response = api.post("catalog/skus", {"code": "BAD", "name": "Bad", "gtin": "9521234543214"})
    error = response.json()["error"]
    assert error["code"] == "invalid_gtin"
    assert error["message"] == "« 9521234543214 » n'est pas un GTIN valide : sa clé de contrôle devrait être 3."


def test_a_barcode_equal_to_another_skus_code_gets_409_code_taken_naming_that_sku(api, merchant):
    holder = SkuFactory(merchant=merchant, code="MUG-RED")
    sku = SkuFactory(merchant=merchant)
    response = api.post(f"catalog/skus/{sku.pk}/barcodes", {"code": "mug-red"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["details"]["sku_id"]) == ("code_taken", holder.pk)
    assert "MUG-RED" in error["message"]


def test_a_sku_whose_code_is_another_skus_barcode_gets_409_code_taken(api, merchant):
    holder = BarcodeFactory(sku=SkuFactory(merchant=merchant), code="SUP-9").sku
    response = api.post("catalog/skus", {"code": "SUP-9", "name": "Clash"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "code_taken"
    assert error["details"]["errors"][0]["sku_id"] == holder.pk
    assert not Sku.objects.filter(name="Clash").exists()


def test_a_gs1_scan_of_a_variable_measure_item_gives_its_weight_and_price(api, merchant):
    sku = SkuFactory(merchant=merchant, gtin="09521234543213")
    code = "]C1" + "0109521234543213" + "3103001250" + "3932978002990"
    response = api.get(f"/api/v1/catalog/scan?code={quote(code)}")
    assert response.status_code == 200
    body = response.json()
    assert (body["merchant_id"], body["sku"]["id"]) == (merchant.pk, sku.pk)
    assert (body["net_weight_kg"], body["price"], body["price_currency_numeric"]) == (
        "1.250",
        "29.90",
        "978",
    )


def test_a_merchant_scanning_another_merchants_code_is_not_told_whose_it_is(api, other_merchant):
    SkuFactory(merchant=other_merchant, code="THEIRS")
    response = api.get("catalog/scan", code="THEIRS")
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["details"]["reason"]) == ("unknown_code", "unknown")
    assert "Rival" not in error["message"]
