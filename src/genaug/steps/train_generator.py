"""Step 2: train a class-conditional generator on the real training split."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from genaug import catalog, checkpoint, models, tracking
from genaug.metrics import diversity, plots
from genaug.steps import figures
from genaug.steps.context import optional_store, training_context
from genaug.steps.timing import timed_step
from genaug.train.gan import GanConfig, sample, train_gan
from genaug.train.checkpoints import Checkpointer, run_key
from genaug.train.gan_losses import LOSSES

GRID_PER_CLASS = 10
DIVERSITY_PER_CLASS = 32


@timed_step
def train_generator(data_path: str, generator: str, profile: str, seed: int,
                    out_path: str, html_path: str = "", parent_run_id: str = "") -> dict:
    """Train ``generator`` on ``data_path``'s x_train; write its checkpoint to ``out_path``.

    html_path (optional): a page with the loss curves, the D/G balance and a sample grid.
    """
    catalog.choose("generator", generator, catalog.GENERATORS)
    ctx = training_context(data_path, profile, seed)
    arrays, data_meta, spec, prof, acc = ctx.arrays, ctx.data_meta, ctx.spec, ctx.profile, ctx.accel
    config = {"shape": list(spec.shape), "num_classes": spec.num_classes,
              "z_dim": prof.z_dim, "width": prof.gan_width}
    G, D = models.build_gan(generator, **{**config, "shape": spec.shape})
    cfg = GanConfig(steps=prof.gan_steps, batch=prof.gan_batch, z_dim=prof.z_dim, log_every=prof.log_every)
    loss = LOSSES[generator]()
    store = optional_store()
    checkpointer = None if store is None else Checkpointer(store, run_key(
        data_hash=data_meta["content_hash"], generator=generator, profile=profile, seed=seed, model=config,
        train=asdict(cfg), loss=type(loss).__name__, format=1), prof.checkpoint_every)
    tracking.log_params({"generator": generator, "profile": profile, "seed": seed, **config,
                         "critic_steps": cfg.steps, "n_critic": loss.n_critic, "batch": cfg.batch,
                         "lr": loss.lr, "betas": loss.betas, "loss": type(loss).__name__})
    history = train_gan(G, D, arrays["x_train"], arrays["y_train"], cfg, acc, spec.num_classes, seed, loss,
                        checkpointer)
    tracking.log_history(history, "step")
    meta = {
        "generator": generator, "dataset": spec.name, "data_hash": data_meta["content_hash"],
        "profile": profile, "seed": seed, "steps": cfg.steps, "accel": acc.describe(),
        "params_g": sum(p.numel() for p in G.parameters()),
        "final_d_loss": history["d_loss"][-1], "final_g_loss": history["g_loss"][-1],
        "final_d_real": history["d_real"][-1], "final_d_fake": history["d_fake"][-1],
        "checkpoint": checkpointer.uri if checkpointer else None,
        "resumed_from_step": checkpointer.resumed_from if checkpointer else None,
    }
    if checkpointer and checkpointer.resumed_from is not None:
        tracking.log_params({"resumed_from_step": checkpointer.resumed_from})
    meta["diversity_ratio"] = _diversity(G, arrays, spec, prof.z_dim, acc, seed)
    checkpoint.save(out_path, "generator", generator, config, G, meta)
    _figures(G, history, spec, prof.z_dim, acc, seed, html_path, loss.balance_title)
    return meta


def _diversity(G, arrays: dict, spec, z_dim: int, acc, seed: int) -> dict[str, float]:
    """Per-class diversity of samples relative to real images (the mode-collapse signal)."""
    labels = np.repeat(np.arange(spec.num_classes), DIVERSITY_PER_CLASS)
    images = sample(G, labels, z_dim, acc, seed + 7)
    real_idx = np.concatenate([np.flatnonzero(arrays["y_train"] == k)[:DIVERSITY_PER_CLASS]
                               for k in range(spec.num_classes)])
    ratio = diversity.collapse_ratio(images, labels, arrays["x_train"][real_idx], arrays["y_train"][real_idx],
                                     spec.num_classes)
    by_class = {name: float(r) for name, r in zip(spec.classes, ratio)}
    tracking.log_metrics({"diversity_ratio_min": float(np.nanmin(ratio)),
                          **{f"diversity_ratio/{k.replace('/', '-')}": v for k, v in by_class.items()}})
    return by_class


def _figures(G, history: dict, spec, z_dim: int, acc, seed: int, html_path: str, balance_title: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        steps = history["step"]
        plots.curves({"D loss": (steps, history["d_loss"]), "G loss": (steps, history["g_loss"])},
                     tmp / "loss.png", "critic step", "losses")
        plots.curves({"D(real)": (steps, history["d_real"]), "D(G(z))": (steps, history["d_fake"])},
                     tmp / "balance.png", "critic step", balance_title)
        labels = np.repeat(np.arange(spec.num_classes), GRID_PER_CLASS)
        images = sample(G, labels, z_dim, acc, seed)
        plots.sample_grid(images, labels, spec.classes, tmp / "grid.png", GRID_PER_CLASS, "samples")
        figures.publish(html_path, "train_generator", [("Samples, one row per class", tmp / "grid.png"),
                                                       ("Losses", tmp / "loss.png"),
                                                       ("D/G balance", tmp / "balance.png")])
