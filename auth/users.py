"""Users. In local mode (the default) one owner account owns every job and artifact."""
from __future__ import annotations

from storage.models import User

LOCAL_OWNER_EMAIL = "owner@localhost"


def local_owner() -> User:
    """The local owner, created on first use."""
    user, _ = User.get_or_create(email=LOCAL_OWNER_EMAIL, defaults={"name": "Local owner", "role": "admin"})
    return user
