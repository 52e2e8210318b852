"""The nodes that bring a stored file into a workflow: load_image, load_mask (a stored image used as a mask)
and load_video, each by artifact id. Free; their outputs are not stored again."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.node import NodeKind, StepKind
from pipelines.plan import LoadImageStep, LoadVideoStep
from pipelines.spec import LoadImage, LoadMask, LoadVideo


def compile_image(compiler, node, inputs, check, request, as_mask: bool = False):
    artifact_id = node.params.artifact_id
    facts = None
    if request.describe and isinstance(artifact_id, str) and artifact_id:
        facts = request.describe(artifact_id, "mask" if as_mask else "image")
    if facts is None:
        check.fail("unknown_image", "artifact_id", f"No image {artifact_id!r}. Upload it first, or use the id "
                   "of one of your artifacts.")
        return None
    step = LoadImageStep(id=node.id, artifact_id=artifact_id, as_mask=as_mask, width=facts.width,
                         height=facts.height)
    return step, Made(1, facts.width, facts.height, mask_empty=as_mask and facts.mask_empty)


def read_back_image(step: LoadImageStep):
    return (LoadMask if step.as_mask else LoadImage)(artifact_id=step.artifact_id)


def compile_video(compiler, node, inputs, check, request):
    artifact_id = node.params.artifact_id
    facts = None
    if request.describe and isinstance(artifact_id, str) and artifact_id:
        facts = request.describe(artifact_id, "video")
    if facts is None:
        check.fail("unknown_video", "artifact_id", f"No video {artifact_id!r}. Upload an MP4 first, or use the "
                   "id of one of your videos.")
        return None
    step = LoadVideoStep(id=node.id, artifact_id=artifact_id, width=facts.width, height=facts.height,
                         frames=facts.frames, fps=facts.fps)
    return step, Made(1, facts.width, facts.height, frames=facts.frames, fps=facts.fps)


LOAD_IMAGE_STEP = StepKind(type=LoadImageStep, read_back=read_back_image)
LOAD_IMAGE = NodeKind(params=LoadImage, compile=compile_image, steps=(LOAD_IMAGE_STEP,))
LOAD_MASK = NodeKind(params=LoadMask, steps=(LOAD_IMAGE_STEP,),
                     compile=lambda *args: compile_image(*args, as_mask=True))
def read_back_video(step: LoadVideoStep) -> LoadVideo:
    return LoadVideo(artifact_id=step.artifact_id)


LOAD_VIDEO = NodeKind(params=LoadVideo, compile=compile_video,
                      steps=(StepKind(type=LoadVideoStep, read_back=read_back_video),))
