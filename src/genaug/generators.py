"""Every generator under one contract, whatever its family.

A *sampler module* maps (labels int64 [B], noise float32 [B, *noise_dims]) to images float
[B, C, H, W] in [-1, 1], and holds ``noise_dims``:
- a GAN: noise [Z], one latent vector per image, through G;
- a diffusion model: noise [K+1, C, H, W], x_T plus one image per sampling step, through
  the K-step sampler that the generator's name picks (DDIM for ``ddim``, respaced
  ancestral sampling for ``ddpm``) with classifier-free guidance.

All randomness is an input, so the same module synthesizes, draws grids, exports to ONNX
and is served, and any two of those can be checked against each other.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn

from genaug import checkpoint
from genaug.accel import Accel
from genaug.diffusion import Diffusion
from genaug.onnx_runtime import OnnxForward
from genaug.sections import DiffusionConfig, SamplerConfig, sampler_fits
from genaug.train.progress import bar


# From this many images on, a diffusion sampler's fast path pays for its set-up (see sample).
FAST_FROM = 2000
# Images per sampler call. A diffusion sampler on a CPU takes fewer: a small batch keeps a
# small UNet's activations in cache. The quick UNet (ONNX Runtime, this project's 2-core
# machine) took 1.37 ms per image and forward at batches of 64 to 128 against 1.76 ms at 500
# on one thread, and 0.78 against 1.03 ms on two; DDIM-10 with guidance (a forward of
# 2 x batch per step) drew 1000 images in 31 s at 64 against 41 s at 250. On CUDA large
# batches fill the device, and a GAN's single forward is cheap at any batch.
SAMPLE_BATCH, CPU_DIFFUSION_BATCH = 250, 64


class GanSampler(nn.Module):
    """A GAN generator G(labels, z) with z ~ N(0, I) of ``z_dim`` dimensions."""

    def __init__(self, G: nn.Module, z_dim: int):
        super().__init__()
        self.net, self.noise_dims = G, (int(z_dim),)

    def forward(self, labels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(labels, noise)


class DiffusionSampler(nn.Module):
    """A denoising UNet, its diffusion process and a fixed sampler, as one function."""

    def __init__(self, unet: nn.Module, process: Diffusion, sampler: SamplerConfig):
        super().__init__()
        sampler_fits(sampler.steps, process.num_timesteps)
        self.net, self.process, self.sampler = unet, process, sampler
        self.noise_dims = sampler.noise_shape(1, unet.shape)[1:]

    def forward(self, labels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.process.sample(self.net, labels, noise, self.sampler)

    def compiled(self) -> DiffusionSampler:
        """The same sampler with its UNet through torch.compile (the sampler loop stays
        Python: it unrolls K calls of one compiled graph). Weights are shared."""
        return DiffusionSampler(torch.compile(self.net, dynamic=False), self.process, self.sampler)

    def on_onnx_runtime(self) -> DiffusionSampler:
        """The same sampler with its UNet's forward in ONNX Runtime (CPU only)."""
        return DiffusionSampler(OnnxUNet(self.net), self.process, self.sampler)


