"""The two denoising networks the diffusion benchmarks compare, sized to match.

genaug's UNet and diffusers' UNet2DModel set up alike: the same widths per level, residual
blocks per level, self-attention at the same resolution and in the middle, AdaGN
(diffusers: resnet_time_scale_shift="scale_shift") and a class embedding added to the
time embedding. ``matched()`` checks that parameters and multiply-accumulates agree
within 10%, so a speed ratio compares implementations, not model sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.flops import macs, params
from genaug.models.unet import UNet

PRESETS = {
    # A CPU-sized network: minutes for a few steps on 2 cores.
    "cpu": dict(base=64, mults=(1, 2, 2), res_blocks=2, attention=(16,), shape=(3, 32, 32)),
    # The full profile's CIFAR-10 network (Ho et al., 2020): base 128, 1-2-2-2, attention at 16x16.
    "full": dict(base=128, mults=(1, 2, 2, 2), res_blocks=2, attention=(16,), shape=(3, 32, 32)),
}


@dataclass
class Pair:
    ours: torch.nn.Module
    reference: torch.nn.Module
    shape: tuple[int, int, int]
    num_classes: int = 10


def ours(preset: str) -> UNet:
    p = PRESETS[preset]
    return UNet(p["shape"], 10, p["base"], p["mults"], p["res_blocks"], p["attention"], dropout=0.1)


def reference(preset: str):
    from diffusers import UNet2DModel

    p = PRESETS[preset]
    side = p["shape"][1]
    sides = [side // 2 ** i for i in range(len(p["mults"]))]
    down = tuple("AttnDownBlock2D" if s in p["attention"] else "DownBlock2D" for s in sides)
    up = tuple("AttnUpBlock2D" if s in p["attention"] else "UpBlock2D" for s in reversed(sides))
    return UNet2DModel(sample_size=side, in_channels=p["shape"][0], out_channels=p["shape"][0],
                       block_out_channels=tuple(p["base"] * m for m in p["mults"]), layers_per_block=p["res_blocks"],
                       down_block_types=down, up_block_types=up, attention_head_dim=32, norm_num_groups=32,
                       resnet_time_scale_shift="scale_shift", num_class_embeds=11, dropout=0.1,
                       time_embedding_type="positional")


class ReferenceEps(torch.nn.Module):
    """diffusers' UNet2DModel behind genaug's call signature (x, t, labels) -> eps."""

    def __init__(self, net):
        super().__init__()
        self.net, self.null_label = net, 10

    def forward(self, x, t, labels):
        return self.net(x, t, class_labels=labels).sample


def pair(preset: str) -> Pair:
    return Pair(ours(preset), ReferenceEps(reference(preset)), PRESETS[preset]["shape"])


def sizes(p: Pair, batch: int = 2) -> dict:
    """Parameters and MACs per image of each network's forward, and whether they match."""
    x = torch.randn(batch, *p.shape)
    t, y = torch.randint(0, 1000, (batch,)), torch.randint(0, 10, (batch,))
    out = {}
    for name, net in (("ours", p.ours), ("reference", p.reference)):
        net = net.eval()
        with torch.no_grad():
            out[name] = {"params": params(net), "macs_per_image": macs(lambda: net(x, t, y)) / batch}
    for key in ("params", "macs_per_image"):
        out[f"{key}_ratio"] = out["ours"][key] / out["reference"][key]
    out["matched"] = all(0.9 <= out[f"{k}_ratio"] <= 1.1 for k in ("params", "macs_per_image"))
    return out
