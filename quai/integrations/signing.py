"""Standard Webhooks signatures (https://www.standardwebhooks.com), through the ``standardwebhooks`` package.

Each request carries ``webhook-id`` (the event id: receivers deduplicate on it), ``webhook-timestamp`` (Unix seconds
of this attempt, so a captured request cannot be replayed later) and ``webhook-signature``: ``v1,`` followed by the
base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` with the secret's bytes, one per valid secret separated by
spaces (the current secret, and the previous one while a rotation's overlap lasts).

Why the package: it is the specification's reference implementation, MIT, without dependencies, and the receivers
we tell merchants to use verify with it. The sender signs by the package's own steps (its secret decoding, its
HMAC-SHA256 of the same bytes), with the secret decoded once rather than once a request: ``Webhook(secret)``
base64-decoded the secret and built an ``hmac`` object for every delivery of a sale (5 December, issue 12). The
tests check both against the reference vectors and against each other on random secrets and bodies, so an upgrade
of the package that changed the scheme fails there first.
"""

from __future__ import annotations

import base64
import hmac
import secrets as _random
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64 random bytes


def secret_generate() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode("ascii")


def signature_reference(*, secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """``signature`` computed by the package itself (``Webhook(secret).sign``): what the tests compare it with."""
    # The package reads the datetime's wall clock as UTC (``replace(tzinfo=utc)``), so it is given a UTC one.
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret).sign(msg_id=msg_id, timestamp=moment, data=body)


@lru_cache(maxsize=256)
def signing_key(secret: str) -> bytes:
    """The secret's bytes, decoded as the package decodes them (``whsec_`` optional, padding added), once a secret.
    Cached by the secret's text: a rotated secret is another text, hence another entry."""
    return Webhook(secret)._whsecret


def signature(*, secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64>`` for one secret: the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` (UTF-8)."""
    digest = hmac.digest(signing_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), "sha256")
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (the exact text sent), signed with every secret given."""
    if not secrets:
        raise ValueError("a webhook needs at least one secret to be signed")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets
        ),
    }
