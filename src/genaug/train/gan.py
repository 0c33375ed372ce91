"""Adversarial training for the class-conditional GANs (non-saturating loss)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genaug.accel import Accel
from genaug.data.batches import Batches
from genaug.train.progress import bar


@dataclass(frozen=True)
class GanConfig:
    steps: int
    batch: int
    z_dim: int
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # DCGAN paper's Adam settings
    log_every: int = 100


def train_gan(G: torch.nn.Module, D: torch.nn.Module, x: np.ndarray, y: np.ndarray,
              cfg: GanConfig, accel: Accel, num_classes: int, seed: int) -> dict[str, list]:
    """Train G and D in place on images x (uint8 [N, C, H, W]) with labels y (int64 [N]).

    Returns a history of per-step means over each log window: step, d_loss, g_loss,
    d_real and d_fake (D's mean probability on real and generated images: the D/G balance).
    """
    gen = torch.Generator().manual_seed(seed)
    data = Batches(x, y, cfg.batch, accel.device, gen).forever()
    G, D = accel.prepare(G).train(), accel.prepare(D).train()
    fused = accel.device.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas, fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas, fused=fused)
    history = {k: [] for k in ("step", "d_loss", "g_loss", "d_real", "d_fake")}
    window = {k: 0.0 for k in history if k != "step"}
    n_window = 0
    with bar(cfg.steps, "train_generator", "step") as progress:
        for step in range(1, cfg.steps + 1):
            xb, yb = next(data)
            real = accel.images(xb) * 2.0 - 1.0
            z = torch.randn(len(yb), cfg.z_dim, device=accel.device)
            fake_y = torch.randint(0, num_classes, (len(yb),), device=accel.device)
            with accel.autocast():
                fake = G(fake_y, z)
                d_real = D(real, yb)
                d_fake = D(fake.detach(), fake_y)
                d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                          + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            with accel.autocast():
                g_logit = D(fake, fake_y)
                # Non-saturating loss: G maximises log D(G(z)) for strong early gradients.
                g_loss = F.binary_cross_entropy_with_logits(g_logit, torch.ones_like(g_logit))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

            window["d_loss"] += d_loss.item()
            window["g_loss"] += g_loss.item()
            window["d_real"] += torch.sigmoid(d_real.float()).mean().item()
            window["d_fake"] += torch.sigmoid(d_fake.float()).mean().item()
            n_window += 1
            progress.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                history["step"].append(step)
                for k, v in window.items():
                    history[k].append(v / n_window)
                progress.set_postfix(d=f"{history['d_loss'][-1]:.3f}", g=f"{history['g_loss'][-1]:.3f}",
                                     d_real=f"{history['d_real'][-1]:.2f}", d_fake=f"{history['d_fake'][-1]:.2f}")
                window = dict.fromkeys(window, 0.0)
                n_window = 0
    return history


@torch.no_grad()
def sample(G: torch.nn.Module, labels: np.ndarray, z_dim: int, accel: Accel, seed: int,
           batch: int = 500) -> np.ndarray:
    """Generate one image per label: labels int64 [N] -> uint8 [N, C, H, W].

    Noise comes from a generator seeded with ``seed``, so equal arguments give equal images.
    """
    G = accel.prepare(G).eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(labels), batch):
        y = torch.from_numpy(labels[i:i + batch]).to(accel.device)
        z = torch.randn(len(y), z_dim, generator=gen).to(accel.device)
        with accel.autocast():
            img = G(y, z).float()
        out.append(to_uint8(img).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.uint8)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to the nearest level."""
    return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
