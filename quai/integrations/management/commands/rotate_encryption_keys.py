"""Re-encrypt every secret at rest with the first key of QUAI_ENCRYPTION_KEYS (see quai/core/crypto.py).

Rotation: put the new key first in QUAI_ENCRYPTION_KEYS and keep the old ones after it, run this command, then
remove the old keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from quai.core.crypto import reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (shop credentials, webhook secrets, carrier credentials) with the first "
        "encryption key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            count = reencrypt_all()
        self.stdout.write(f"{count} row(s) re-encrypted with the first key.")
