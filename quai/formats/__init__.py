"""Date formats of the installation, one module per language (``FORMAT_MODULE_PATH = "quai.formats"``).

Every screen and the back office write dates in ISO 8601 (2026-12-03, 2026-12-03 14:05), in French and in English
alike: a warehouse shares dates across languages and with its merchants (expiry dates on labels, ASN dates), and
Django's defaults mixed ``12/03/2026`` (English, month first) with ``03/12/2026`` (French, day first). The
numbers keep each language's separators.
"""
