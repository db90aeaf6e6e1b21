"""Secrets at rest: shop credentials, webhook signing secrets and carrier credentials, encrypted with
``cryptography``'s MultiFernet.

It lives in core (which imports no app) so that every app can keep a secret, whatever its layer: shipping's carrier
accounts as well as integrations' shop connections. ``encrypted_fields`` finds every model using the field, so one
rotation re-encrypts them all.

Keys come from ``settings.QUAI_ENCRYPTION_KEYS`` (the environment's ``QUAI_ENCRYPTION_KEYS``, comma-separated Fernet
keys): the first encrypts, every one decrypts, so a rotation is (1) put a new key first and keep the old ones after
it, (2) run ``manage.py rotate_encryption_keys`` (every secret re-encrypted with the first key), (3) drop the old
keys. With no key set, a development key derived from ``SECRET_KEY`` is used, and only while ``DEBUG`` is on: in
production an unset key is a configuration error raised at the first use, never a silent fallback.

Why Fernet (AES-128-CBC + HMAC-SHA256, a timestamped token) through MultiFernet and not our own scheme: it is the
library's documented primitive for exactly this, and ``MultiFernet.rotate`` re-encrypts under the first key while
keeping the token's original timestamp (https://cryptography.io/en/latest/fernet/#cryptography.fernet.MultiFernet).

A database dump alone then reveals no secret; the keys live in the environment, not in the database.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

# Every Fernet token starts with the version byte 0x80, base64url-encoded: "gAAAAA".
TOKEN_PREFIX = "gAAAAA"


def configured_keys() -> list[bytes]:
    """The keys, first one encrypting (settings put the development key there when none is set and ``DEBUG`` is
    on, at start-up: Django's test runner turns ``DEBUG`` off afterwards)."""
    raw = getattr(settings, "QUAI_ENCRYPTION_KEYS", None) or []
    if isinstance(raw, str):
        raw = raw.split(",")
    keys = [key.strip().encode() for key in raw if key and key.strip()]
    if keys:
        return keys
    raise ImproperlyConfigured(
        "QUAI_ENCRYPTION_KEYS must be set when DEBUG is off (comma-separated Fernet keys, the first one encrypts; "
        'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())").'
    )


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"QUAI_ENCRYPTION_KEYS holds a key that is not a Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    return _fernet(tuple(configured_keys()))


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plain text; ``InvalidToken`` if no configured key opens it (a key removed too early)."""
    return fernet().decrypt(token.encode("ascii")).decode()


def rotate(token: str) -> str:
    """The same secret encrypted with the first key (decrypted with whichever key opens it)."""
    return fernet().rotate(token.encode("ascii")).decode("ascii")


def is_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]  # generic in the stubs only
    """A text column stored as a Fernet token and read back as plain text.

    The Python value is always the plain text; the column only ever receives tokens. A value read that is not a
    token is a row written before encryption (the data migration of webhook secrets encrypts them all): it is read
    as it is, and written encrypted on its next save. An empty value stays empty (nothing to hide, and "no previous
    secret" must stay distinguishable).
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "" or not is_token(value):
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name}: no key of QUAI_ENCRYPTION_KEYS decrypts this value "
                "(was a key removed before `manage.py rotate_encryption_keys` ran?)"
            ) from None

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


# A record's credentials (API keys, passwords, tokens) are one JSON object of names and texts, stored encrypted as
# one token; the shops' connections and the carrier accounts keep theirs so.


def credentials_load(value: str) -> dict[str, str]:
    """The names and values of a credentials column (its plain text, as the field reads it back)."""
    if not value:
        return {}
    loaded = json.loads(value)
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def credentials_merge(current: Mapping[str, str], changes: Mapping[str, str | None]) -> str:
    """``current`` with ``changes`` applied key by key (an empty value removes the key), as the column's text."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return json.dumps(merged, sort_keys=True)


def credentials_parse(text: str) -> dict[str, str]:
    """Credentials typed in the back office, one ``key=value`` per line (blank lines skipped); ``ValueError`` for
    a line that is not one."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(line)
        values[key.strip()] = value.strip()
    return values


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns and their names (what key rotation walks)."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


def reencrypt_all(batch: int = 500) -> int:
    """Re-encrypt every secret with the first key; returns the number of rows rewritten."""
    rewritten = 0
    for model, names in encrypted_fields():
        manager = model._base_manager
        last = 0
        while True:
            rows = list(manager.filter(pk__gt=last).order_by("pk").values_list("pk", *names)[:batch])
            if not rows:
                break
            for pk, *values in rows:
                # values_list applies from_db_value: these are the plain texts, encrypted again by the update.
                changes = {name: value for name, value in zip(names, values, strict=True) if value}
                if changes:
                    manager.filter(pk=pk).update(**changes)
                    rewritten += 1
                last = pk
    return rewritten
