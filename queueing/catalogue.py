"""The artifact catalogue, per user: what they hold (a page at a time, filtered and searched: `browse`), how each
artifact was made (recipe, lineage, a video's poster), exports and downloads, deleting one's own holding, and
replays of a recipe as a new job. Apart from the job lifecycle (queueing/service.py),
which a replay goes through like any submission: checked, limited and charged. Another user's artifact is
"not found".
"""
from __future__ import annotations

import json

from pipelines import environment
from pipelines.errors import AtelierError, NotFound
from pipelines.plan import ExecutionPlan
from queueing.service import JobService
from queueing.uploads import Upload
from storage.artifacts import (GALLERY_FILTERS, delete_holding, file_recipe, find_artifact, find_holding,
                               gallery_query, lineage_of, own_holding, recent_artifacts, recipe_in, recipe_of)
from storage.blobs import BlobStore
from storage.models import Artifact, ArtifactOwner, Job, User
from storage.video import MP4_MIME, encode_gif, encode_webp, read_mp4

PAGE_SIZE = 48          # Gallery items per page: 12 rows of 4


class ArtifactCatalogue:
    """Artifacts in `blobs` as each user holds them; replays are submitted to `jobs`."""

    def __init__(self, jobs: JobService, blobs: BlobStore):
        self.jobs = jobs
        self.blobs = blobs

    def artifact(self, user: User, artifact_id) -> Artifact:
        """One of `user`'s artifacts, as a file (type, size, where it is stored); how they hold it (kind,
        job, seed) is `holding`. Raises NotFound for ids they don't hold."""
        artifact = find_artifact(user, artifact_id)
        if artifact is None:
            raise NotFound(f"No artifact {artifact_id!r}. Check the id; the Gallery lists yours.",
                           field="artifact_id")
        return artifact

    def holding(self, user: User, artifact_id) -> ArtifactOwner:
        """How `user` holds one of their artifacts: kind, the job of theirs that made it, its place in that
        job's plan and its seed (`.artifact` is the file). Raises NotFound for ids they don't hold."""
        holding = find_holding(user, artifact_id)
        if holding is None:
            raise NotFound(f"No artifact {artifact_id!r}. Check the id; the Gallery lists yours.",
                           field="artifact_id")
        return holding

    def recent_artifacts(self, user: User, limit: int = 100) -> list[ArtifactOwner]:
        """The user's holdings (`.artifact` is each file), newest first."""
        return recent_artifacts(user, limit)

    def browse(self, user: User, shown: str = "outputs", search: str = "", page: int = 1,
               per_page: int = PAGE_SIZE) -> tuple[list[ArtifactOwner], int, int]:
        """One page of the user's Gallery: (the holdings on it, how many there are in all, the page's number).

        Args:
            shown: "outputs" (what their jobs made), "uploads" (files they sent, painted masks too), "videos"
                or "all".
            search: words that the prompt or the model id of each must contain (any case); "" = everything.
            page: from 1; past the last page gives the last (an empty list only when there is nothing).
            per_page: holdings per page.

        The database counts and pages (LIMIT / OFFSET), so a page of thousands costs one page's rows."""
        if shown not in GALLERY_FILTERS:
            raise AtelierError(f"Unknown filter {shown!r}: use one of {', '.join(GALLERY_FILTERS)}.",
                               code="bad_filter", field="filter")
        if not isinstance(search, str) or len(search) > 200:
            raise AtelierError("The search is text of at most 200 characters.", code="bad_search", field="query")
        if isinstance(page, bool) or not isinstance(page, (int, float)) or page != int(page):
            raise AtelierError(f"The page is a whole number from 1; got {page!r}.", code="bad_page", field="page")
        query = gallery_query(user, shown, search)
        total = query.count()
        page = min(max(int(page), 1), max(1, -(-total // per_page)))
        return list(query.paginate(page, per_page)), total, page

    def gallery_item(self, holding: ArtifactOwner) -> dict:
        """What the Gallery and /gallery show of one holding."""
        artifact = holding.artifact
        return {"artifact_id": artifact.id, "kind": holding.kind, "mime": artifact.mime, "width": artifact.width,
                "height": artifact.height, "prompt": holding.prompt, "model": holding.model, "seed": holding.seed,
                "frames": artifact.frames, "created_at": holding.created_at}

    def delete(self, user: User, artifact_id) -> list[str]:
        """Take one of `user`'s artifacts out of what they hold (a video with its poster); returns the ids of
        the artifacts whose rows and files went too (those nobody else holds and nothing was made from).
        Raises NotFound for ids they don't hold themselves."""
        if own_holding(user, artifact_id) is None:
            raise NotFound(f"No artifact {artifact_id!r} of yours to delete. Check the id; the Gallery lists yours.",
                           field="artifact_id")
        return delete_holding(self.blobs, user, artifact_id)

    def download(self, user: User, artifact_id) -> tuple[bytes, str]:
        """One of `user`'s files as stored (byte for byte, recipe included) and a file name for it:
        atelier-SEED-ID.png for what their job made, upload-ID.png for what they sent (ID: the first 12 hex
        digits of the artifact id). Raises NotFound for ids they don't hold."""
        holding = self.holding(user, artifact_id)
        artifact = holding.artifact
        suffix = artifact.blob_key[64:] or ".bin"
        stem = f"atelier-{holding.seed}" if holding.made and holding.seed is not None else holding.kind
        return self.blobs.get(artifact.blob_key), f"{stem}-{artifact.id[:12]}{suffix}"

    def artifact_path(self, artifact: Artifact) -> str:
        return str(self.blobs.path(artifact.blob_key))

    def artifact_info(self, user: User, artifact_id) -> dict:
        """An artifact as `user` holds it: the file's facts, and how they came by it (kind, job, plan hash,
        seed, recipe, the parents and children their own jobs made). Bytes someone else made and this
        user uploaded are their "upload", with no job, recipe or lineage of the other's."""
        holding = self.holding(user, artifact_id)
        artifact = holding.artifact
        parents, children = lineage_of(holding)
        info = {"artifact_id": artifact.id, "kind": holding.kind, "mime": artifact.mime, "size": artifact.size,
                "width": artifact.width, "height": artifact.height, "seed": holding.seed,
                "job_id": holding.job_id, "plan_hash": holding.plan_hash, "created_at": holding.created_at,
                "recipe": recipe_of(self.blobs, holding), "parents": parents, "children": children}
        if artifact.mime == MP4_MIME:
            info["video"] = {"frames": artifact.frames, "fps": artifact.fps,
                             "duration": round(artifact.frames / artifact.fps, 3) if artifact.fps else 0.0}
            poster = self.poster(holding)
            info["poster_id"] = poster.id if poster is not None else ""
        return info

    def poster(self, video: ArtifactOwner) -> Artifact | None:
        """The stored first frame of a video its holder made here (None for uploaded videos)."""
        posters = [e["artifact_id"] for e in lineage_of(video)[1] if e["relation"] == "poster_of"]
        return Artifact.get_or_none(Artifact.id == posters[0]) if posters else None

    def animation(self, user: User, artifact_id, fmt: str) -> bytes:
        """One of `user`'s videos as a looping animation for sharing: fmt "gif" or "webp"."""
        encoders = {"gif": encode_gif, "webp": encode_webp}
        if fmt not in encoders:
            raise AtelierError(f"Unknown format {fmt!r}: use \"gif\" or \"webp\".", code="bad_format",
                               field="format")
        artifact = self.artifact(user, artifact_id)
        if artifact.mime != MP4_MIME:
            raise AtelierError(f"Artifact {artifact_id} is {artifact.mime}, not a video; choose one of your videos.",
                               code="not_a_video", field="artifact_id")
        frames, fps = read_mp4(self.blobs.get(artifact.blob_key))
        return encoders[fmt](frames, fps)

    def replay(self, user: User, artifact_id) -> Job:
        """Queue again the plan in the recipe `artifact_id`'s file carries (`file_recipe`), as a new
        submission of it by `user` (`submit_plan`: checked, limited and charged like one). That is their own
        job's recipe for what they made, and the file's for a file they uploaded (an Atelier PNG from
        elsewhere): the plan may only load inputs they hold, so a file cannot reach another user's."""
        holding = self.holding(user, artifact_id)
        plan = _plan_in(file_recipe(self.blobs, holding.artifact), f"Artifact {artifact_id}")
        return self.jobs.submit_plan(user, plan, replay_of=holding.artifact_id)

    def replay_file(self, user: User, upload: Upload) -> Job:
        """`replay` for a file the caller sends (a PNG or MP4 Atelier made, here or on another install),
        checked by `check_upload` or `check_video_upload`: it is stored as their upload only if the replay
        is accepted."""
        plan = _plan_in(recipe_in(upload.data, upload.mime), "The file")
        return self.jobs.submit_plan(user, plan, replay_of=upload.artifact_id, pending=(upload,))

    def replay_outcome(self, user: User, job: Job) -> dict:
        """For a finished replay job: the artifact standing where the original stood (a video's poster for
        a poster), whether its bytes are identical to the original's, what differed in the recorded
        environment, and a `verdict` sentence saying so."""
        original = self.holding(user, job.replay_of)
        recipe = file_recipe(self.blobs, original.artifact)
        ids = job.artifact_ids
        position = ExecutionPlan.from_json(job.plan).output_position(recipe.get("step", ""), recipe.get("index", 0))
        new_id = ids[position] if position is not None and position < len(ids) else ""
        made = find_holding(user, new_id) if new_id else None
        if made is not None and made.artifact.mime == MP4_MIME and original.artifact.mime != MP4_MIME:
            poster = self.poster(made)               # the original was a video's poster: compare posters
            new_id = poster.id if poster is not None else ""
        before = recipe.get("environment") if isinstance(recipe.get("environment"), dict) else {}
        after = json.loads(job.result).get("environment", {})
        identical = new_id == original.artifact_id
        return {"artifact_id": new_id, "original_id": original.artifact_id, "identical": identical,
                "differences": environment.differences(before, after),
                "verdict": environment.verdict(identical, before, after)}


def _plan_in(recipe: dict, what: str) -> ExecutionPlan:
    """The plan of a file's recipe; AtelierError saying why there is none to replay."""
    if not isinstance(recipe.get("plan"), dict):
        raise AtelierError(f"{what} has no recipe to replay: the file carries none (it was not made by Atelier, or "
                           "its metadata was removed).", code="no_recipe", field="artifact_id")
    try:
        return ExecutionPlan.from_dict(recipe["plan"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AtelierError(f"{what}'s recipe is damaged or from a version of Atelier this one cannot read, so it "
                           "cannot be replayed.", code="bad_recipe", field="artifact_id") from None
