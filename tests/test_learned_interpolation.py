"""The RIFE-family interpolator: frame counts, originals kept, determinism, odd sizes, and converting a
Practical-RIFE state dict (tensors only) into a model folder."""
import pickle

import numpy as np
import PIL.Image
import pytest
import torch

from pipelines.learned_interpolation import (FlowNet, backward_warp, build_demo_interpolator, convert_rife_checkpoint,
                                             ensure_demo_interpolator, interpolate_learned, load_interpolator)


def frames(count=3, size=(70, 38)):
    return [PIL.Image.fromarray(np.random.default_rng(k).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
            for k in range(count)]


@pytest.mark.parametrize("factor", [2, 4])
def test_factor_minus_one_frames_between_each_pair_and_the_originals_kept(one_torch_thread, factor):
    source = frames()
    made = interpolate_learned(build_demo_interpolator(), source, factor)
    assert len(made) == (len(source) - 1) * factor + 1
    assert [made[k * factor] for k in range(len(source))] == source          # the very same images
    assert all(f.size == (70, 38) and f.mode == "RGB" for f in made)        # padded to 96x64, cropped back
    middle = np.asarray(made[1], dtype=int)
    assert all(np.abs(middle - np.asarray(f, dtype=int)).mean() > 1 for f in source[:2])   # made, not copied


def test_same_model_same_frames(one_torch_thread, tmp_path):
    folder = ensure_demo_interpolator(tmp_path)
    first = interpolate_learned(load_interpolator(folder, torch.device("cpu"), torch.float32), frames(), 2)
    again = interpolate_learned(load_interpolator(folder, torch.device("cpu"), torch.float32), frames(), 2)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))


def test_zero_flow_warps_to_the_same_picture():
    image = torch.rand(1, 3, 16, 24)
    assert torch.allclose(backward_warp(image, torch.zeros(1, 2, 16, 24)), image, atol=1e-5)
    shifted = backward_warp(image, torch.cat((torch.ones(1, 1, 16, 24), torch.zeros(1, 1, 16, 24)), 1))
    assert torch.allclose(shifted[..., :-1], image[..., 1:], atol=1e-5)    # sample one pixel to the right


def test_a_rife_checkpoint_converts_and_a_foreign_one_is_refused(tmp_path, capsys):
    reference = FlowNet()                                                  # RIFE 4.6's shapes
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, tmp_path / "flownet.pkl")
    convert_rife_checkpoint(tmp_path / "flownet.pkl", tmp_path / "rife46")
    loaded = load_interpolator(tmp_path / "rife46", torch.device("cpu"), torch.float32)
    assert loaded.widths == (192, 128, 96, 64)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), reference.state_dict().values()))
    state = reference.state_dict()
    state["block3.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pkl")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        convert_rife_checkpoint(tmp_path / "other.pkl", tmp_path / "other")
    assert not (tmp_path / "other").exists()

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))
    torch.save({"x": Payload()}, tmp_path / "evil.pkl")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        convert_rife_checkpoint(tmp_path / "evil.pkl", tmp_path / "evil")
    assert "pickled code ran" not in capsys.readouterr().out and not (tmp_path / "evil").exists()
