"""Where integrations' secrets were first encrypted; the module now lives in core (``quai.core.crypto``) so that
apps below integrations (shipping's carrier credentials) use it too. Kept for the import path that integrations'
migrations name (``quai.integrations.crypto.EncryptedTextField``)."""

from quai.core.crypto import (
    TOKEN_PREFIX,
    EncryptedTextField,
    configured_keys,
    decrypt,
    encrypt,
    encrypted_fields,
    fernet,
    is_token,
    reencrypt_all,
    rotate,
)

__all__ = [
    "TOKEN_PREFIX",
    "EncryptedTextField",
    "configured_keys",
    "decrypt",
    "encrypt",
    "encrypted_fields",
    "fernet",
    "is_token",
    "reencrypt_all",
    "rotate",
]