class OnnxUNet(nn.Module):
    """A denoising UNet's forward (x float [B, C, H, W], t int64 [B], labels int64 [B] ->
    eps float [B, C, H, W]) in ONNX Runtime, with the attributes the sampler reads."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.shape, self.null_label = unet.shape, unet.null_label
        c, h, w = unet.shape
        example = (torch.zeros(2, c, h, w), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
        self.run = OnnxForward(unet.eval(), example, ["x", "t", "labels"])

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.run(x, t, labels).to(x.device)


def sampling_settings(diffusion: DiffusionConfig | None, sampler: SamplerConfig | None) -> dict:
    """What a generator checkpoint records about how it samples (JSON): the family alone for
    a GAN; the process and the sampler for a diffusion model."""
    if diffusion is None:
        return {"family": "gan"}
    return {"family": "diffusion", **diffusion.process_args(), "sampler": sampler.as_dict()}


def sampler_module(arch: str, net: nn.Module, config: dict, sampling: dict) -> nn.Module:
    """Wrap a trained network as a sampler module (see the module docstring)."""
    if sampling["family"] == "gan":
        return GanSampler(net, config["z_dim"])
    process = Diffusion.from_schedule(sampling["schedule"], sampling["timesteps"], sampling["p_uncond"])
    return DiffusionSampler(net, process, SamplerConfig.from_dict(sampling["sampler"]))


def load(path: str) -> tuple[nn.Module, dict]:
    """(sampler module in eval mode on the CPU, the generator checkpoint dict)."""
    net, ckpt = checkpoint.load(path, "generator")
    sampling = ckpt["meta"].get("sampling", {"family": "gan"})
    return sampler_module(ckpt["arch"], net, ckpt["config"], sampling).eval(), ckpt


def accel_for(family: str, accel: Accel) -> Accel:
    """The fast path for a generator family: the UNet runs in NCHW on the CPU.

    Measured on this 2-core CPU (quick UNet, DDIM-10 with guidance, batch 250): NCHW
    27.6 ms/image, channels_last 30.9, bf16 autocast 51-53 (slower and not the served
    numerics); training steps are ~15% faster in NCHW too. On CUDA nothing changes.
    """
    if family == "diffusion" and accel.device.type == "cpu":
        return replace(accel, channels_last=False)
    return accel


def draw_noise(module: nn.Module, n: int, generator: torch.Generator) -> torch.Tensor:
    """Standard normal float32 [n, *noise_dims] from ``generator`` (CPU)."""
    return torch.randn((n, *module.noise_dims), generator=generator)


@torch.no_grad()
def _fast(module: nn.Module, accel: Accel) -> nn.Module:
    """A diffusion sampler's fast path on this device: the UNet in ONNX Runtime on a CPU,
    through torch.compile on CUDA; a GAN as it is (one cheap forward per image)."""
    if not isinstance(module, DiffusionSampler):
        return module
    return module.on_onnx_runtime() if accel.device.type == "cpu" else module.compiled()


def sample(module: nn.Module, labels: np.ndarray, accel: Accel, seed: int, batch: int | None = None,
           progress: str = "", fast: bool = False) -> np.ndarray:
    """One image per label: labels int64 [N] -> uint8 [N, C, H, W].

    Noise comes from a CPU generator seeded with ``seed``, so equal arguments give equal
    images on any device. ``batch``: images per call; by default CPU_DIFFUSION_BATCH for a
    diffusion sampler on a CPU, else SAMPLE_BATCH. A diffusion sampler's images do not
    depend on it (each image's noise is a whole number of the CPU generator's 16-value
    blocks); a GAN's latent draws can. ``progress``: a bar label, or "" for none.
    fast: for large N, a diffusion sampler's UNet runs in ONNX Runtime on a CPU (on the
    2-core machine 1.7x eager torch, while torch.compile was no faster there and took
    over a minute to compile), or through torch.compile on CUDA, whose batches keep one shape
    (the last is padded) so it compiles once. Images equal eager sampling's up to float
    reassociation; if the fast path fails, sampling goes on without it, with a notice.
    Leaves the module's train/eval mode as it found it.
    """
    if not batch:
        small = isinstance(module, DiffusionSampler) and accel.device.type == "cpu"
        batch = CPU_DIFFUSION_BATCH if small else SAMPLE_BATCH
    was_training = module.training
    module = accel.prepare(module).eval()
    run = _fast(module, accel) if fast else module
    gen = torch.Generator().manual_seed(seed)
    out = []
    with bar(len(labels), progress, "img", disable=not progress) as shown:
        for i in range(0, len(labels), batch):
            y = torch.from_numpy(np.asarray(labels[i:i + batch], dtype=np.int64)).to(accel.device)
            noise = draw_noise(module, len(y), gen).to(accel.device)
            n = len(y)
            if run is not module and accel.device.type == "cuda" and n < batch:  # pad to the compiled shape
                y = torch.cat([y, y[:1].expand(batch - n)])
                noise = torch.cat([noise, noise[:1].expand(batch - n, *noise.shape[1:])])
            try:
                with accel.autocast():
                    images = run(y, noise).float()[:n]
            except Exception as err:  # torch.compile's failures surface at the first call
                if run is module:
                    raise
                print(f"[genaug] the fast sampling path failed ({type(err).__name__}: {str(err)[:200]}); "
                      "sampling without it", file=sys.stderr, flush=True)
                run = module
                with accel.autocast():
                    images = module(y[:n], noise[:n]).float()
            out.append(to_uint8(images).cpu().numpy())
            shown.update(n)
    module.train(was_training)
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.uint8)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to the nearest level."""
    return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
