"""Adversarial training for the class-conditional GANs, and sampling from their generators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genaug.accel import Accel
from genaug.data.batches import Batches
from genaug.train.gan_losses import NonSaturating
from genaug.train.progress import bar


@dataclass(frozen=True)
class GanConfig:
    steps: int        # critic (discriminator) updates; the generator gets steps // n_critic
    batch: int
    z_dim: int
    log_every: int = 100  # in critic updates


def train_gan(G: torch.nn.Module, D: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: GanConfig,
              accel: Accel, num_classes: int, seed: int, loss=None, checkpointer=None) -> dict[str, list]:
    """Train G and D in place on images x (uint8 [N, C, H, W]) with labels y (int64 [N]).

    loss: an objective from genaug.train.gan_losses (default: non-saturating).
    checkpointer: a genaug.train.checkpoints.Checkpointer, or None. With one, training
    resumes from its saved state (weights, optimizers, RNG, step) and saves every
    ``checkpointer.every`` generator steps; a resumed run ends bit-identical on the CPU
    to one that was never interrupted. Returns a history of means over each log window:
    step (critic updates so far), d_loss, g_loss and the objective's balance statistics.
    """
    loss = loss or NonSaturating()
    G, D = accel.prepare(G).train(), accel.prepare(D).train()
    fused = accel.device.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=loss.lr, betas=loss.betas, fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=loss.lr, betas=loss.betas, fused=fused)
    history: dict[str, list] = {"step": []}
    window: dict[str, torch.Tensor] = {}
    n_window, start = 0, 0
    state = checkpointer.load() if checkpointer else None
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng_cpu"])
        if accel.device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], accel.device)
        history, window, n_window, start = state["history"], state["window"], state["n_window"], state["g_step"]
    g_steps = max(1, cfg.steps // loss.n_critic)
    data = Batches(x, y, cfg.batch, accel.device, seed).forever(start_step=start * loss.n_critic)
    with bar(g_steps, "train_generator", "G step") as progress:
        progress.update(start)
        for g_step in range(start + 1, g_steps + 1):
            for _ in range(loss.n_critic):
                xb, yb = next(data)
                real = accel.images(xb) * 2.0 - 1.0
                z = torch.randn(len(yb), cfg.z_dim, device=accel.device)
                fake_y = yb if getattr(loss, "same_labels", False) else \
                    torch.randint(0, num_classes, (len(yb),), device=accel.device)
                with accel.autocast():
                    with torch.no_grad():
                        fake = G(fake_y, z)
                    d_loss, stats = loss.critic(D, real, yb, fake, fake_y)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                # Summed on the device; read once per log window, not once per step.
                for k, v in {"d_loss": d_loss.detach(), **{k: v.detach() for k, v in stats.items()}}.items():
                    window[k] = window.get(k, 0.0) + v.float()
                n_window += 1
            z = torch.randn(len(yb), cfg.z_dim, device=accel.device)
            fake_y = torch.randint(0, num_classes, (len(yb),), device=accel.device)
            with accel.autocast():
                g_loss = loss.generator(D, G(fake_y, z), fake_y)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            window["g_loss"] = window.get("g_loss", 0.0) + g_loss.detach().float() * loss.n_critic
            progress.update()
            step = g_step * loss.n_critic
            if step % cfg.log_every < loss.n_critic or g_step == g_steps:
                history["step"].append(step)
                for k, v in window.items():
                    history.setdefault(k, []).append(float(v) / n_window)
                progress.set_postfix({k: f"{history[k][-1]:.3f}" for k in ("d_loss", "g_loss", "d_real", "d_fake")})
                window, n_window = {}, 0
            if checkpointer and (g_step % checkpointer.every == 0 or g_step == g_steps):
                checkpointer.save({
                    "step": step, "g_step": g_step, "G": G.state_dict(), "D": D.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state(accel.device) if accel.device.type == "cuda" else None,
                    "history": history, "window": window, "n_window": n_window})
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
