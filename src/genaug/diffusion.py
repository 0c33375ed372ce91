"""The Gaussian diffusion process: its noise schedule, training loss and samplers.

The forward process (Ho et al., 2020) adds Gaussian noise over T steps,
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), with abar_t = prod_{s<=t} (1 - beta_s).
Images live in [-1, 1]; timesteps are 0-based, so t = 0 is the least noisy step and
t = T - 1 the noisiest.

A model here is any module with forward(x float [B, C, H, W], t int64 [B], labels int64 [B])
-> epsilon float [B, C, H, W] and an attribute ``null_label`` (the label meaning "no
class"), such as genaug.models.unet.UNet.

Sampling takes all of its randomness as one input, noise float [B, K+1, C, H, W]: index 0 is
x_T and index k (1..K) is the noise added by the k-th of K denoising steps. (The K-th step
lands on abar = 1 and adds no noise, and DDIM at eta = 0 adds none at any step; those images
are accepted and ignored, so the input's shape never depends on the settings.) With the
noise fixed, a sampler is a pure function of (labels, noise), so its unrolled graph can be
exported, checked for parity with PyTorch, and served with the noise as an input.

Parity of a whole sampler is looser than that of one model call: the first step estimates
x_0 = (x_T - sqrt(1 - abar) eps) / sqrt(abar) with abar near 0 (at T = 1000, 1/sqrt(abar)
is about 160 for the linear schedule and 20,000 for cosine), which multiplies float
rounding in eps by as much until clip_x0 bounds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from genaug.accel import unwrap
from genaug.sections import SCHEDULES, SamplerConfig, sampler_fits


# Nichol & Dhariwal (2021), sec. 3.2: the cosine schedule's offset, and its beta ceiling,
# which keeps the last steps from being pure noise (abar_T = 0 gives beta_T = 1).
COSINE_OFFSET = 0.008
MAX_BETA = 0.999


def linear_betas(timesteps: int) -> torch.Tensor:
    """float64 [T], linear from 1e-4 to 0.02 as in Ho et al. (2020) for T = 1000.

    For other T both ends are scaled by 1000 / T (as Nichol & Dhariwal do) so that the
    total noise, and so abar at T - 1, stays about the same; T <= 20 would need beta >= 1.
    """
    if timesteps <= 20:
        raise ValueError(f"the linear schedule needs timesteps > 20 (it scales 0.02 by 1000/T, "
                         f"and beta must stay below 1), got timesteps={timesteps}; use more "
                         "timesteps or the cosine schedule")
    scale = 1000.0 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int) -> torch.Tensor:
    """float64 [T] from abar(t) = f(t) / f(0), f(t) = cos^2(pi/2 (t/T + s) / (1 + s)),
    beta_t = 1 - abar(t+1) / abar(t), clipped at MAX_BETA (Nichol & Dhariwal, 2021)."""
    if timesteps < 1:
        raise ValueError(f"timesteps={timesteps} must be >= 1")
    grid = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((grid + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)


_SCHEDULE_FNS = {"linear": linear_betas, "cosine": cosine_betas}


def make_betas(schedule: str, timesteps: int) -> torch.Tensor:
    """float64 [T] betas of a named schedule (one of SCHEDULES)."""
    if schedule not in _SCHEDULE_FNS:
        raise ValueError(f"unknown beta schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return _SCHEDULE_FNS[schedule](timesteps)


def spaced_timesteps(timesteps: int, steps: int) -> list[int]:
    """K of the T timesteps, evenly spaced, ascending, always including T - 1.

    Starting at T - 1 means sampling starts from the noise level training saw for pure
    noise (the "trailing" spacing of Lin et al., 2024); for K >= 2 the last step is t = 0.
    Plain Python, so it runs unchanged inside a traced forward().
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps={steps} is out of range for a process of {timesteps} timesteps; "
                         f"choose 1 <= steps <= {timesteps}")
    if steps == 1:
        return [timesteps - 1]
    # Spacing (T-1)/(K-1) >= 1, so rounding cannot merge two steps.
    stride = (timesteps - 1) / (steps - 1)
    return sorted(round(timesteps - 1 - j * stride) for j in range(steps))


