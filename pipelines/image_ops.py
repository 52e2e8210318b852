"""Pixel operations around inpainting, outpainting and upscaling: masks, crops, padding, resampling and tiles. Pure PIL/numpy, no torch.

Conventions: a box is `(left, top, right, bottom)`, right/bottom exclusive as in PIL; a size is
`(width, height)`; a mask is a mode "L" image where any nonzero pixel is painted (255 = repaint
fully) and only 0 means keep. Functions return new images and never mutate their inputs.
"""

import numpy as np
from PIL import Image, ImageFilter, ImageOps

FILL_MODES = ("original", "fill", "noise")
Box = tuple[int, int, int, int]


def _check_size(size: tuple[int, int], name: str = "size") -> None:
    if len(size) != 2 or not all(isinstance(v, int) and v >= 1 for v in size):
        raise ValueError(f"{name} must be (width, height) with positive ints, got {size!r}.")


def _check_same_size(**images: Image.Image) -> None:
    if len({im.size for im in images.values()}) > 1:
        sizes = ", ".join(f"{name} {im.width}x{im.height}" for name, im in images.items())
        raise ValueError(f"Images must have the same size, got {sizes}.")


def _check_box(box: Box, size: tuple[int, int]) -> None:
    left, top, right, bottom = box
    if not (0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]):
        raise ValueError(f"Box {tuple(box)} is not inside the {size[0]}x{size[1]} image.")


def _pixels(image: Image.Image) -> np.ndarray:
    if image.mode not in ("L", "RGB", "RGBA"):
        raise ValueError(f"Expected an L, RGB or RGBA image, got mode {image.mode!r}; convert it (to_rgb).")
    return np.asarray(image)


def _mask_array(mask: Image.Image) -> np.ndarray:
    if mask.mode not in ("L", "1"):
        raise ValueError(f"A mask must be mode 'L', got {mask.mode!r}; normalise it with to_mask first.")
    return np.asarray(mask.convert("L"))


