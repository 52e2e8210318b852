"""The node kinds Atelier knows, in one explicit registry. Each module declares one kind (the load module,
three); adding a kind is its module, its executor (`pipelines/executors.py`) and a line here."""
from pipelines.node import NodeRegistry
from pipelines.nodes import (canny, edit, img2img, img2vid, inpaint, interpolate, load, outpaint, txt2img, txt2vid,
                             upscale)

REGISTRY = NodeRegistry((
    load.LOAD_IMAGE,
    load.LOAD_MASK,
    load.LOAD_VIDEO,
    txt2img.TXT2IMG,
    img2img.IMG2IMG,
    edit.EDIT,
    canny.CANNY,
    inpaint.INPAINT,
    outpaint.OUTPAINT,
    upscale.UPSCALE,
    img2vid.IMG2VID,
    txt2vid.TXT2VID,
    interpolate.INTERPOLATE,
))
