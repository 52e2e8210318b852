"""API keys: `atl_` + 40 random characters, shown once, stored as their sha256, listed by prefix.

A key is high-entropy, so a plain sha256 is enough to store it (unlike a password, it cannot be
guessed from a list). Revoking sets `revoked_at`; the next call with the key is refused.
"""
from __future__ import annotations

import secrets
import time

from auth.accounts import sha256
from pipelines.errors import NotFound
from storage.models import ApiKey, User

PREFIX_CHARS = 12
LAST_USED_RESOLUTION = 60.0   # seconds; every request checks the key, few need to write


def create_key(user: User, name: str = "") -> tuple[ApiKey, str]:
    """A new key for `user`: (its row, the key itself, which is never shown again)."""
    key = "atl_" + secrets.token_urlsafe(30)
    row = ApiKey.create(user=user, name=(name or "")[:100], prefix=key[:PREFIX_CHARS], key_hash=sha256(key),
                        created_at=time.time())
    return row, key


def user_for_key(key) -> User | None:
    """The user a live key belongs to; None for unknown or revoked keys."""
    if not isinstance(key, str) or not key.startswith("atl_"):
        return None
    row = (ApiKey.select(ApiKey, User).join(User)
           .where((ApiKey.key_hash == sha256(key)) & ApiKey.revoked_at.is_null()).first())
    if row is None:
        return None
    now = time.time()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.update(last_used_at=now).where(ApiKey.id == row.id).execute()
    return row.user


def list_keys(user: User) -> list[dict]:
    """The user's keys, newest first, by prefix (the rest of a key is never stored)."""
    return [{"id": k.id, "name": k.name, "prefix": k.prefix, "created_at": k.created_at,
             "last_used_at": k.last_used_at, "revoked": k.revoked_at is not None}
            for k in ApiKey.select().where(ApiKey.user == user).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())]


def revoke_key(user: User, key_id) -> None:
    """Revoke one of `user`'s keys by its id; another user's key is "not found"."""
    if not isinstance(key_id, int) or not ApiKey.select().where((ApiKey.id == key_id) & (ApiKey.user == user)).exists():
        raise NotFound(f"No API key {key_id!r}; the Account tab lists yours.", field="key_id")
    ApiKey.update(revoked_at=time.time()).where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null()).execute()
