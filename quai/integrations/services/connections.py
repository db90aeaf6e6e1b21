"""Shop connections: one per merchant shop, set up here (credentials encrypted at rest, never read back), with its
state (last sync, lag, errors, next retry) recorded by the steps of the sync engine, which live beside this module:

- ``inbound``: a shop's call verified on its raw bytes, stored once, answered at once; Shopify's GET callbacks;
- ``processing``: a stored call acted on by a task (orders into ``quai.orders`` intake, held for unknown SKUs,
  cancellations, address changes);
- ``polling``: orders pulled since a cursor, the safety net under webhooks;
- ``stock_out``: stock changes pushed to each shop, coalesced, one push at a time per shop, rate-limited;
- ``reconcile``: the shop's levels compared with Quai's, drift repaired, with a report;
- ``pushes``: writes to the shop (accept, fulfilment with tracking, refund, note), retried with backoff;
- ``sweep``: beat's catch-all for whatever a lost nudge or a dead worker left due.

Every call to a shop runs in a task, outside any request or database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.crypto import credentials_load, credentials_merge
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectionConfig,
    ConnectorError,
    HealthReport,
    adapter_for,
    platforms,
)
from quai.integrations.models import (
    Connection,
    ConnectionStatus,
    ShopOrder,
)
from quai.integrations.services.subscriptions import webhook_url_check
from quai.tenants.models import Merchant

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)


def _credentials_of(connection: Connection) -> dict[str, str]:
    return credentials_load(connection.credentials)


def connection_config(connection: Connection) -> ConnectionConfig:
    """What the adapter is built from; the credentials decrypted for the time of the call."""
    return ConnectionConfig(
        platform=connection.platform,
        base_url=connection.base_url,
        credentials=_credentials_of(connection),
        settings=dict(connection.settings or {}),
        connection_id=connection.pk,
    )


def connection_adapter(connection: Connection, client: httpx.Client | None = None) -> Any:
    return adapter_for(connection_config(connection), client)


def public_base_url() -> str:
    return str(getattr(django_settings, "QUAI_PUBLIC_URL", "http://localhost:8000")).rstrip("/")


def connection_inbound_url(connection: Connection) -> str:
    """Where the shop calls Quai: ``<base>/{topic}`` (``order.created``, ``fulfillment_order_notification``…)."""
    return f"{public_base_url()}/api/v1/shops/{connection.pk}/hooks"


def _platform_check(platform: str) -> str:
    if platform not in platforms():
        raise ValidationFailed(
            _("Unknown platform '%(platform)s': one of %(known)s.")
            % {"platform": platform, "known": ", ".join(platforms())},
            code="platform_unknown",
            details={"platform": platform, "platforms": platforms()},
        )
    return platform


def connection_create(
    *,
    merchant: Merchant | int,
    name: str,
    platform: str,
    base_url: str,
    credentials: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    safety_buffer: int = 0,
    push_stock: bool = True,
    poll_orders: bool = True,
) -> Connection:
    """A merchant's shop. The credentials are stored encrypted and never shown again."""
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    return Connection.objects.create(
        merchant_id=merchant_id,
        name=name,
        platform=_platform_check(platform),
        base_url=webhook_url_check(base_url),
        credentials=credentials_merge({}, credentials or {}),
        settings=dict(settings or {}),
        safety_buffer=safety_buffer,
        push_stock=push_stock,
        poll_orders=poll_orders,
    )


def _connection_locked(connection: Connection | int) -> Connection:
    pk = connection if isinstance(connection, int) else connection.pk
    locked = Connection.objects.select_for_update().filter(pk=pk).first()
    if locked is None:
        raise NotFound(_("Shop connection not found."), code="connection_not_found", details={"connection_id": pk})
    return locked


