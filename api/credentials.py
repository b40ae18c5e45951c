"""Passwords and API keys: how they are kept and checked (pure, apart from the server's secret file).

Subsonic's token authentication sends ``t = md5(password + s)``: to check it the
server must be able to read the password. Earshot keeps each password
encrypted with a secret that lives beside the server, not in the database
(``<paths.state_root>/api-secret``, mode 600, made on first use): a copy of the
database alone does not give the passwords away. The cipher is a keystream of
HMAC-SHA256 blocks (secret, a random nonce, a counter), authenticated with a
second HMAC. API keys (the ``apiKeyAuthentication`` extension, which needs no
readable password) are kept as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "api-secret"


def server_secret(state_root: str | Path) -> bytes:
    path = Path(state_root) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _stream(secret: bytes, nonce: bytes, n: int) -> bytes:
    blocks = (
        hmac.new(secret, b"ks" + nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(n // 32 + 1)
    )
    return b"".join(blocks)[:n]


def seal(secret: bytes, password: str) -> dict[str, str]:
    """The stored form of a password: ``{"password_nonce", "password_sealed", "password_mac"}`` (hex)."""
    nonce = secrets.token_bytes(16)
    plain = password.encode("utf-8")
    sealed = bytes(a ^ b for a, b in zip(plain, _stream(secret, nonce, len(plain)), strict=True))
    mac = hmac.new(secret, b"mac" + nonce + sealed, hashlib.sha256).hexdigest()
    return {"password_nonce": nonce.hex(), "password_sealed": sealed.hex(), "password_mac": mac}


def unseal(secret: bytes, stored: dict) -> str | None:
    """The password of a stored account, or None when it was sealed with another secret."""
    try:
        nonce, sealed = bytes.fromhex(stored["password_nonce"]), bytes.fromhex(stored["password_sealed"])
    except (KeyError, ValueError, TypeError):
        return None
    mac = hmac.new(secret, b"mac" + nonce + sealed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, str(stored.get("password_mac", ""))):
        return None
    return bytes(a ^ b for a, b in zip(sealed, _stream(secret, nonce, len(sealed)), strict=True)).decode("utf-8")


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_credentials(secret: bytes, password: str | None) -> tuple[dict, str, str]:
    """(what to store, the password, a new API key); a password is generated when none is given."""
    password = password or secrets.token_urlsafe(12)
    api_key = secrets.token_urlsafe(24)
    return {**seal(secret, password), "api_key_sha256": key_hash(api_key)}, password, api_key


def token_matches(password: str, salt: str, token: str) -> bool:
    expected = hashlib.md5((password + salt).encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's own rule
    return hmac.compare_digest(expected, token.lower())


def plain_password(p: str) -> str | None:
    """``p`` as sent: clear text, or ``enc:`` and its UTF-8 bytes in hex (None when that hex is broken)."""
    if not p.startswith("enc:"):
        return p
    try:
        return bytes.fromhex(p[4:]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
