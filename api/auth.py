"""Who is calling: the one authentication step every call but the open ones goes through.

Accepted, as the OpenSubsonic spec lists them: ``apiKey`` (the
``apiKeyAuthentication`` extension; alone, without ``u``), ``u`` with ``t`` and ``s``
(token: md5(password + salt)), and ``u`` with ``p`` (clear or ``enc:`` hex) for
old clients. Errors carry the protocol's codes: 10 a missing parameter, 40 a
wrong user or password, 43 two mechanisms at once, 44 an unknown API key.
"""

from __future__ import annotations

import hmac
import threading
import time

from api import credentials
from api.call import Call
from api.context import Context
from api.respond import BAD_API_KEY, CONFLICTING_AUTH, MISSING, WRONG_CREDENTIALS, ApiError
from connectors import users

CACHE_S = 60.0  # a checked credential is trusted this long: a removed user or reset key stops working within it
_checked: dict[tuple, tuple[str, float]] = {}
_lock = threading.Lock()


def authenticate(ctx: Context, call: Call) -> str:
    """The listener's name, or :class:`ApiError`; a credential checked in the last CACHE_S seconds is not
    looked up again (a player sends the same one with every call)."""
    hit = cached_user(call)
    if hit is not None:
        return hit
    key = _key(call)
    now = time.monotonic()
    user = _check(ctx, *key)
    with _lock:
        if len(_checked) > 10_000:
            _checked.clear()
        _checked[key] = (user, now)
    return user


def _key(call: Call) -> tuple:
    return call.one("apiKey"), call.one("u"), call.one("t"), call.one("s"), call.one("p")


def cached_user(call: Call) -> str | None:
    """The listener a credential named within the last CACHE_S seconds (no database), else None."""
    with _lock:
        hit = _checked.get(_key(call))
    return hit[0] if hit is not None and time.monotonic() - hit[1] < CACHE_S else None


def _check(ctx: Context, api_key, name, token, salt, password) -> str:
    if api_key:
        if name or token or password:
            raise ApiError(CONFLICTING_AUTH, "give apiKey alone, without u, p or t")
        doc = users.by_api_key_hash(ctx.db, credentials.key_hash(api_key))
        if doc is None:
            raise ApiError(BAD_API_KEY, "unknown API key")
        return doc["_id"]
    if not name:
        raise ApiError(MISSING, "required parameter is missing: u (or apiKey)")
    if token and password:
        raise ApiError(CONFLICTING_AUTH, "give either t and s, or p, not both")
    if not (token and salt) and not password:
        raise ApiError(MISSING, "required parameter is missing: t and s, p, or apiKey")
    doc = users.signing_in(ctx.db, name)
    stored = credentials.unseal(ctx.secret, doc) if doc else None
    if stored is None:
        raise ApiError(WRONG_CREDENTIALS, "wrong username or password")
    if token and salt:
        ok = credentials.token_matches(stored, salt, token)
    else:
        given = credentials.plain_password(password or "")
        ok = given is not None and hmac.compare_digest(given.encode("utf-8"), stored.encode("utf-8"))
    if not ok:
        raise ApiError(WRONG_CREDENTIALS, "wrong username or password")
    return doc["_id"]  # the listener's name as the account has it, whatever case the player sent
