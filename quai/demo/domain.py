"""The demo's catalogue, generated deterministically: same names, GTINs and sizes on every machine."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stdnum import ean, luhn

# GS1 France prefixes are 300–379; these company prefixes are made up for the demo.
FASHION_PREFIX = "3770016"
COSMETICS_PREFIX = "3770024"


def gtin13(company_prefix: str, item: int) -> str:
    body = f"{company_prefix}{item:0{12 - len(company_prefix)}d}"
    return body + str(ean.calc_check_digit(body))


def siret(siren_body: str, nic_body: str) -> str:
    """A SIRET (SIREN of 8 digits + key, NIC of 4 digits + key) whose 14 digits pass the Luhn check."""
    siren = siren_body + luhn.calc_check_digit(siren_body)
    head = siren + nic_body
    return head + luhn.calc_check_digit(head)


@dataclass(frozen=True)
class DemoSku:
    code: str
    name: str
    gtin: str
    length_mm: int
    width_mm: int
    height_mm: int
    weight_g: int
    lot_tracked: bool = False
    expiry_tracked: bool = False
    fragile: bool = False
    hazmat: bool = False
    hs_code: str = ""
    country_of_origin: str = "FR"


_GARMENTS = [
    # name, code, folded size (mm), weight (g), HS code, origin
    ("T-shirt coton bio", "TS", (300, 220, 20), 180, "610910", "PT"),
    ("Chemise lin", "CH", (320, 240, 30), 260, "620520", "PT"),
    ("Robe portefeuille", "RB", (340, 260, 35), 320, "620443", "IT"),
    ("Jean droit", "JN", (360, 280, 45), 650, "620342", "TN"),
    ("Pull mérinos", "PL", (340, 260, 60), 420, "611011", "IT"),
    ("Veste en velours", "VS", (400, 320, 80), 900, "620332", "PT"),
    ("Jupe plissée", "JP", (330, 250, 30), 280, "620453", "FR"),
    ("Foulard soie", "FS", (200, 150, 15), 70, "621410", "FR"),
    ("Sneakers toile", "SN", (330, 210, 120), 780, "640411", "PT"),
    ("Sac cabas", "SC", (420, 350, 60), 520, "420222", "FR"),
]
_COLOURS = [("Écru", "ECR"), ("Noir", "NOI"), ("Bleu nuit", "BLN"), ("Terracotta", "TER"), ("Sauge", "SAU")]
_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]

_COSMETICS = [
    # name, code, size (mm), weight (g), fragile, hazmat (aerosols, alcohol-based perfumes)
    ("Crème hydratante 50 ml", "CRH", (60, 60, 55), 120, True, False),
    ("Sérum éclat 30 ml", "SER", (40, 40, 110), 95, True, False),
    ("Huile sèche 100 ml", "HUI", (45, 45, 150), 170, True, False),
    ("Rouge à lèvres", "RAL", (25, 25, 85), 30, False, False),
    ("Baume lèvres", "BAU", (20, 20, 70), 15, False, False),
    ("Eau de parfum 50 ml", "EDP", (70, 45, 120), 260, True, True),
    ("Shampooing solide", "SHS", (70, 70, 35), 80, False, False),
    ("Masque argile 75 ml", "MSQ", (55, 55, 90), 130, True, False),
    ("Déodorant spray 150 ml", "DEO", (50, 50, 180), 140, False, True),
    ("Savon surgras", "SAV", (90, 60, 30), 110, False, False),
]
_SHADES = ["Nude", "Rose", "Corail", "Prune", "Rouge", "Sable", "Ambre", "Miel", "Cacao", "Givre"]


def fashion_catalogue() -> list[DemoSku]:
    """300 SKUs: 10 garments × 5 colours × 6 sizes."""
    skus = []
    item = 1
    for name, code, (length, width, height), weight, hs_code, origin in _GARMENTS:
        for colour, colour_code in _COLOURS:
            for size in _SIZES:
                size_factor = 1 + (_SIZES.index(size) - 2) * 0.04
                skus.append(
                    DemoSku(
                        code=f"LUM-{code}-{colour_code}-{size}",
                        name=f"{name} {colour} {size}",
                        gtin=gtin13(FASHION_PREFIX, item),
                        length_mm=length,
                        width_mm=width,
                        height_mm=height,
                        weight_g=round(weight * size_factor),
                        hs_code=hs_code,
                        country_of_origin=origin,
                    )
                )
                item += 1
    return skus


def cosmetics_catalogue() -> list[DemoSku]:
    """200 SKUs: 10 products × 10 shades × 2 formats, every one tracked by lot and expiry date."""
    skus = []
    item = 1
    rng = random.Random(42)
    for name, code, (length, width, height), weight, fragile, hazmat in _COSMETICS:
        for shade in _SHADES:
            for travel in (False, True):
                scale = 0.5 if travel else 1.0
                skus.append(
                    DemoSku(
                        code=f"BR-{code}-{shade[:3].upper()}-{'V' if travel else 'S'}",
                        name=f"{name} {shade}{' format voyage' if travel else ''}",
                        gtin=gtin13(COSMETICS_PREFIX, item),
                        length_mm=max(15, round(length * scale)),
                        width_mm=max(15, round(width * scale)),
                        height_mm=max(20, round(height * scale)),
                        weight_g=max(10, round(weight * scale) + rng.randint(0, 5)),
                        lot_tracked=True,
                        expiry_tracked=True,
                        fragile=fragile,
                        hazmat=hazmat,
                        hs_code="330499" if code not in {"EDP", "DEO"} else "330300",
                        country_of_origin="FR",
                    )
                )
                item += 1
    return skus
