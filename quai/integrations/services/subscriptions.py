"""Webhook subscriptions: create, change, delete, rotate the secret; and the check of an endpoint's URL.

A subscription's URL is called by our workers, from inside the warehouse's network: in production (``DEBUG``
off, or ``QUAI_WEBHOOKS_ALLOW_PRIVATE=false``) a URL whose host resolves to a private, loopback, link-local or
otherwise non-public address is refused, so a subscription cannot make Quai call its own database, metadata service
or admin (server-side request forgery). The check runs when the URL is saved and again before every request (the
host's address may have changed since). Its limit: an address that changes between that check and the connection a
few milliseconds later (DNS rebinding with a zero TTL) is not caught; an egress proxy that filters private ranges
(e.g. smokescreen) is the complete answer and can be put in front of the workers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.events import event_class
from quai.integrations import domain
from quai.integrations.models import WebhookSubscription
from quai.integrations.signing import secret_generate
from quai.tenants.models import Merchant

MAX_EVENT_TYPES = 50
MAX_OVERLAP_HOURS = 7 * 24


class WebhookUrlNotPublic(ValidationFailed):
    code = "webhook_url_not_public"


def private_urls_allowed() -> bool:
    """Loopback and private receivers are allowed in development (``DEBUG``) and where the setting says so."""
    return bool(getattr(settings, "QUAI_WEBHOOKS_ALLOW_PRIVATE", settings.DEBUG))


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 address ("fe80::1%eth0") names its link
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_unspecified or ip.is_reserved)


def webhook_host_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an address literal resolves to itself); ``OSError`` if none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def webhook_url_check(url: str, *, resolve: bool | None = None) -> str:
    """``url`` if Quai may call it: http(s), a host, no credentials; and, unless private receivers are allowed,
    a host whose every address is public. Refusals: ``invalid_webhook_url``, ``webhook_url_not_public``."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        parts, port = None, 0
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed(
            _("A webhook URL must start with http:// or https:// and name a host."),
            code="invalid_webhook_url",
            details={"url": url},
        )
    if parts.username or parts.password:
        raise ValidationFailed(
            _("A webhook URL must not carry a user name or password: the signature authenticates each request."),
            code="invalid_webhook_url",
            details={"url": url},
        )
    if resolve is None:
        resolve = not private_urls_allowed()
    if resolve:
        try:
            addresses = webhook_host_addresses(parts.hostname, port)
        except (OSError, UnicodeError):
            raise ValidationFailed(
                _("The host of this webhook URL (%(host)s) cannot be resolved.") % {"host": parts.hostname},
                code="invalid_webhook_url",
                details={"url": url, "host": parts.hostname},
            ) from None
        private = [address for address in addresses if not _address_is_public(address)]
        if private:
            raise WebhookUrlNotPublic(
                _(
                    "The host of this webhook URL (%(host)s) is a private, loopback or link-local address: Quai only "
                    "calls public addresses."
                )
                % {"host": parts.hostname},
                details={"url": url, "host": parts.hostname, "addresses": private},
            )
    return url


def webhook_event_types_clean(event_types: Sequence[str]) -> list[str]:
    """The patterns, each an event name Quai publishes, a prefix (``order.*``) or ``*``; duplicates dropped."""
    cleaned: list[str] = []
    for pattern in event_types:
        pattern = pattern.strip()
        if not domain.EVENT_PATTERN.match(pattern):
            raise ValidationFailed(
                _("'%(pattern)s' is not an event type: give a name (order.accepted), a prefix (order.*) or *.")
                % {"pattern": pattern},
                code="invalid_event_type",
                details={"event_type": pattern},
            )
        if domain.pattern_is_exact(pattern):
            try:
                event_class(pattern)
            except LookupError:
                raise ValidationFailed(
                    _("Quai publishes no event named '%(pattern)s' (a prefix such as order.* is accepted).")
                    % {"pattern": pattern},
                    code="unknown_event_type",
                    details={"event_type": pattern},
                ) from None
        if pattern not in cleaned:
            cleaned.append(pattern)
    if not cleaned:
        raise ValidationFailed(
            _("Subscribe to at least one event type (* for every event)."),
            code="event_types_required",
        )
    if len(cleaned) > MAX_EVENT_TYPES:
        raise ValidationFailed(
            _("At most %(count)d event types per subscription.") % {"count": MAX_EVENT_TYPES},
            code="invalid_event_type",
            details={"max": MAX_EVENT_TYPES},
        )
    return cleaned


def webhook_subscription_create(
    *, merchant: Merchant, url: str, event_types: Sequence[str], description: str = "", active: bool = True
) -> WebhookSubscription:
    """A new subscription with a fresh secret (shown to the caller once, by the API)."""
    return WebhookSubscription.objects.create(
        merchant=merchant,
        url=webhook_url_check(url),
        event_types=webhook_event_types_clean(event_types),
        description=description,
        active=active,
        secret=secret_generate(),
    )


def _locked(subscription: WebhookSubscription) -> WebhookSubscription:
    locked = WebhookSubscription.objects.select_for_update().filter(pk=subscription.pk).first()
    if locked is None:
        raise NotFound(_("Webhook subscription not found."), code="webhook_subscription_not_found")
    return locked


@transaction.atomic
def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    version: int,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookSubscription:
    """Change what is given of a subscription last read at ``version`` (stale: 409 ``stale_version``).

    Deliveries already written keep the URL's body snapshot but go to the URL of the moment they are sent; a
    subscription made inactive keeps its pending deliveries, which wait until it is active again.
    """
    locked = _locked(subscription)
    if locked.version != version:
        raise Conflict(
            _("This subscription was changed by someone else (version %(current)d): reload it and retry.")
            % {"current": locked.version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    if url is not None:
        locked.url = webhook_url_check(url)
    if event_types is not None:
        locked.event_types = webhook_event_types_clean(event_types)
    if description is not None:
        locked.description = description
    if active is not None:
        locked.active = active
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Delete a subscription with its deliveries and their log (nothing more will be sent to it)."""
    _locked(subscription).delete()


@transaction.atomic
def webhook_subscription_rotate_secret(
    *, subscription: WebhookSubscription, overlap: timedelta = timedelta(hours=24)
) -> WebhookSubscription:
    """A new secret; the current one becomes the previous one and still signs until the overlap ends, so a
    receiver can switch to the new secret without losing a delivery. A zero overlap drops the old secret at once
    (a leaked secret)."""
    if overlap < timedelta(0) or overlap > timedelta(hours=MAX_OVERLAP_HOURS):
        raise ValidationFailed(
            _("The overlap must be between 0 and %(hours)d hours.") % {"hours": MAX_OVERLAP_HOURS},
            code="invalid_overlap",
            details={"max_hours": MAX_OVERLAP_HOURS},
        )
    locked = _locked(subscription)
    now = clock.now()
    if overlap > timedelta(0):
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = now + overlap
    else:
        locked.previous_secret = ""
        locked.previous_secret_expires_at = None
    locked.secret = secret_generate()
    locked.version += 1
    locked.save()
    return locked


def webhook_subscription_secrets(subscription: WebhookSubscription, at: datetime) -> list[str]:
    """The secrets that sign a request sent at ``at``: the current one, and the previous one during an overlap."""
    secrets = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and at < expires:
        secrets.append(subscription.previous_secret)
    return secrets
