"""The ISO 8601 date formats that every language module of ``quai.formats`` re-exports.

Output formats use Django's ``date`` filter syntax; input formats use ``strftime`` syntax. ISO comes first among
the inputs so that ``2026-12-03`` is always read as the 3rd of December, whatever the language. The formats in
words (``MONTH_DAY_FORMAT``: "3 décembre", ``YEAR_MONTH_FORMAT``: "December 2026") stay each language's own: they
cannot be misread.
"""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i"

DATE_INPUT_FORMATS = [
    "%Y-%m-%d",  # 2026-12-03
]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",  # 2026-12-03 14:05:59
    "%Y-%m-%d %H:%M:%S.%f",  # 2026-12-03 14:05:59.000200
    "%Y-%m-%d %H:%M",  # 2026-12-03 14:05
    "%Y-%m-%d",  # 2026-12-03
]
TIME_INPUT_FORMATS = [
    "%H:%M:%S",  # 14:05:59
    "%H:%M:%S.%f",  # 14:05:59.000200
    "%H:%M",  # 14:05
]
