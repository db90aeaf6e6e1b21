"""``str.isdigit`` is True for characters ``int`` cannot read ("²", "³", "①"): a check with it before ``int(...)``
let such a character through to a ValueError, a 500. The scan parser every scan screen uses raised on thirteen
"²" (a GTIN's length), the SSCC check on eighteen, and so did several screens' form fields. ``str.isdecimal``
is True exactly for what ``int`` reads (ASCII and other scripts' decimal digits)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quai.catalog.domain import parse_scan
from quai.shipping import domain as shipping_domain

ROOT = Path(__file__).resolve().parents[2]  # the quai package


@pytest.mark.parametrize("text", ["²" * 13, "²" * 14, "00" + "²" * 18, "٣" * 13])
def test_the_scan_parser_reads_any_digits_without_raising(text: str) -> None:
    parsed = parse_scan(text)
    assert parsed.kind == "internal" and parsed.gtin is None and parsed.sscc is None


def test_an_sscc_of_superscript_digits_is_no_sscc() -> None:
    assert shipping_domain.sscc_is_valid("²" * 18) is False
    assert shipping_domain.sscc_is_valid("٣" * 18) is False


def test_isdecimal_is_what_int_reads_and_isdigit_is_not() -> None:
    for char in "0٣۵":
        assert char.isdecimal() and int(char) >= 0
    assert "²".isdigit() and not "²".isdecimal()
    with pytest.raises(ValueError):
        int("²")


def test_no_module_checks_a_number_with_isdigit() -> None:
    found = [
        f"{path.relative_to(ROOT.parent)}:{number}"
        for path in sorted(ROOT.rglob("*.py"))
        if "tests" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.isdigit\(\)", line)
    ]
    assert found == [], f"use str.isdecimal() (what int() reads) instead of str.isdigit() in {found}"
