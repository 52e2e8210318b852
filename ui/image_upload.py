"""`ImageUpload`: the image inputs of the forms, which say plainly when a dropped file is not an image.

Gradio's gr.Image opens every upload with PIL before any handler runs; a text file or a broken PNG
failed there with PIL's own error, which names the server's temporary path. This one says what was
wrong and what to do instead; the file is never stored (the services check every image again when a
request is submitted).
"""
from __future__ import annotations

import gradio as gr
import PIL.Image

NOT_AN_IMAGE = ("That file is not an image Atelier can read; drop a PNG, JPEG or WebP (a PNG made by Atelier "
                "or AUTOMATIC1111 also brings its settings).")


class ImageUpload(gr.Image):
    """gr.Image, drawn by the same frontend, whose unreadable uploads raise NOT_AN_IMAGE as a gr.Error."""

    def get_block_name(self) -> str:
        return "image"          # Gradio's documented hook: use gr.Image's Svelte component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, PIL.Image.DecompressionBombError):    # UnidentifiedImageError is an OSError
            raise gr.Error(NOT_AN_IMAGE) from None
