"""Share links: a read-only view of some of a user's artifacts for anyone holding the link's token.

Tokens are 32 random bytes (unguessable); the owner lists and revokes them in the Account tab. A link
made with "show the recipe" off serves each file without the recipe inside it (a PNG's `parameters`
and `atelier` text chunks, an MP4's metadata keys), the pictures unchanged; a link with it on serves
the stored file, and its page shows how the first picture was made, but only from the link owner's
own job: bytes they uploaded carry nothing of theirs to show.
"""
from __future__ import annotations

import json
import secrets
import time

from pipelines.errors import AtelierError, NotFound
from storage.artifacts import find_artifact, own_holding
from storage.models import Artifact, ArtifactOwner, ShareLink, User

MAX_SHARED = 50


def create_share(user: User, artifact_ids, show_recipe: bool = True) -> ShareLink:
    """A link to `artifact_ids` (which `user` must hold); raises NotFound for any they don't."""
    if isinstance(artifact_ids, str):
        artifact_ids = [a for a in artifact_ids.replace(",", " ").split() if a]
    if not artifact_ids or len(artifact_ids) > MAX_SHARED:
        raise AtelierError(f"Share between 1 and {MAX_SHARED} artifacts; got {len(artifact_ids or [])}.",
                           code="bad_share", field="artifact_ids")
    for artifact_id in artifact_ids:
        if find_artifact(user, artifact_id) is None:
            raise NotFound(f"No artifact {artifact_id!r}. Check the id; the Gallery lists yours.", field="artifact_ids")
    return ShareLink.create(token=secrets.token_urlsafe(32), owner=user, artifact_ids=json.dumps(list(artifact_ids)),
                            show_recipe=bool(show_recipe), created_at=time.time())


def list_shares(user: User) -> list[dict]:
    return [{"id": s.id, "token": s.token, "artifact_ids": s.artifacts, "show_recipe": s.show_recipe,
             "created_at": s.created_at, "revoked": s.revoked_at is not None}
            for s in ShareLink.select().where(ShareLink.owner == user).order_by(ShareLink.created_at.desc())]


def revoke_share(user: User, share_id) -> None:
    """Revoke one of `user`'s links by its id; another user's link is "not found"."""
    if not isinstance(share_id, int) or not ShareLink.select().where(
            (ShareLink.id == share_id) & (ShareLink.owner == user)).exists():
        raise NotFound(f"No share link {share_id!r}; the Account tab lists yours.", field="share_id")
    ShareLink.update(revoked_at=time.time()).where((ShareLink.id == share_id) & ShareLink.revoked_at.is_null()).execute()


def open_share(token) -> tuple[ShareLink, list[Artifact]] | None:
    """The live link for `token` and its artifacts (those its owner still holds); None otherwise."""
    if not isinstance(token, str) or not token:
        return None
    link = ShareLink.get_or_none((ShareLink.token == token) & ShareLink.revoked_at.is_null())
    if link is None:
        return None
    found = (find_artifact(link.owner, artifact_id) for artifact_id in link.artifacts)
    return link, [a for a in found if a is not None]


def recipe_source(link: ShareLink, artifact: Artifact) -> ArtifactOwner | None:
    """The link owner's holding of `artifact` if one of their own jobs made it and the link shows the
    recipe: the job whose settings the share page may show. None otherwise."""
    if not link.show_recipe:
        return None
    holding = own_holding(link.owner, artifact.id)
    made_by_them = holding is not None and holding.made and holding.job is not None
    return holding if made_by_them and holding.job.owner_id == link.owner_id else None
