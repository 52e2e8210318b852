"""What the compiler knows of its inputs and of what each step makes, without opening any file."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class InputFacts:
    """A stored image or video as the compiler sees it: its size; for a mask, whether it has no white
    pixel at all; for a video, its frames and fps."""

    width: int
    height: int
    mask_empty: bool = False
    frames: int = 0
    fps: float = 0.0


# (artifact id, used as: "image", "mask" or "video") -> facts; None if the caller may not use it as that.
Describe = Callable[[str, str], "InputFacts | None"]


@dataclass(frozen=True)
class Made:
    """What a step makes: `count` images (or videos) of `width` x `height`; for masks, whether they are
    empty; for videos, their `frames` and `fps`."""

    count: int
    width: int
    height: int
    mask_empty: bool = False
    frames: int = 0
    fps: float = 0.0