def draw_noise(sampler: SamplerConfig, batch: int, shape: tuple[int, int, int],
               generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise float32 [B, K+1, C, H, W] for ``sampler`` on the generator's device.

    Drawn one image at a time: one draw of B images equals draws of B1 then B2 images
    from the same generator, so synthesized images do not depend on the batch size.
    (A single randn of the whole tensor does not promise that on the CPU.)
    """
    one = sampler.noise_shape(1, shape)[1:]
    return torch.stack([torch.randn(one, generator=generator, device=generator.device) for _ in range(batch)])


def _gather(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """values [T] at t [B], shaped [B, 1, ..., 1] to broadcast over an ndim-d batch."""
    return values[t].reshape(-1, *([1] * (ndim - 1)))


@dataclass(frozen=True)
class _Step:
    """One denoising step from step index i to i - 1, in Python floats (float64)."""

    t: int            # the timestep the model is told
    beta: float
    abar: float       # abar at this step
    abar_prev: float  # abar at the step it lands on; 1 for the last step


def _steps(timesteps: list[int], betas: list[float], abar: list[float]) -> list[_Step]:
    """Per-step constants, noisiest step first (the order sampling visits them)."""
    prev = [1.0] + abar[:-1]
    return [_Step(*v) for v in zip(timesteps, betas, abar, prev)][::-1]


def _ddim_sigma(s: _Step, eta: float) -> float:
    # Song et al. (2021), eq. 16.
    return eta * math.sqrt((1 - s.abar_prev) / (1 - s.abar) * (1 - s.abar / s.abar_prev))


class Draws(NamedTuple):
    """One training batch's random draws: t int64 [B], noise float [B, C, H, W], drop bool [B]."""

    t: torch.Tensor
    noise: torch.Tensor
    drop: torch.Tensor

    def rows(self, part: slice) -> "Draws":
        return Draws(self.t[part], self.noise[part], self.drop[part])


class Diffusion(nn.Module):
    """A Gaussian diffusion process over T timesteps, defined by its betas.

    Owns the schedule and everything derived from it (computed in float64; the float32
    buffers follow the module's device), the forward noising q_sample, the epsilon-MSE
    training loss with label dropout for classifier-free guidance, and the DDPM and DDIM
    samplers. Has no parameters of its own; the model is passed in.

    betas: float [T] in (0, 1).
    p_uncond: probability that a training example's label is replaced by the null label,
        so the same model also learns the unconditional epsilon (Ho & Salimans, 2022).
    timestep_map: int64 [T], the timestep the model is told at each of this process's
        steps; the identity unless the process is a respacing of a longer one.
    """

    def __init__(self, betas: torch.Tensor, p_uncond: float = 0.1,
                 timestep_map: torch.Tensor | None = None):
        super().__init__()
        betas = betas.detach().to("cpu", torch.float64)
        if betas.ndim != 1 or len(betas) == 0:
            raise ValueError(f"betas must be a non-empty 1-d tensor, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"betas must lie in (0, 1), got min {betas.min().item():.3g} and max "
                             f"{betas.max().item():.3g}; check the schedule")
        if not 0 <= p_uncond < 1:
            raise ValueError(f"p_uncond={p_uncond} must be in [0, 1): the fraction of training "
                             "labels replaced by the null label (0.1 to 0.2 is usual)")
        self.num_timesteps, self.p_uncond = len(betas), float(p_uncond)
        if timestep_map is None:
            timestep_map = torch.arange(self.num_timesteps)
        if timestep_map.shape != betas.shape:
            raise ValueError(f"timestep_map has shape {tuple(timestep_map.shape)}, betas "
                             f"{tuple(betas.shape)}; they need one entry per step")

        abar = torch.cumprod(1 - betas, dim=0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        self.betas64, self.alphas_cumprod64 = betas, abar
        self.posterior_variance64 = betas * (1 - abar_prev) / (1 - abar)
        # The samplers read these Python lists, not tensors: their arithmetic stays in
        # float64, and a traced sampler sees constants rather than ops on buffers.
        self._betas, self._abar = betas.tolist(), abar.tolist()
        self._timesteps = timestep_map.tolist()

        def buffer(name: str, value: torch.Tensor) -> None:
            self.register_buffer(name, value.float(), persistent=False)

        buffer("betas", betas)
        buffer("alphas_cumprod", abar)
        buffer("sqrt_alphas_cumprod", abar.sqrt())
        buffer("sqrt_one_minus_alphas_cumprod", (1 - abar).sqrt())
        buffer("posterior_variance", self.posterior_variance64)
        self.register_buffer("timestep_map", timestep_map.long().cpu(), persistent=False)

    @classmethod
    def from_schedule(cls, schedule: str = "linear", timesteps: int = 1000,
                      p_uncond: float = 0.1) -> Diffusion:
        """A process with a named beta schedule (one of SCHEDULES) over T timesteps."""
        return cls(make_betas(schedule, timesteps), p_uncond)

    def _spaced(self, steps: int) -> tuple[list[int], list[float], list[float]]:
        """(timesteps told to the model, betas, abar) of the K-step respacing; see respace()."""
        kept = spaced_timesteps(self.num_timesteps, steps)
        abar = [self._abar[i] for i in kept]
        betas = [1 - a / p for a, p in zip(abar, [1.0] + abar[:-1])]
        return [self._timesteps[i] for i in kept], betas, abar

    def respace(self, steps: int) -> Diffusion:
        """The process restricted to K evenly spaced timesteps (Nichol & Dhariwal, 2021).

        Keeps abar at the kept steps s_1 < ... < s_K and recomputes
        beta'_i = 1 - abar_{s_i} / abar_{s_{i-1}} (abar_{s_0} = 1), so the marginals
        q(x_{s_i} | x_0) are unchanged; the model is still told the original s_i.
        """
        timesteps, betas, _ = self._spaced(steps)
        spaced = Diffusion(torch.tensor(betas, dtype=torch.float64), self.p_uncond,
                           torch.tensor(timesteps))
        return spaced.to(self.betas.device)

    # ---------------------------------------------------------------- training

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise.

        x0, noise: float [B, C, H, W]; t: int64 [B], indices into this process's steps.
        """
        return (_gather(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
                + _gather(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)

    def draws(self, shape: torch.Size, device: torch.device, dtype: torch.dtype = torch.float32,
              generator: torch.Generator | None = None) -> "Draws":
        """The random draws of one training batch of ``shape`` [B, C, H, W]: timesteps t
        int64 [B] (uniform), noise [B, C, H, W] (standard normal) and which labels to drop
        bool [B] (probability p_uncond), in that order, from ``generator`` or the global RNG."""
        b = shape[0]
        t = torch.randint(0, self.num_timesteps, (b,), device=device, generator=generator)
        noise = torch.randn(shape, device=device, dtype=dtype, generator=generator)
        drop = torch.rand(b, device=device, generator=generator) < self.p_uncond
        return Draws(t, noise, drop)

    def loss(self, model: nn.Module, x0: torch.Tensor, labels: torch.Tensor,
             generator: torch.Generator | None = None, snr_gamma: float = 0.0,
             draws: "Draws | None" = None) -> torch.Tensor:
        """Mean squared error of the predicted noise (Ho et al., 2020, eq. 14): a scalar.

        x0: float [B, C, H, W] in [-1, 1]; labels: int64 [B]. The draws (``self.draws``) come
        from ``generator`` (on x0's device) or the global RNG, unless given: a rank of a
        distributed step passes its rows of the global batch's draws (genaug.train.distributed).
        snr_gamma > 0: Min-SNR-gamma weighting (Hang et al., 2023), each example's error
        times min(SNR_t, gamma) / SNR_t with SNR_t = abar_t / (1 - abar_t). It stops the
        nearly clean timesteps, whose noise is easy to predict, from pulling against the
        noisy ones that form the image; the paper reports ~3x faster convergence. 0 is
        Ho et al.'s unweighted loss.
        """
        t, noise, drop = draws or self.draws(x0.shape, x0.device, x0.dtype, generator)
        labels = torch.where(drop, torch.full_like(labels, unwrap(model).null_label), labels)
        eps = model(self.q_sample(x0, t, noise), self.timestep_map[t], labels)
        if snr_gamma <= 0:
            return F.mse_loss(eps.float(), noise.float())
        abar = self.alphas_cumprod[t]
        snr = abar / (1 - abar)
        per_example = (eps.float() - noise.float()).square().flatten(1).mean(1)
        return (per_example * snr.clamp(max=snr_gamma) / snr).mean()

    # ---------------------------------------------------------------- sampling

    def guided_eps(self, model: nn.Module, x: torch.Tensor, t: torch.Tensor,
                   labels: torch.Tensor, guidance: float) -> torch.Tensor:
        """eps_uncond + w (eps_cond - eps_uncond) (Ho & Salimans, 2022): float [B, C, H, W].

        t: int64 [B], the timesteps as the model knows them. w = 0 and w = 1 need one model
        call; any other w evaluates both halves in one batch of 2B.
        """
        if guidance < 0:
            raise ValueError(f"guidance={guidance} must be >= 0 (0: unconditional, "
                             "1: conditional, > 1: stronger class guidance)")
        null = torch.full_like(labels, model.null_label)
        if guidance == 1.0:
            return model(x, t, labels)
        if guidance == 0.0:
            return model(x, t, null)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        # unflatten, not chunk: chunk's split arithmetic makes torch.export fix the batch size.
        cond, uncond = both.unflatten(0, (2, -1)).unbind(0)
        return uncond + guidance * (cond - uncond)

    def ddim_sigmas(self, eta: float) -> torch.Tensor:
        """float64 [T]: sigma of the DDIM step from each step t to t - 1 (Song et al., 2021,
        eq. 16), eta sqrt((1 - abar_{t-1}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t-1})."""
        steps = _steps(self._timesteps, self._betas, self._abar)[::-1]
        return torch.tensor([_ddim_sigma(s, eta) for s in steps], dtype=torch.float64)

    def sample(self, model: nn.Module, labels: torch.Tensor, noise: torch.Tensor,
               sampler: SamplerConfig) -> torch.Tensor:
        """Images float [B, C, H, W] in [-1, 1] (when clip_x0) for labels int64 [B].

        noise: float [B, K+1, C, H, W] with K = sampler.steps (see draw_noise).
        Runs the chosen sampler on the process respaced to K steps.
        """
        sampler_fits(sampler.steps, self.num_timesteps)
        steps = _steps(*self._spaced(sampler.steps))
        if sampler.kind == "ddpm":
            return _ancestral(model, labels, noise, steps, self, sampler.guidance, sampler.clip_x0)
        return _ddim(model, labels, noise, steps, self, sampler.eta, sampler.guidance,
                     sampler.clip_x0)

    def ddpm(self, model: nn.Module, labels: torch.Tensor, noise: torch.Tensor,
             guidance: float = 1.0, clip_x0: bool = True) -> torch.Tensor:
        """Ancestral sampling through every step of this process with its own betas (Ho et
        al., 2020, alg. 2): noise float [B, T+1, C, H, W] -> float [B, C, H, W]."""
        steps = _steps(self._timesteps, self._betas, self._abar)
        return _ancestral(model, labels, noise, steps, self, guidance, clip_x0)

    def ddim(self, model: nn.Module, labels: torch.Tensor, noise: torch.Tensor,
             eta: float = 0.0, guidance: float = 1.0, clip_x0: bool = True) -> torch.Tensor:
        """DDIM through every step of this process (Song et al., 2021, eq. 12):
        noise float [B, T+1, C, H, W] -> float [B, C, H, W]."""
        if eta < 0:
            raise ValueError(f"eta={eta} must be >= 0 (0: deterministic, 1: DDPM posterior variance)")
        steps = _steps(self._timesteps, self._betas, self._abar)
        return _ddim(model, labels, noise, steps, self, eta, guidance, clip_x0)


# ------------------------------------------------------------------ sampler loops
# Python loops over a fixed list of steps with Python-float constants: traced, each unrolls
# into a graph with no control flow whose only inputs are the labels and the noise.

def _denoise(process: Diffusion, model: nn.Module, labels: torch.Tensor, noise: torch.Tensor,
             steps: list[_Step], guidance: float, clip_x0: bool, update) -> torch.Tensor:
    """The loop both samplers share: at each step predict eps, estimate x_0 from it, and
    let ``update(step, x_t, x0, eps, z)`` return x_{t-1}; z is that step's noise image."""
    if noise.ndim != 5 or noise.shape[1] != len(steps) + 1:
        raise ValueError(f"noise has shape {tuple(noise.shape)}; expected [B, {len(steps) + 1}, "
                         f"C, H, W] (x_T plus one image per step of {len(steps)}); draw it with "
                         "draw_noise")
    x = noise[:, 0]
    for k, s in enumerate(steps, start=1):
        t = torch.full_like(labels, s.t)
        eps = process.guided_eps(model, x, t, labels, guidance).float()
        x0 = (x - math.sqrt(1 - s.abar) * eps) / math.sqrt(s.abar)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
            # The eps consistent with the clipped x0, so DDIM's direction term agrees with it.
            eps = (x - math.sqrt(s.abar) * x0) / math.sqrt(1 - s.abar)
        x = update(s, x, x0, eps, noise[:, k])
    return x


def _ancestral(model, labels, noise, steps: list[_Step], process: Diffusion,
               guidance: float, clip_x0: bool) -> torch.Tensor:
    """x_{t-1} ~ q(x_{t-1} | x_t, x0) = N(c0 x0 + ct x_t, beta~_t) (Ho et al., 2020, eq. 7)."""

    def update(s: _Step, x, x0, eps, z):
        c0 = s.beta * math.sqrt(s.abar_prev) / (1 - s.abar)
        ct = (1 - s.abar_prev) * math.sqrt(1 - s.beta) / (1 - s.abar)
        var = s.beta * (1 - s.abar_prev) / (1 - s.abar)
        # beta~ is 0 on the step that lands on abar = 1: the final image gets no noise.
        return c0 * x0 + ct * x + math.sqrt(var) * z if var > 0 else c0 * x0 + ct * x

    return _denoise(process, model, labels, noise, steps, guidance, clip_x0, update)


def _ddim(model, labels, noise, steps: list[_Step], process: Diffusion, eta: float,
          guidance: float, clip_x0: bool) -> torch.Tensor:
    """x_{t-1} = sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1} - sigma^2) eps + sigma z
    (Song et al., 2021, eq. 12); with eta = 0, sigma = 0 and z is never read."""

    def update(s: _Step, x, x0, eps, z):
        sigma = _ddim_sigma(s, eta)
        # Rounding can make the radicand a hair below 0 at eta = 1; exactly, it is >= 0.
        direction = math.sqrt(max(0.0, 1 - s.abar_prev - sigma ** 2))
        out = math.sqrt(s.abar_prev) * x0 + direction * eps
        return out + sigma * z if sigma > 0 else out

    return _denoise(process, model, labels, noise, steps, guidance, clip_x0, update)
