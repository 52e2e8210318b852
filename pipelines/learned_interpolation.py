"""Frame interpolation with a learned model of the RIFE family (Huang et al., "Real-Time Intermediate Flow
Estimation for Video Frame Interpolation", ECCV 2022, https://arxiv.org/abs/2011.06294).

`FlowNet` is RIFE 4.x's IFNet as its paper and Practical-RIFE 4.6 describe it: four blocks estimate
the two intermediate flows (frame t -> frame 0, frame t -> frame 1) and a fusion mask from coarse to
fine (1/8, 1/4, 1/2, full size); each later block refines the previous estimate from both frames
backward-warped by it. The output is mask * warp(frame 0) + (1 - mask) * warp(frame 1). Its modules
carry the names of Practical-RIFE 4.6's state dict, so those weights load once converted to
safetensors (`python -m pipelines.learned_interpolation convert flownet.pkl FOLDER`; the conversion
reads tensors only, never arbitrary pickled objects).

A model is a folder: `config.json` (the block widths) and `model.safetensors`. `build_demo_interpolator`
makes a tiny seeded one offline, so the code path runs in tests and on a fresh machine.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from pipelines.demo_model import save_once
from pipelines.errors import AtelierError
from pipelines.model_sources import ModelSources
from pipelines.plan import ModelRef

DEMO_INTERPOLATOR = "demo-rife"
RIFE_46_WIDTHS = (192, 128, 96, 64)
_SCALES = (8, 4, 2, 1)
_MULTIPLE = 32               # the coarsest block sees 1/8 of the frame and halves it twice more


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class ResidualConv(nn.Module):
    """x + beta * conv(x), then LeakyReLU; beta is learned per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class FlowBlock(nn.Module):
    """At 1/`scale` of the frame size, estimate (a refinement of) the two flows and the mask."""

    def __init__(self, in_channels: int, width: int, residual_convs: int = 8):
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, width // 2, 2), _conv(width // 2, width, 2))
        self.convblock = nn.Sequential(*(ResidualConv(width) for _ in range(residual_convs)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * 6, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            # Flows are in pixels, so they shrink with the picture.
            flow = F.interpolate(flow, scale_factor=1 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5]


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` at each pixel plus `flow` (in pixels, x then y), bilinearly, edges repeated."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height, device=image.device, dtype=image.dtype),
                            torch.linspace(-1, 1, width, device=image.device, dtype=image.dtype), indexing="ij")
    grid = torch.stack((xs, ys), -1).unsqueeze(0)
    offset = torch.stack((flow[:, 0] * 2 / max(width - 1, 1), flow[:, 1] * 2 / max(height - 1, 1)), -1)
    return F.grid_sample(image, grid + offset, mode="bilinear", padding_mode="border", align_corners=True)


class FlowNet(nn.Module):
    """RIFE's IFNet: `widths` of the four blocks, coarse to fine (RIFE 4.6: 192, 128, 96, 64)."""

    def __init__(self, widths: tuple[int, ...] = RIFE_46_WIDTHS, residual_convs: int = 8):
        super().__init__()
        self.widths = tuple(widths)
        # Block 0 sees both frames and t (7 channels); the others also the mask and the flows (7 + 1 + 4).
        for k, width in enumerate(self.widths):
            setattr(self, f"block{k}", FlowBlock(7 if k == 0 else 12, width, residual_convs))

    def forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        """The frame at time `t` (0 < t < 1) between `frame0` and `frame1`: (batch, 3, h, w) in [0, 1],
        h and w multiples of 32."""
        time = torch.full_like(frame0[:, :1], t)
        flow = mask = None
        warped0, warped1 = frame0, frame1
        for k in range(len(self.widths)):
            block = getattr(self, f"block{k}")
            if flow is None:
                flow, mask = block(torch.cat((frame0, frame1, time), 1), None, _SCALES[k])
            else:
                more_flow, more_mask = block(torch.cat((warped0, warped1, time, mask), 1), flow, _SCALES[k])
                flow, mask = flow + more_flow, mask + more_mask
            warped0, warped1 = backward_warp(frame0, flow[:, :2]), backward_warp(frame1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        return warped0 * weight + warped1 * (1 - weight)


def load_interpolator(folder: str | os.PathLike, device: torch.device, dtype: torch.dtype) -> FlowNet:
    """The model saved in `folder` (config.json + model.safetensors), on `device` in `dtype`."""
    folder = pathlib.Path(folder)
    config = json.loads((folder / "config.json").read_text())
    net = FlowNet(tuple(config["widths"]), config.get("residual_convs", 8))
    net.load_state_dict(load_file(folder / "model.safetensors"))
    return net.eval().to(device=device, dtype=dtype)


def _tensor(frame: PIL.Image.Image, device, dtype) -> torch.Tensor:
    pixels = torch.from_numpy(np.asarray(frame.convert("RGB"), dtype=np.float32) / 255)
    return pixels.permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=dtype)


@torch.no_grad()
def interpolate_learned(net: FlowNet, frames: list[PIL.Image.Image], factor: int,
                        on_pair=lambda done, total: None) -> list[PIL.Image.Image]:
    """`factor` - 1 new frames between each pair of `frames`; the originals are kept as they are. The
    frames are padded to multiples of 32 for the model and cropped back. `on_pair(i, n)` after each pair."""
    parameter = next(net.parameters())
    width, height = frames[0].size
    pad = (0, -width % _MULTIPLE, 0, -height % _MULTIPLE)
    tensors = [F.pad(_tensor(f, parameter.device, parameter.dtype), pad) for f in frames]
    result = [frames[0]]
    for k, (first, second) in enumerate(zip(tensors, tensors[1:])):
        for step in range(1, factor):
            middle = net(first, second, step / factor)[0, :, :height, :width].float().clamp(0, 1)
            pixels = (middle.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            result.append(PIL.Image.fromarray(pixels))
        result.append(frames[k + 1])
        on_pair(k + 1, len(frames) - 1)
    return result


def build_demo_interpolator(seed: int = 0) -> FlowNet:
    """A tiny RIFE-family model with seeded random weights (widths 16, 16, 8, 8; two residual convs)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FlowNet((16, 16, 8, 8), residual_convs=2).eval()


def save_interpolator(net: FlowNet, folder: str | os.PathLike) -> None:
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    residual = len(net.block0.convblock)
    (folder / "config.json").write_text(json.dumps({"family": "rife", "widths": list(net.widths),
                                                    "residual_convs": residual}))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "model.safetensors")


def ensure_demo_interpolator(models_dir: str | os.PathLike) -> pathlib.Path:
    """`models_dir/"demo-rife"`, built and saved there the first time (written aside, then renamed)."""
    return save_once(pathlib.Path(models_dir) / DEMO_INTERPOLATOR, "config.json",
                     lambda folder: save_interpolator(build_demo_interpolator(), folder))


def convert_rife_checkpoint(checkpoint: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Turn a Practical-RIFE 4.6 `flownet.pkl` into a model folder. Only tensors are read (`weights_only`),
    and the weights must fit `FlowNet` exactly, or nothing is written."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    widths = tuple(state[f"block{k}.lastconv.0.weight"].shape[0] for k in range(4))
    residual = len({k.split(".")[2] for k in state if k.startswith("block0.convblock.")})
    net = FlowNet(widths, residual)
    net.load_state_dict(state)                      # raises, naming the keys, if it is another version
    save_interpolator(net, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description="Convert a RIFE 4.6 checkpoint into an Atelier interpolator folder.")
    parser.add_argument("command", choices=["convert"])
    parser.add_argument("checkpoint", help="Practical-RIFE's flownet.pkl (a state dict)")
    parser.add_argument("folder", help="where to write config.json and model.safetensors")
    args = parser.parse_args()
    convert_rife_checkpoint(args.checkpoint, args.folder)
    print(f"saved {args.folder}; add it to configs/models.toml with family = \"interpolator\"")


if __name__ == "__main__":
    main()


def load_interpolator_model(model: ModelRef, sources: ModelSources, device: torch.device,
                            dtype: torch.dtype) -> FlowNet:
    """The learned interpolator `model` names (a RIFE-family folder, or the demo built on first use)."""
    folder = sources.folder(model, ensure_demo_interpolator, "method", "video models and interpolators")
    try:
        return load_interpolator(folder, device, dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise AtelierError(f"Could not load interpolator {model.id!r} from {model.source}: {e}",
                           code="model_load_failed", field="method") from e