@transaction.atomic
def connection_update(
    *,
    connection: Connection,
    version: int,
    name: str | None = None,
    base_url: str | None = None,
    credentials: Mapping[str, str | None] | None = None,
    settings: Mapping[str, Any] | None = None,
    safety_buffer: int | None = None,
    push_stock: bool | None = None,
    poll_orders: bool | None = None,
    status: str | None = None,
) -> Connection:
    """Change what is given. ``credentials`` are merged key by key (an empty value removes the key): the current
    ones are never read back, so a form can change one key without knowing the others."""
    locked = _connection_locked(connection)
    if locked.version != version:
        raise Conflict(
            _("This connection was changed by someone else (version %(current)d): reload it and retry.")
            % {"current": locked.version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    if name is not None:
        locked.name = name
    if base_url is not None:
        locked.base_url = webhook_url_check(base_url)
    if credentials:
        locked.credentials = credentials_merge(_credentials_of(locked), credentials)
    if settings is not None:
        locked.settings = dict(settings)
    if safety_buffer is not None:
        locked.safety_buffer = safety_buffer
    if push_stock is not None:
        locked.push_stock = push_stock
    if poll_orders is not None:
        locked.poll_orders = poll_orders
    if status is not None:
        if status not in (ConnectionStatus.ACTIVE, ConnectionStatus.PAUSED):
            raise ValidationFailed(
                _("A connection can be set active or paused."), code="invalid_status", details={"status": status}
            )
        locked.status = status
        if status == ConnectionStatus.ACTIVE:
            locked.next_retry_at = None
            locked.consecutive_failures = 0
    locked.version += 1
    locked.updated_at = clock.now()
    locked.save()
    return locked


@transaction.atomic
def connection_delete(*, connection: Connection) -> None:
    """Delete a connection; refused while Quai orders came from it (they keep their link to the shop)."""
    locked = _connection_locked(connection)
    if ShopOrder.objects.filter(connection=locked, order__isnull=False).exists():
        raise Conflict(
            _("Orders came from this shop: pause the connection instead of deleting it."),
            code="connection_in_use",
            details={"connection_id": locked.pk},
        )
    locked.delete()


def connection_failure_record(connection_id: int, exc: Exception, *, retry_after: float | None = None) -> None:
    now = clock.now()
    row = Connection.objects.filter(pk=connection_id).values("consecutive_failures").first()
    failures = (row["consecutive_failures"] if row else 0) + 1
    delay = domain.backoff(failures, key=str(connection_id))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    Connection.objects.filter(pk=connection_id).exclude(status=ConnectionStatus.PAUSED).update(
        status=ConnectionStatus.FAILING
    )
    Connection.objects.filter(pk=connection_id).update(
        last_error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:2000],
        last_error_at=now,
        consecutive_failures=failures,
        next_retry_at=now + delay,
    )
    logger.warning("shop connection %s failed: %s", connection_id, exc)


def connection_success_record(connection_id: int, **values: Any) -> None:
    Connection.objects.filter(pk=connection_id, status=ConnectionStatus.FAILING).update(status=ConnectionStatus.ACTIVE)
    Connection.objects.filter(pk=connection_id).update(consecutive_failures=0, next_retry_at=None, **values)


def connection_health(*, connection: Connection, client: httpx.Client | None = None) -> HealthReport:
    """Ask the shop (credentials, subscriptions); the answer is recorded on the connection. Outside transactions."""
    try:
        report = connection_adapter(connection, client).health()
    except ConnectorError as exc:
        report = HealthReport(ok=False, detail=str(exc))
    Connection.objects.filter(pk=connection.pk).update(
        last_health={
            "ok": report.ok,
            "detail": report.detail,
            "checks": dict(report.checks),
            "at": clock.now().isoformat(),
        }
    )
    if report.ok:
        connection_success_record(connection.pk, last_sync_at=clock.now())
    else:
        connection_failure_record(
            connection.pk, ConnectorError(report.detail or "health check failed", code="health_failed")
        )
    return report


def connection_subscribe(*, connection: Connection, client: httpx.Client | None = None) -> None:
    """Register (idempotently) the shop's webhooks or fulfilment service pointing at this connection's URL."""
    connection_adapter(connection, client).ensure_subscriptions(connection_inbound_url(connection))


def connections_pollable() -> list[Connection]:
    now = clock.now()
    return list(
        Connection.objects.filter(poll_orders=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .order_by("pk")
    )


def connections_stock_pushing() -> list[Connection]:
    return list(Connection.objects.filter(push_stock=True).exclude(status=ConnectionStatus.PAUSED).order_by("pk"))


def connections_get_any(connection_id: int) -> Connection | None:
    """A connection by id, whoever owns it: for tasks, which act on what a scoped caller asked for."""
    return Connection.objects.filter(pk=connection_id).first()


def connection_task(*, connection: Connection, action: str) -> None:
    """Ask a worker to check the shop's health or reconcile its stock (both call the shop: never in a request)."""
    from quai.integrations import tasks

    task = {"health": tasks.connection_health_check, "reconcile": tasks.connection_reconcile}[action]
    pk = connection.pk
    transaction.on_commit(lambda: task.delay(pk), robust=True)
