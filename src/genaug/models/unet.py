"""A class-conditional UNet that predicts the noise in a diffused image.

(x float [B, C, H, W] in about [-1, 1], t int64 or float [B] in timesteps,
labels int64 [B]) -> epsilon float [B, C, H, W].

The layout follows Ho et al. (2020): residual blocks at each resolution, self-attention at
the low resolutions and in the middle, strided-conv downsampling and skip connections into
the upsampling path. The timestep enters as a sinusoidal embedding through an MLP; the class
enters as a learned embedding added to it, with one extra index (``null_label``, equal to
``num_classes``) meaning "no label", the null token of classifier-free guidance (Ho &
Salimans, 2022). Each residual block applies the embedding as a per-channel scale and shift
after its second GroupNorm (AdaGN, Dhariwal & Nichol, 2021).

Every size is fixed at construction, so forward() has no Python branch on tensor values and
traces with torch.export (and so torch.onnx.export(dynamo=True)) with a dynamic batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# Channels per attention head; a layer with fewer channels gets one head.
HEAD_CHANNELS = 32


def _norm(channels: int) -> nn.GroupNorm:
    # 32 groups as in Wu & He (2018) where the width allows it; narrow test-sized nets get
    # the largest divisor of 32 that divides their width instead of an error.
    return nn.GroupNorm(math.gcd(channels, 32), channels)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps (Vaswani et al., 2017): t [B] -> float32 [B, dim].

    Frequencies are geometric from 1 to 1/10000 radians per timestep; t may be fractional.
    """
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32)
                      * (-math.log(10000.0) / half))
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, then GroupNorm scaled and shifted by the embedding, SiLU,
    dropout, conv; plus the input (through a 1x1 conv when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all H*W positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = max(1, channels // HEAD_CHANNELS)
        if channels % self.heads:
            raise ValueError(f"attention width {channels} is not divisible into {self.heads} heads "
                             f"of {HEAD_CHANNELS} channels; use a multiple of {HEAD_CHANNELS}")
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        # The 1x1 convs run as matmuls on [B, H*W, C] tokens (same weights, same state_dict):
        # then q, k and v have unit stride in their last dimension, which the fused SDPA
        # kernels need; strided ones fell back to the unfused math path (~5x slower on a CPU).
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        qkv = F.linear(tokens, self.qkv.weight.flatten(1), self.qkv.bias)
        # [B, HW, 3C] -> 3 x [B, heads, HW, C/heads]; -1 keeps the batch symbolic.
        q, k, v = qkv.reshape(-1, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(-1, h * w, c)
        out = F.linear(a, self.out.weight.flatten(1), self.out.bias)
        return x + out.transpose(1, 2).reshape(-1, c, h, w)


class Downsample(nn.Module):
    """3x3 conv with stride 2: H -> ceil(H / 2), so 28 -> 14 -> 7 -> 4 and 32 -> 16 -> 8."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour resize to a fixed size, then a 3x3 conv.

    The size is the matching skip connection's, fixed at construction: doubling would turn
    the 4x4 level of a 28x28 net into 8x8 where its skip is 7x7.
    """

    def __init__(self, channels: int, size: tuple[int, int]):
        super().__init__()
        self.size = size
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=self.size, mode="nearest"))


class Level(nn.Module):
    """One residual block, optionally followed by self-attention."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, attention: bool):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout)
        self.attn = SelfAttention(out_ch) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class UNet(nn.Module):
    """Class-conditional epsilon-prediction UNet.

    shape: (C, H, W) of the images, e.g. (1, 28, 28) or (3, 32, 32).
    num_classes: labels are 0..num_classes-1; label == num_classes means unconditional.
    base_channels: width of the first level; level i has base_channels * channel_mults[i].
    channel_mults: one entry per resolution; every level but the last halves H and W
        (rounding up, so 28 -> 14 -> 7 -> 4).
    num_res_blocks: residual blocks per level on the way down (one more on the way up).
    attention_resolutions: side lengths (e.g. (7,) or (16,)) whose levels get
        self-attention; the middle block always has it.
    dropout: probability inside every residual block.
    """

    def __init__(self, shape: Sequence[int], num_classes: int, base_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
                 attention_resolutions: Sequence[int] = (7,), dropout: float = 0.1):
        super().__init__()
        c, h, w = shape
        if base_channels < 2 or base_channels % 2:
            raise ValueError(f"base_channels={base_channels} must be an even number >= 2 "
                             "(the sinusoidal time embedding pairs sin and cos)")
        if not channel_mults or min(channel_mults) < 1:
            raise ValueError(f"channel_mults={tuple(channel_mults)} must be a non-empty sequence "
                             "of positive integers, e.g. (1, 2, 2)")
        if num_res_blocks < 1:
            raise ValueError(f"num_res_blocks={num_res_blocks} must be >= 1")
        sizes = [(h, w)]
        for _ in channel_mults[1:]:
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        sides = [s[0] for s in sizes]
        unknown = sorted(set(attention_resolutions) - set(sides))
        if unknown:
            raise ValueError(f"attention_resolutions {tuple(unknown)} are not resolutions of this "
                             f"UNet; with shape {tuple(shape)} and {len(channel_mults)} levels "
                             f"choose among {tuple(sides)}")

        self.shape, self.num_classes = (c, h, w), num_classes
        self.null_label = num_classes
        self.base_channels = base_channels
        emb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)

        self.stem = nn.Conv2d(c, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_channels = [base_channels]
        ch = base_channels
        for i, mult in enumerate(channel_mults):
            attend = sides[i] in attention_resolutions
            for _ in range(num_res_blocks):
                self.down.append(Level(ch, base_channels * mult, emb_dim, dropout, attend))
                ch = base_channels * mult
                skip_channels.append(ch)
            if i < len(channel_mults) - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)

        self.mid = nn.ModuleList([Level(ch, ch, emb_dim, dropout, attention=True),
                                  Level(ch, ch, emb_dim, dropout, attention=False)])

        self.up = nn.ModuleList()
        for i in reversed(range(len(channel_mults))):
            attend = sides[i] in attention_resolutions
            for _ in range(num_res_blocks + 1):
                out = base_channels * channel_mults[i]
                self.up.append(Level(ch + skip_channels.pop(), out, emb_dim, dropout, attend))
                ch = out
            if i > 0:
                self.up.append(Upsample(ch, sizes[i - 1]))

        self.head = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, c, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.base_channels)) + self.class_emb(labels)
        h = self.stem(x)
        skips = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, Level) else block(h)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        for block in self.up:
            if isinstance(block, Level):
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = block(h)
        return self.head(h)