def _binary(painted: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(painted, 255, 0).astype(np.uint8))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _grow(lo: int, hi: int, length: int, limit: int) -> tuple[int, int]:
    """Grow [lo, hi) to `length` (at most `limit`) around its centre, shifted inward into [0, limit)."""
    length = min(length, limit)
    lo = max(0, min(lo - (length - (hi - lo)) // 2, limit - length))
    return lo, lo + length


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any image (RGBA, LA, P, L, ...) to RGB.

    Transparent pixels are composited on white, as A1111 does for init images (its default
    `img2img_background_color`); black would darken the anti-aliased edges of cut-outs.
    """
    if image.has_transparency_data:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def to_mask(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """Normalise an uploaded mask to mode "L" with values 0 or 255 (white = repaint) at `size`.

    Args:
        image (`PIL.Image.Image`): any mode. If some pixel is not opaque (a brush layer), painted
            means alpha > 0, so black strokes count; otherwise painted means luminance > 127.
        size (`tuple[int, int]`): (width, height) of the image the mask applies to.

    Returns:
        `(mask, resized)`; `resized` is True when the mask had another size and was scaled with
        NEAREST (values stay 0/255), so the caller can tell the user.
    """
    _check_size(size)
    alpha = np.asarray(image.convert("RGBA"))[..., 3] if image.has_transparency_data else None
    if alpha is not None and alpha.min() < 255:
        mask = _binary(alpha > 0)
    else:
        mask = _binary(np.asarray(image.convert("L")) > 127)
    if mask.size == tuple(size):
        return mask, False
    return mask.resize(size, Image.Resampling.NEAREST), True


def mask_from_layers(background_size: tuple[int, int], layers: list[Image.Image]) -> Image.Image:
    """Union of the painted pixels (alpha > 0) of Gradio ImageEditor layers, as an L mask 0/255.

    Args:
        background_size (`tuple[int, int]`): (width, height) of the editor's background; each layer
            must have this size (ValueError otherwise). No layers gives an all-black mask.
        layers (`list[PIL.Image.Image]`): the layers; one without alpha counts as fully painted.
    """
    _check_size(background_size, "background_size")
    painted = np.zeros(background_size[::-1], dtype=bool)
    for i, layer in enumerate(layers):
        if layer.size != tuple(background_size):
            raise ValueError(f"Layer {i} is {layer.width}x{layer.height}, the background is "
                             f"{background_size[0]}x{background_size[1]}.")
        painted |= np.asarray(layer.convert("RGBA"))[..., 3] > 0
    return _binary(painted)


def invert_mask(mask: Image.Image) -> Image.Image:
    """Swap repaint and keep: 255 - value (mask: mode L)."""
    return ImageOps.invert(Image.fromarray(_mask_array(mask)))


def is_empty(mask: Image.Image) -> bool:
    """True when no pixel is painted (all values 0), i.e. inpainting would change nothing."""
    return not _mask_array(mask).any()


def blur_mask(mask: Image.Image, radius: int) -> Image.Image:
    """Feather a mask with a Gaussian blur of `radius` px (int >= 0; 0 returns an unchanged copy)."""
    if radius < 0:
        raise ValueError(f"Mask blur radius must be >= 0, got {radius}.")
    mask = Image.fromarray(_mask_array(mask))
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def mask_box(mask: Image.Image, padding: int, size_multiple: int = 8) -> Box:
    """Bounding box of the painted (nonzero) pixels of an L `mask`, grown for context, rounded for the VAE.

    `padding` (int >= 0) px are added on each side, clamped to the image; then the box grows around
    its centre, shifted inward at the borders, until each side is a multiple of `size_multiple`
    (int >= 1, default 8), or the whole image side if that is too small. ValueError on an empty mask.
    """
    if padding < 0 or size_multiple < 1:
        raise ValueError(f"Need padding >= 0 and size_multiple >= 1, got {padding} and {size_multiple}.")
    bbox = Image.fromarray(_mask_array(mask)).getbbox()
    if bbox is None:
        raise ValueError("The mask is empty: paint the area to repaint.")
    w, h = mask.size
    left, right = max(0, bbox[0] - padding), min(w, bbox[2] + padding)
    top, bottom = max(0, bbox[1] - padding), min(h, bbox[3] + padding)
    left, right = _grow(left, right, _round_up(right - left, size_multiple), w)
    top, bottom = _grow(top, bottom, _round_up(bottom - top, size_multiple), h)
    return left, top, right, bottom


def crop_for_inpaint(image: Image.Image, mask: Image.Image, padding: int,
                     target: tuple[int, int]) -> tuple[Image.Image, Image.Image, Box]:
    """A1111's "inpaint only masked area at full resolution"; undo it with `paste_back`.

    Crops `image` and its L `mask` to `mask_box(mask, padding)`, grown (inside the image) to the
    aspect ratio of `target` (w, h) so nothing is stretched, and resizes the crops to `target`
    (LANCZOS for the image, BILINEAR for the mask). Returns `(image_crop, mask_crop, box)`.
    """
    _check_size(target, "target")
    _check_same_size(image=image, mask=mask)
    left, top, right, bottom = mask_box(mask, padding)
    (tw, th), (w, h) = target, image.size
    if (right - left) * th > (bottom - top) * tw:
        top, bottom = _grow(top, bottom, round((right - left) * th / tw), h)
    else:
        left, right = _grow(left, right, round((bottom - top) * tw / th), w)
    box = (left, top, right, bottom)
    image_crop = image.crop(box).resize(target, Image.Resampling.LANCZOS)
    mask_crop = Image.fromarray(_mask_array(mask)).crop(box).resize(target, Image.Resampling.BILINEAR)
    return image_crop, mask_crop, box


def paste_back(original: Image.Image, result_crop: Image.Image, mask: Image.Image, box: Box) -> Image.Image:
    """Resize `result_crop` to `box` (LANCZOS) and blend it into a copy of `original` through the
    full-size, possibly blurred, `mask` (see `composite`); pixels where mask == 0 stay exact."""
    _check_box(box, original.size)
    size = (box[2] - box[0], box[3] - box[1])
    canvas = original.copy()
    canvas.paste(result_crop.convert(original.mode).resize(size, Image.Resampling.LANCZOS), box[:2])
    return composite(original, canvas, mask)


def composite(original: Image.Image, result: Image.Image, mask: Image.Image) -> Image.Image:
    """`result` where mask is 255, `original` where 0, blended by mask/255 in between.

    All three must have one size. `result` is converted to `original`'s mode (L, RGB or RGBA).
    Where mask == 0 the output is the original exactly, where 255 the result exactly.
    """
    _check_same_size(original=original, result=result, mask=mask)
    base = _pixels(original).astype(np.float32)
    over = np.asarray(result.convert(original.mode), dtype=np.float32)
    alpha = _mask_array(mask).astype(np.float32) / 255
    alpha = alpha[..., None] if base.ndim == 3 else alpha
    return Image.fromarray(np.rint(base + (over - base) * alpha).astype(np.uint8))


def _window_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean of `a` over the (2r+1)x(2r+1) window around each pixel, clipped to the image (cumsums)."""
    for axis in (0, 1):
        n = a.shape[axis]
        c = np.concatenate([np.zeros_like(a.take([0], axis)), np.cumsum(a, axis=axis)], axis=axis)
        hi, lo = np.minimum(np.arange(n) + r + 1, n), np.maximum(np.arange(n) - r, 0)
        shape = [1] * a.ndim
        shape[axis] = n
        a = (c.take(hi, axis) - c.take(lo, axis)) / (hi - lo).reshape(shape)
    return a


def _smooth_fill(pixels: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Colours for every pixel from the `known` ones, like A1111's `masking.fill`: windows from coarse
    to fine, each laid over the last with alpha = its known fraction, on the mean of all known."""
    weight = known.astype(np.float64)[..., None]
    out = np.broadcast_to(pixels[known].mean(axis=0), pixels.shape)
    for r in (256, 64, 16, 4, 1):
        out = _window_mean(pixels * weight, r) + out * (1 - _window_mean(weight, r))
    return out


def fill_masked(image: Image.Image, mask: Image.Image, mode: str, seed: int) -> Image.Image:
    """A1111's "masked content": what the masked area holds before img2img noises it.

    Args:
        image (`PIL.Image.Image`): RGB (see `to_rgb`). mask (`PIL.Image.Image`): L, same size; pass
            the unblurred one: every nonzero pixel is replaced, the others stay exact.
        mode (`str`): one of `FILL_MODES`. "original" returns a copy; "noise" puts uniform RGB noise
            there; "fill" a smooth blend of the surrounding colours (mid-grey if all is masked).
        seed (`int`): seeds `numpy.random.default_rng` for "noise"; one seed, one image.
    """
    if mode not in FILL_MODES:
        raise ValueError(f"Unknown masked-content mode {mode!r}; expected one of {FILL_MODES}.")
    if image.mode != "RGB":
        raise ValueError(f"fill_masked needs an RGB image, got mode {image.mode!r}; use to_rgb first.")
    _check_same_size(image=image, mask=mask)
    painted = _mask_array(mask) > 0
    if mode == "original" or not painted.any():
        return image.copy()
    pixels = np.array(image)
    if mode == "noise":
        fill = np.random.default_rng(seed).integers(0, 256, size=pixels.shape, dtype=np.uint8)
    elif painted.all():
        fill = np.full_like(pixels, 128)
    else:
        fill = np.rint(_smooth_fill(pixels.astype(np.float64), ~painted)).clip(0, 255).astype(np.uint8)
    pixels[painted] = fill[painted]
    return Image.fromarray(pixels)


def _feather(n: int, feather: int, start: bool, end: bool) -> np.ndarray:
    """Old-area mask values along one axis: floor(255 * (feather - d) / (feather + 1)) at distance d
    from an extended edge, so never 255, and 0 from `feather` px in."""
    ramp, d = np.zeros(n, dtype=np.int64), np.arange(n)
    for dist, extended in ((d, start), (n - 1 - d, end)):
        if extended:
            ramp = np.maximum(ramp, 255 * np.clip(feather - dist, 0, None) // (feather + 1))
    return ramp.astype(np.uint8)


def pad_for_outpaint(image: Image.Image, left: int, right: int, top: int, bottom: int, feather: int = 0,
                     size_multiple: int = 8) -> tuple[Image.Image, Image.Image]:
    """Extend the canvas for outpainting.

    Args:
        image (`PIL.Image.Image`): L, RGB or RGBA.
        left, right, top, bottom (`int`): px to add on each side, each >= 0, at least one > 0.
        feather (`int`, defaults to 0): the mask also reaches this many px into the old area as a
            linear ramp, always < 255 there, so the seam blends; 0 keeps the old area black.
        size_multiple (`int`, defaults to 8): the new width/height round up to a multiple of this;
            the extra goes right (bottom), or left (top) when only that side of the axis was extended.

    Returns `(canvas, mask)`: the new area repeats the edge pixels (np.pad "edge") so the model
    starts from plausible colours, and the mask is white there.
    """
    sides = (left, right, top, bottom)
    if min(sides) < 0 or max(sides) == 0 or feather < 0 or size_multiple < 1:
        raise ValueError(f"Need left/right/top/bottom >= 0 with one > 0, feather >= 0 and size_multiple "
                         f">= 1, got {sides}, feather={feather}, size_multiple={size_multiple}.")
    w, h = image.size
    extra_x = _round_up(w + left + right, size_multiple) - (w + left + right)
    extra_y = _round_up(h + top + bottom, size_multiple) - (h + top + bottom)
    left, right = (left + extra_x, right) if left and not right else (left, right + extra_x)
    top, bottom = (top + extra_y, bottom) if top and not bottom else (top, bottom + extra_y)
    pixels = _pixels(image)
    pad = ((top, bottom), (left, right)) + (((0, 0),) if pixels.ndim == 3 else ())
    mask = np.full((top + h + bottom, left + w + right), 255, dtype=np.uint8)
    mask[top:top + h, left:left + w] = np.maximum(
        _feather(h, feather, top > 0, bottom > 0)[:, None], _feather(w, feather, left > 0, right > 0))
    return Image.fromarray(np.pad(pixels, pad, mode="edge")), Image.fromarray(mask)


def resize_lanczos(image: Image.Image, scale: float) -> Image.Image:
    """Resize by `scale` (> 0) with LANCZOS; each side is rounded to the nearest int, at least 1."""
    if not scale > 0:
        raise ValueError(f"Scale must be > 0, got {scale}.")
    return image.resize(tuple(max(1, round(side * scale)) for side in image.size), Image.Resampling.LANCZOS)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    return [*range(0, length - tile, tile - overlap), length - tile]


def tiles(size: tuple[int, int], tile: int, overlap: int) -> list[Box]:
    """Boxes of `tile` x `tile` px, sharing at least `overlap` px, covering an image of `size`.

    Row by row, left to right; the last row/column shifts inward so no box leaves the image. Along
    a side shorter than `tile` a box spans that side (one box for a small image).
    Requires tile >= 1 and 0 <= overlap < tile.
    """
    _check_size(size)
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"Need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}.")
    w, h = size
    return [(x, y, min(x + tile, w), min(y + tile, h))
            for y in _starts(h, tile, overlap) for x in _starts(w, tile, overlap)]


def _ramp(n: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """Tile weights along one axis: linear in (0, 1) over `overlap` px at inner edges, 1 elsewhere."""
    weights, m = np.ones(n, dtype=np.float32), min(overlap, n)
    steps = np.arange(1, m + 1, dtype=np.float32) / (overlap + 1)
    if rise:
        weights[:m] = np.minimum(weights[:m], steps)
    if fall:
        weights[n - m:] = np.minimum(weights[n - m:], steps[::-1])
    return weights


def blend_tiles(size: tuple[int, int], results: list[tuple[Box, Image.Image]], overlap: int) -> Image.Image:
    """Assemble processed tiles into one image of `size`, cross-fading overlaps with linear ramps.

    `results` are (box, tile) pairs covering `size` (w, h), each tile the size of its box, all of
    one mode (L, RGB or RGBA). `overlap` (int >= 0) is the ramp length at tile edges inside the
    image; weights are normalised per pixel, so crops of one image reassemble it exactly.
    """
    _check_size(size)
    if overlap < 0 or not results or len({tile.mode for _, tile in results}) > 1:
        raise ValueError(f"Need overlap >= 0 and tiles of one mode, got overlap={overlap}, modes "
                         f"{sorted({tile.mode for _, tile in results})}.")
    w, h = size
    total, weight = None, np.zeros((h, w, 1), dtype=np.float32)
    for box, tile in results:
        _check_box(box, size)
        left, top, right, bottom = box
        if tile.size != (right - left, bottom - top):
            raise ValueError(f"Tile of size {tile.width}x{tile.height} does not fit box {tuple(box)}.")
        pixels = _pixels(tile).astype(np.float32).reshape(bottom - top, right - left, -1)
        total = np.zeros((h, w, pixels.shape[2]), dtype=np.float32) if total is None else total
        ramp = (_ramp(bottom - top, overlap, top > 0, bottom < h)[:, None, None]
                * _ramp(right - left, overlap, left > 0, right < w)[None, :, None])
        total[top:bottom, left:right] += pixels * ramp
        weight[top:bottom, left:right] += ramp
    if not weight.all():
        raise ValueError("The tiles do not cover the whole image.")
    out = np.rint(total / weight).clip(0, 255).astype(np.uint8)
    return Image.fromarray(out if out.shape[2] > 1 else out[..., 0])
