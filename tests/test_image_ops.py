"""pipelines.image_ops on small synthetic images: masks, crops, compositing, fills, outpaint padding
and tiles. Pure PIL/numpy, so the whole file runs in well under a second."""

from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from pipelines import image_ops as ops


def _gradient(w=64, h=48, mode="RGB"):
    """A deterministic image with distinct pixels, so crops and pastes are checkable."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8)).convert(mode)


def _rect_mask(size, box):
    mask = np.zeros(size[::-1], dtype=np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return Image.fromarray(mask)


def _arr(image):
    return np.asarray(image).astype(int)


# --- conversions and masks -----------------------------------------------------------------------

def test_to_rgb_composites_transparency_on_white():
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    rgba.putpixel((0, 0), (10, 20, 30, 255))
    rgb = ops.to_rgb(rgba)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (10, 20, 30)
    assert rgb.getpixel((3, 3)) == (255, 255, 255)
    assert ops.to_rgb(Image.new("L", (2, 2), 7)).getpixel((1, 1)) == (7, 7, 7)
    assert rgba.mode == "RGBA" and rgba.getpixel((3, 3))[3] == 0  # input untouched


def test_to_mask_from_rgb_l_and_rgba():
    rgb = Image.new("RGB", (8, 8), (0, 0, 0))
    rgb.putpixel((1, 1), (255, 255, 255))
    rgb.putpixel((2, 2), (100, 100, 100))  # luminance 100 <= 127: not painted
    mask, resized = ops.to_mask(rgb, (8, 8))
    assert mask.mode == "L" and not resized
    assert set(np.unique(mask)) == {0, 255}
    assert mask.getpixel((1, 1)) == 255 and mask.getpixel((2, 2)) == 0

    grey = Image.fromarray(np.array([[0, 128], [127, 255]], dtype=np.uint8))
    assert _arr(ops.to_mask(grey, (2, 2))[0]).tolist() == [[0, 255], [0, 255]]

    # A brush layer: transparent background, black but opaque strokes still count as painted.
    layer = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    layer.putpixel((3, 4), (0, 0, 0, 255))
    layer.putpixel((5, 5), (255, 0, 0, 10))
    painted = _arr(ops.to_mask(layer, (8, 8))[0])
    assert painted[4, 3] == 255 and painted[5, 5] == 255 and painted.sum() == 2 * 255

    # Fully opaque RGBA falls back to luminance.
    opaque = Image.new("RGBA", (4, 4), (0, 0, 0, 255))
    opaque.putpixel((0, 0), (255, 255, 255, 255))
    assert _arr(ops.to_mask(opaque, (4, 4))[0]).sum() == 255


def test_to_mask_resizes_with_nearest_and_says_so():
    small = _rect_mask((4, 4), (0, 0, 2, 4))
    mask, resized = ops.to_mask(small, (16, 8))
    assert resized and mask.size == (16, 8)
    assert set(np.unique(mask)) == {0, 255}
    assert _arr(mask)[:, :8].min() == 255 and _arr(mask)[:, 8:].max() == 0
    with pytest.raises(ValueError, match="width, height"):
        ops.to_mask(small, (0, 4))


def test_mask_from_layers_is_the_union():
    a = Image.new("RGBA", (10, 6), (0, 0, 0, 0))
    b = Image.new("RGBA", (10, 6), (0, 0, 0, 0))
    a.putpixel((1, 1), (255, 0, 0, 255))
    b.putpixel((8, 4), (0, 0, 255, 1))
    mask = ops.mask_from_layers((10, 6), [a, b])
    assert mask.mode == "L" and mask.size == (10, 6)
    assert {tuple(p) for p in np.argwhere(_arr(mask) == 255)} == {(1, 1), (4, 8)}
    assert ops.is_empty(ops.mask_from_layers((10, 6), []))
    with pytest.raises(ValueError, match="Layer 0 is 5x5"):
        ops.mask_from_layers((10, 6), [Image.new("RGBA", (5, 5))])


def test_invert_and_is_empty():
    mask = _rect_mask((8, 8), (2, 2, 4, 4))
    assert _arr(ops.invert_mask(mask)).tolist() == (255 - _arr(mask)).tolist()
    assert not ops.is_empty(mask)
    assert ops.is_empty(Image.new("L", (8, 8), 0))
    assert ops.is_empty(ops.invert_mask(Image.new("L", (8, 8), 255)))
    with pytest.raises(ValueError, match="to_mask"):
        ops.is_empty(Image.new("RGB", (8, 8)))


def test_blur_mask_feathers_edges_only():
    mask = _rect_mask((96, 96), (24, 24, 72, 72))
    blurred = _arr(ops.blur_mask(mask, 4))
    assert blurred[:8].max() == 0 and blurred[:, :8].max() == 0  # far from the mask
    assert blurred[48, 48] == 255
    edge = blurred[48, 18:30]
    assert ((edge > 0) & (edge < 255)).sum() >= 4  # a ramp across the edge
    assert _arr(ops.blur_mask(mask, 0)).tolist() == _arr(mask).tolist()
    with pytest.raises(ValueError, match=">= 0"):
        ops.blur_mask(mask, -1)


# --- mask box and masked-area crops ---------------------------------------------------------------

def test_mask_box_padding_clamping_and_multiples():
    mask = _rect_mask((100, 80), (40, 30, 45, 33))
    left, top, right, bottom = ops.mask_box(mask, padding=4)
    assert (right - left) % 8 == 0 and (bottom - top) % 8 == 0
    assert left <= 36 and top <= 26 and right >= 49 and bottom >= 37
    assert ops.mask_box(mask, padding=4, size_multiple=1) == (36, 26, 49, 37)

    # Near the corner: clamped, then grown inward rather than off the image.
    corner = _rect_mask((100, 80), (0, 0, 3, 3))
    assert ops.mask_box(corner, padding=10) == (0, 0, 16, 16)
    far = _rect_mask((100, 80), (97, 77, 100, 80))
    assert ops.mask_box(far, padding=2) == (92, 72, 100, 80)

    # The image itself is not a multiple of 8: the box takes the whole side.
    odd = _rect_mask((30, 20), (0, 0, 30, 20))
    assert ops.mask_box(odd, padding=0) == (0, 0, 30, 20)

    with pytest.raises(ValueError, match="empty"):
        ops.mask_box(Image.new("L", (16, 16)), padding=4)
    with pytest.raises(ValueError, match="padding"):
        ops.mask_box(mask, padding=-1)


def test_crop_for_inpaint_targets_size_and_contains_the_mask():
    image = _gradient(128, 96)
    mask = _rect_mask((128, 96), (50, 40, 70, 48))  # wide: the box must grow in height for 1:1
    image_crop, mask_crop, box = ops.crop_for_inpaint(image, mask, padding=4, target=(64, 64))
    left, top, right, bottom = box
    assert image_crop.size == mask_crop.size == (64, 64)
    assert mask_crop.mode == "L"
    assert left <= 50 and top <= 40 and right >= 70 and bottom >= 48
    assert 0 <= left and 0 <= top and right <= 128 and bottom <= 96
    assert right - left == bottom - top  # the aspect ratio of the target
    assert _arr(mask_crop).max() == 255
    with pytest.raises(ValueError, match="same size"):
        ops.crop_for_inpaint(image, _rect_mask((10, 10), (1, 1, 2, 2)), 4, (64, 64))


def test_crop_then_paste_back_keeps_unmasked_pixels():
    original = _gradient(128, 96)
    mask = ops.blur_mask(_rect_mask((128, 96), (50, 40, 70, 60)), 3)
    _, _, box = ops.crop_for_inpaint(original, mask, padding=8, target=(64, 64))
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    out = ops.paste_back(original, red, mask, box)
    m, o, r = _arr(mask), _arr(original), _arr(out)
    assert out.size == original.size
    assert np.array_equal(r[m == 0], o[m == 0])
    assert np.array_equal(r[m == 255], np.broadcast_to([255, 0, 0], r[m == 255].shape))
    assert ((m > 0) & (m < 255)).any()
    with pytest.raises(ValueError, match="not inside"):
        ops.paste_back(original, red, mask, (0, 0, 200, 10))


def test_composite_blends_by_mask():
    original = _gradient(32, 32)
    result = Image.new("RGB", (32, 32), (0, 255, 0))
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, 16:] = 255
    mask[:, 10:16] = 128
    out = _arr(ops.composite(original, result, Image.fromarray(mask)))
    o = _arr(original)
    assert np.array_equal(out[:, :10], o[:, :10])
    assert np.array_equal(out[:, 16:], np.broadcast_to([0, 255, 0], out[:, 16:].shape))
    half = o[:, 10:16] + (np.array([0, 255, 0]) - o[:, 10:16]) * 128 / 255
    assert np.abs(out[:, 10:16] - half).max() <= 1
    with pytest.raises(ValueError, match="original 32x32, result 16x16"):
        ops.composite(original, Image.new("RGB", (16, 16)), Image.fromarray(mask))


# --- masked content -------------------------------------------------------------------------------

def test_fill_masked_original_and_noise():
    image = _gradient(32, 32)
    mask = _rect_mask((32, 32), (8, 8, 24, 24))
    m = _arr(mask) > 0
    assert np.array_equal(_arr(ops.fill_masked(image, mask, "original", 0)), _arr(image))

    a, b, c = (_arr(ops.fill_masked(image, mask, "noise", s)) for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a[m], c[m])
    assert np.array_equal(a[~m], _arr(image)[~m])
    assert a[m].std() > 50  # uniform noise over 0..255, not a flat colour


def test_fill_masked_fill_uses_surrounding_colours():
    rgb = np.zeros((48, 48, 3), dtype=np.uint8)
    rgb[:] = (200, 100, 50)
    rgb[16:32, 16:32] = (0, 255, 255)  # content that the fill must not keep
    image = Image.fromarray(rgb)
    mask = _rect_mask((48, 48), (16, 16, 32, 32))
    out = _arr(ops.fill_masked(image, mask, "fill", 0))
    assert np.abs(out[16:32, 16:32] - [200, 100, 50]).max() <= 1
    assert np.array_equal(out[:16], rgb[:16].astype(int))

    # Two colours around the hole: the fill follows the nearer one.
    rgb[:, :24] = (255, 0, 0)
    rgb[:, 24:] = (0, 0, 255)
    out = _arr(ops.fill_masked(Image.fromarray(rgb), mask, "fill", 0))
    assert out[24, 17, 0] > out[24, 17, 2] and out[24, 30, 2] > out[24, 30, 0]

    grey = _arr(ops.fill_masked(image, Image.new("L", (48, 48), 255), "fill", 0))
    assert (grey == 128).all()


def test_fill_masked_rejects_bad_arguments():
    image, mask = _gradient(8, 8), _rect_mask((8, 8), (0, 0, 4, 4))
    with pytest.raises(ValueError, match="'original', 'fill', 'noise'"):
        ops.fill_masked(image, mask, "latent", 0)
    with pytest.raises(ValueError, match="to_rgb"):
        ops.fill_masked(image.convert("RGBA"), mask, "noise", 0)


# --- outpainting ----------------------------------------------------------------------------------

def test_pad_for_outpaint_sizes_round_up_on_the_extended_side():
    image = _gradient(64, 64)
    canvas, mask = ops.pad_for_outpaint(image, left=20, right=0, top=0, bottom=0)
    assert canvas.size == mask.size == (88, 64)  # 84 -> 88, the extra 4 on the left
    assert np.array_equal(_arr(canvas)[:, 24:], _arr(image))
    assert _arr(mask)[:, :24].min() == 255 and _arr(mask)[:, 24:].max() == 0

    canvas, mask = ops.pad_for_outpaint(image, left=0, right=13, top=0, bottom=0)
    assert canvas.size == (80, 64)  # 77 -> 80
    assert np.array_equal(_arr(canvas)[:, :64], _arr(image))
    assert np.array_equal(_arr(canvas)[:, 70], _arr(image)[:, 63])  # edge replication

    odd = _gradient(60, 60)
    canvas, mask = ops.pad_for_outpaint(odd, left=0, right=0, top=10, bottom=0)
    assert canvas.size == (64, 72)  # nothing extended horizontally: the extra goes right
    expected = np.zeros((72, 64), dtype=int)
    expected[:12] = 255
    expected[:, 60:] = 255
    assert np.array_equal(_arr(mask), expected)
    assert np.array_equal(_arr(canvas)[12:, :60], _arr(odd))


def test_pad_for_outpaint_feather_ramps_into_the_old_area():
    image = _gradient(64, 64)
    canvas, mask = ops.pad_for_outpaint(image, left=16, right=0, top=0, bottom=0, feather=8)
    m = _arr(mask)
    assert np.array_equal(_arr(canvas)[:, 16:], _arr(image))
    assert m[:, :16].min() == 255
    row = m[30, 16:26]
    assert (row[:8] < 255).all() and (row[:8] > 0).all()
    assert (np.diff(row[:9]) < 0).all()  # decreasing away from the seam
    assert (row[8:] == 0).all() and m[:, 24:].max() == 0


def test_pad_for_outpaint_rejects_bad_arguments():
    image = _gradient(16, 16)
    with pytest.raises(ValueError, match="one > 0"):
        ops.pad_for_outpaint(image, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="one > 0"):
        ops.pad_for_outpaint(image, -4, 8, 0, 0)


def test_resize_lanczos():
    image = _gradient(30, 20)
    assert ops.resize_lanczos(image, 2).size == (60, 40)
    assert ops.resize_lanczos(image, 0.01).size == (1, 1)
    assert ops.resize_lanczos(image, 1.5).size == (45, 30)
    with pytest.raises(ValueError, match="> 0"):
        ops.resize_lanczos(image, 0)


# --- tiles ----------------------------------------------------------------------------------------

def test_tiles_cover_stay_inside_and_overlap():
    boxes = ops.tiles((200, 130), tile=64, overlap=16)
    covered = np.zeros((130, 200), dtype=int)
    for left, top, right, bottom in boxes:
        assert (right - left, bottom - top) == (64, 64)
        assert 0 <= left and 0 <= top and right <= 200 and bottom <= 130
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1
    xs = sorted({b[0] for b in boxes})
    assert xs[0] == 0 and xs[-1] == 200 - 64
    assert all(b - a <= 64 - 16 for a, b in pairwise(xs))  # at least `overlap` shared
    assert ops.tiles((40, 30), tile=64, overlap=8) == [(0, 0, 40, 30)]
    assert ops.tiles((64, 64), tile=64, overlap=8) == [(0, 0, 64, 64)]
    with pytest.raises(ValueError, match="overlap < tile"):
        ops.tiles((100, 100), tile=64, overlap=64)
    with pytest.raises(ValueError, match="overlap < tile"):
        ops.tiles((100, 100), tile=64, overlap=-1)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_blend_tiles_identity_reassembles_the_image(mode):
    image = _gradient(150, 110, mode)
    boxes = ops.tiles(image.size, tile=64, overlap=16)
    out = ops.blend_tiles(image.size, [(box, image.crop(box)) for box in boxes], overlap=16)
    assert out.mode == mode and out.size == image.size
    assert np.abs(_arr(out) - _arr(image)).max() <= 1


def test_blend_tiles_cross_fades_overlaps():
    boxes = ops.tiles((112, 64), tile=64, overlap=16)  # x at 0 and 48: 16 px shared
    assert [b[0] for b in boxes] == [0, 48]
    dark, light = Image.new("L", (64, 64), 0), Image.new("L", (64, 64), 255)
    row = _arr(ops.blend_tiles((112, 64), [(boxes[0], dark), (boxes[1], light)], overlap=16))[10]
    assert (row[:48] == 0).all() and (row[64:] == 255).all()
    assert (np.diff(row[48:64]) > 0).all()  # a linear ramp from one tile to the other


def test_blend_tiles_rejects_gaps_and_mismatches():
    tile = Image.new("RGB", (32, 32))
    with pytest.raises(ValueError, match="cover"):
        ops.blend_tiles((64, 32), [((0, 0, 32, 32), tile)], overlap=0)
    with pytest.raises(ValueError, match="does not fit"):
        ops.blend_tiles((64, 32), [((0, 0, 40, 32), tile)], overlap=0)
