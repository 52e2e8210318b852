"""Frame interpolation by dense optical flow: more frames per second without downloaded weights.

Between each pair of neighbouring frames I0, I1 we estimate the flow both ways with Farnebäck's
polynomial-expansion method (G. Farnebäck, "Two-Frame Motion Estimation Based on Polynomial
Expansion", SCIA 2003; OpenCV's `calcOpticalFlowFarneback`). For a time t in (0, 1) the flows from
the unknown frame back to its neighbours are approximated from those two, as in Super SloMo
(H. Jiang et al., "Super SloMo: High Quality Estimation of Multiple Intermediate Frames for Video
Interpolation", CVPR 2018, eq. 4, https://arxiv.org/abs/1712.00080):

    F(t→0) = −(1−t)·t·F(0→1) + t²·F(1→0)
    F(t→1) = (1−t)²·F(0→1) − t·(1−t)·F(1→0)

Both neighbours are warped backwards along those flows (`cv2.remap`) and blended with weights
(1−t) and t (eq. 1 there, without the learned visibility maps). It is a classical interpolator:
smooth motion comes out well; occlusions, and objects that move farther than their own size
between two frames, leave soft ghosts. A learned interpolator (RIFE, FILM) can take its place
when one is configured.

n frames become (n−1)·factor + 1; the originals stay at positions 0, factor, 2·factor, ... as the
very same images (same pixels, same objects).
"""
from __future__ import annotations

import cv2
import numpy as np
import PIL.Image

FACTORS = (2, 4)
# Farnebäck parameters: a 4-level pyramid and a 15-pixel window; a 5-pixel polynomial neighbourhood
# with sigma 1.2, as OpenCV's documentation recommends. A 16-pixel square moving 12 pixels per frame
# is followed exactly; one moving farther than its own size is not.
_FARNEBACK = dict(pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) with source(x) ≈ target(x + flow(x)), from grey levels."""
    return cv2.calcOpticalFlowFarneback(source, target, None, **_FARNEBACK)


def _warp(image: np.ndarray, flow: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`image` sampled at x + flow(x) (backward warping, bilinear, edges replicated), as float32."""
    coords = grid + flow
    return cv2.remap(image, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _between(first: np.ndarray, second: np.ndarray, times: list[float]) -> list[np.ndarray]:
    """Frames at each t in `times` between two RGB float32 frames."""
    grey0 = cv2.cvtColor(np.rint(first).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    grey1 = cv2.cvtColor(np.rint(second).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    flow01, flow10 = _flow(grey0, grey1), _flow(grey1, grey0)
    height, width = grey0.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid = np.stack([xs, ys], axis=-1)
    out = []
    for t in times:
        flow_t0 = -(1 - t) * t * flow01 + t * t * flow10
        flow_t1 = (1 - t) ** 2 * flow01 - t * (1 - t) * flow10
        blended = (1 - t) * _warp(first, flow_t0, grid) + t * _warp(second, flow_t1, grid)
        out.append(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
    return out


def interpolate(frames: list[PIL.Image.Image], factor: int) -> list[PIL.Image.Image]:
    """`factor` times the frame rate: `factor − 1` new frames between each pair of neighbours.

    Args:
        frames: the video, all frames one size, any mode (new frames are RGB; originals are returned
            as given).
        factor: 2 or 4. Play the result at `factor` times the input's fps to keep its duration.
    Returns:
        (len(frames) − 1)·factor + 1 frames; `frames[i]` is at position i·factor. One frame (or none)
        comes back unchanged.
    Raises:
        ValueError: for another factor, or frames of different sizes.
    """
    if isinstance(factor, bool) or factor not in FACTORS:
        raise ValueError(f"interpolation factor must be 2 or 4; got {factor!r}")
    if len(frames) < 2:
        return list(frames)
    size = frames[0].size
    for index, frame in enumerate(frames):
        if frame.size != size:
            raise ValueError(f"all frames must have one size; frame 0 is {size[0]}x{size[1]}, "
                             f"frame {index} is {frame.size[0]}x{frame.size[1]}")
    times = [k / factor for k in range(1, factor)]
    arrays = [np.asarray(frame.convert("RGB"), dtype=np.float32) for frame in frames]
    out: list[PIL.Image.Image] = []
    for index in range(len(frames) - 1):
        out.append(frames[index])
        out.extend(PIL.Image.fromarray(a, "RGB") for a in _between(arrays[index], arrays[index + 1], times))
    out.append(frames[-1])
    return out
