"""The French catalogues say each message once."""

from __future__ import annotations

import re
from pathlib import Path

import quai

ROOT = Path(quai.__file__).resolve().parent


def _entries(po: Path) -> list[tuple[str, str]]:
    text = po.read_text(encoding="utf-8")
    pairs = []
    for match in re.finditer(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, re.MULTILINE):
        msgid = "".join(re.findall(r'"(.*)"', match.group(1)))
        msgstr = "".join(re.findall(r'"(.*)"', match.group(2)))
        pairs.append((msgid, msgstr))
    return pairs


def test_no_translation_repeats_itself():
    # The French for insufficient_stock was printed twice: "Stock insuffisant : … .Stock insuffisant : … ."
    repeated = []
    for po in sorted(ROOT.glob("**/locale/*/LC_MESSAGES/django.po")):
        for msgid, msgstr in _entries(po):
            half = len(msgstr) // 2
            if (
                msgstr
                and len(msgstr) % 2 == 0
                and msgstr[:half] == msgstr[half:]
                and msgid[: len(msgid) // 2] != msgid[len(msgid) // 2 :]
            ):
                repeated.append(f"{po.relative_to(ROOT)}: {msgid!r}")
    assert not repeated, "\n".join(repeated)
