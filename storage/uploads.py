"""Checking images and videos people send before anything is stored or decoded in full.

Only PNG, JPEG and WebP images are accepted. The size is read from the header first, so an image over
the pixel limit (a decompression bomb included) is refused without being decoded; a truncated or
damaged file is refused when decoding fails. Videos must be MP4 files ffmpeg can read, within the pixel
and frame limits.
"""
from __future__ import annotations

import io
import warnings

import PIL.Image

from storage.video import count_frames, video_info

FORMATS = {"PNG": ("image/png", ".png"), "JPEG": ("image/jpeg", ".jpg"), "WEBP": ("image/webp", ".webp")}


class UploadRejected(ValueError):
    """The file cannot be used as an image; the message says why and what to send instead."""


def inspect_upload(data: bytes, max_pixels: int, name: str = "The file") -> tuple[str, str, int, int]:
    """Return (mime, suffix, width, height) of an acceptable image, or raise UploadRejected."""
    if not data:
        raise UploadRejected(f"{name} is empty; send a PNG, JPEG or WebP image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(io.BytesIO(data))
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise UploadRejected(f"{name} claims more pixels than any image Atelier accepts "
                             f"(limit {max_pixels:,}); it looks like a decompression bomb.") from None
    except (PIL.UnidentifiedImageError, OSError):
        raise UploadRejected(f"{name} is not an image Atelier can read; send a PNG, JPEG or WebP image.") from None
    with image:
        if image.format not in FORMATS:
            raise UploadRejected(f"{name} is a {image.format} image; send a PNG, JPEG or WebP image.")
        width, height = image.size
        if width * height > max_pixels:
            raise UploadRejected(f"{name} is {width}x{height} = {width * height:,} pixels; the limit is "
                                 f"{max_pixels:,}. Make it smaller first.")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError):
            raise UploadRejected(f"{name} is damaged or truncated; send the image again.") from None
        mime, suffix = FORMATS[image.format]
    return mime, suffix, width, height


def inspect_video_upload(data: bytes, max_pixels: int, max_frames: int,
                         name: str = "The video") -> tuple[int, int, int, float]:
    """Return (width, height, frames, fps) of an acceptable MP4 video, or raise UploadRejected."""
    if data[4:8] != b"ftyp":
        raise UploadRejected(f"{name} is not an MP4 file; send an MP4 video (H.264), e.g. one made here.")
    try:
        info = video_info(data)
    except (OSError, RuntimeError, StopIteration, KeyError, TypeError):
        raise UploadRejected(f"{name} is damaged or has no video stream ffmpeg can read; send the MP4 again.") \
            from None
    width, height = info["size"]
    if width * height > max_pixels:
        raise UploadRejected(f"{name} is {width}x{height} = {width * height:,} pixels per frame; the limit is "
                             f"{max_pixels:,}. Make it smaller first.")
    if width % 2 or height % 2:
        raise UploadRejected(f"{name} is {width}x{height}; MP4 (H.264, yuv420p) needs an even width and height.")
    frames = count_frames(data)
    if not 1 <= frames <= max_frames:
        raise UploadRejected(f"{name} has {frames} frames; a video may have 1 to {max_frames}. Cut it shorter first.")
    return width, height, frames, float(info["fps"])


def decode_image(data: bytes) -> PIL.Image.Image:
    """A stored image, fully decoded (stored images passed `inspect_upload` or were made here)."""
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
    return image
