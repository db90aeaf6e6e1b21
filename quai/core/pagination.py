"""The pagination every API list uses (``NINJA_PAGINATION_CLASS``): ``?limit=&offset=`` → ``{"items", "count"}``."""

from __future__ import annotations

from ninja import Field, Schema
from ninja.conf import settings as ninja_settings
from ninja.pagination import LimitOffsetPagination

# The largest offset a list takes: far beyond any list, and inside what every database reads as an integer (an
# offset of 2**64 made SQLite answer "datatype mismatch", a 500).
MAX_OFFSET = 2**31 - 1

_MAX_LIMIT = None if float("inf") == ninja_settings.PAGINATION_MAX_LIMIT else int(ninja_settings.PAGINATION_MAX_LIMIT)


class Pagination(LimitOffsetPagination):
    """Both bounds checked: a bound broken answers 422 ``invalid_input`` instead of reaching the database."""

    class Input(Schema):
        limit: int = Field(ninja_settings.PAGINATION_PER_PAGE, ge=1, le=_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)
