"""The site map's drawing, from plain data: no database, milliseconds."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from quai.warehouse import domain
from quai.warehouse.site_map import MapLocation, MapText, MapZone, SiteMap, site_map_render

SVG = "{http://www.w3.org/2000/svg}"


def _map() -> SiteMap:
    planned = domain.rack_pattern_expand(domain.rack_pattern_build(aisles="A-C", bays=6, levels=2))
    zones = [
        MapZone(id=1, code="STO", name="Reserve <A&B>", kind="storage"),
        MapZone(id=2, code="VE", name="Vente flash", kind="picking", closed=True, temporary=True),
        MapZone(id=3, code="EMPTY", name="Nothing here", kind="returns"),
    ]
    locations = [
        MapLocation(
            code=p.code,
            zone_id=1 if p.aisle != "C" else 2,
            x_m=p.x_m,
            y_m=p.y_m,
            aisle=p.aisle,
            blocked=p.code == "B-03-02-01",
        )
        for p in planned
    ]
    text = MapText(title="Lyon & co — map", kind_labels={"storage": "Stockage", "picking": "Préparation"})
    return SiteMap(zones=zones, locations=locations, text=text)


def test_the_site_map_is_valid_svg_with_zones_slots_legend_scale_and_title():
    svg = site_map_render(_map())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Lyon & co — map"
    zones = root.findall(f".//{SVG}g[@class='zone']")
    assert sorted(z.get("data-zone") for z in zones) == ["STO", "VE"]  # a zone without locations has no outline
    slots = root.findall(f".//{SVG}g[@class='locations']/{SVG}g")
    assert len(slots) == 3 * 6  # two levels share one square
    blocked = [g for g in slots if "blocked" in g.get("class")]
    assert len(blocked) == 1 and "B-03-02-01" in blocked[0].find(f"{SVG}title").text
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"A", "B", "C"} <= set(texts)  # aisle labels
    assert "Stockage" in texts and "Préparation" in texts and "returns" in texts  # legend, unknown label falls back
    assert any(t and t.endswith(" m") for t in texts)  # the scale bar
    assert "STO — Reserve <A&B>" in texts  # escaped in the file, read back intact
    assert "VE — Vente flash (temporary)" in texts


def test_the_site_map_is_the_same_bytes_for_the_same_layout_whatever_the_input_order():
    site_map = _map()
    shuffled = SiteMap(
        zones=list(reversed(site_map.zones)), locations=list(reversed(site_map.locations)), text=site_map.text
    )
    assert site_map_render(site_map) == site_map_render(shuffled)


def test_an_empty_site_still_draws_a_valid_map_that_says_so():
    svg = site_map_render(SiteMap(zones=[], locations=[], text=MapText("Vide", {})))
    root = ET.fromstring(svg)
    assert "No locations yet." in [t.text for t in root.iter(f"{SVG}text")]
