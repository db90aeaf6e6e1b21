"""The stock reconcile (beat, or asked from the back office): what the shop shows against what Quai allows; the
SKUs that drifted are pushed again, and the report is kept on the connection (``last_reconcile``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from quai.core import clock
from quai.integrations.connectors.base import (
    ConnectorError,
)
from quai.integrations.models import (
    Connection,
)
from quai.integrations.services.connections import connection_adapter
from quai.integrations.services.stock_out import connection_stock_levels


@dataclass(frozen=True)
class ReconcileLine:
    sku: str
    quai: int
    shop: int | None
    repaired: bool


@dataclass(frozen=True)
class ReconcileReport:
    connection_id: int
    checked: int
    drift: tuple[ReconcileLine, ...]
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "checked": self.checked,
            "drift": [line.__dict__ for line in self.drift],
            "error": self.error,
        }


def connection_stock_reconcile(
    *, connection: Connection, client: httpx.Client | None = None, repair: bool = True
) -> ReconcileReport:
    """Compare what the shop shows with what Quai allows; push the SKUs that drifted (when ``repair``)."""
    adapter = connection_adapter(connection, client)
    ours = {level.sku: level for level in connection_stock_levels(connection=connection)}
    try:
        theirs = adapter.stock_levels(list(ours))
    except ConnectorError as exc:
        failed = ReconcileReport(connection_id=connection.pk, checked=0, drift=(), error=f"{exc.code}: {exc}")
        Connection.objects.filter(pk=connection.pk).update(
            last_reconcile={**failed.as_dict(), "at": clock.now().isoformat()}
        )
        return failed
    drifted = [ours[sku] for sku, shown in theirs.items() if sku in ours and shown != ours[sku].available]
    repaired: set[str] = set()
    error = ""
    if drifted and repair:
        try:
            report = adapter.push_stock(drifted, f"reconcile:{connection.pk}:{clock.now().timestamp()}")
            repaired = set(report.updated)
        except ConnectorError as exc:
            error = f"{exc.code}: {exc}"
    lines = tuple(
        ReconcileLine(sku=level.sku, quai=level.available, shop=theirs.get(level.sku), repaired=level.sku in repaired)
        for level in drifted
    )
    result = ReconcileReport(connection_id=connection.pk, checked=len(theirs), drift=lines, error=error)
    Connection.objects.filter(pk=connection.pk).update(
        last_reconcile={**result.as_dict(), "at": clock.now().isoformat()}
    )
    return result
