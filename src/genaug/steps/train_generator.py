"""Train a class-conditional generator on the real training split."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from genaug import catalog, checkpoint, generators, models
from genaug.diffusion import Diffusion
from genaug.metrics import diversity, plots
from genaug.sections import DiffusionConfig, GanConfig, MetricsConfig, SamplerConfig
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps import early_stopping, figures
from genaug.steps.context import TrainingContext, spec_meta, training_context
from genaug.steps.gpus import on_every_gpu
from genaug.steps.timing import timed_step
from genaug.train import distributed
from genaug.train.checkpoints import CHECKPOINT_PARAM, Checkpointer, run_key
from genaug.train.distributed import World
from genaug.train.diffusion import train_diffusion
from genaug.train.gan import train_gan
from genaug.train.gan_losses import LOSSES
from genaug.train.snapshots import GridLogger, epoch_ends

GRID_PER_CLASS = 10
DIVERSITY_PER_CLASS = 32
# Bumped when what a training checkpoint holds changes, so old state is never resumed.
# 2: the DCGAN generator's batch norms became per-class (genaug.models.gan.ClassBatchNorm2d).
CHECKPOINT_FORMAT = 2


@dataclass
class Fit:
    """What one family's training hands back to the step."""

    net: torch.nn.Module       # the weights that sample: G, or the EMA UNet
    config: dict               # rebuilds net with genaug.models.build_generator
    history: dict[str, list]
    step_key: str
    curves: list[tuple[str, str, dict]] = field(default_factory=list)  # (file stem, title, series)
    meta: dict = field(default_factory=dict)


@on_every_gpu
@timed_step
def train_generator(data_path: str, out_path: str, html_path: str = "", parent_run_id: str = "", *,
                    generator: str, seed: int, gan: GanConfig | None = None, diffusion: DiffusionConfig | None = None,
                    sampler: SamplerConfig | None = None, metrics: MetricsConfig | None = None) -> dict:
    """Train ``generator`` on ``data_path``'s x_train; write its checkpoint to ``out_path``.

    gan: a GAN's section; diffusion and sampler: a diffusion model's sections (how it
    trains, and how it samples as synthesized and served). Each as resolved by
    genaug.params.resolve (or a dict / JSON text of one).
    metrics: the run's metrics section, whose feature network, first FID mode and reference
    early stopping measures with (needed when the gan section's early_stop is on).
    html_path (optional): a page with the loss curves, the balance plot and a sample grid.
    The metadata's ``early_stop`` is the early-stopping decision (genaug.train.early_stop:
    best_step, best_fid, stopped_at, the curve) and what it was measured with, or None.
    """
    family = catalog.GENERATORS[catalog.choose("generator", generator, catalog.GENERATORS)]
    gan, diffusion, sampler = GanConfig.coerce(gan), DiffusionConfig.coerce(diffusion), SamplerConfig.coerce(sampler)
    metrics = MetricsConfig.coerce(metrics)
    if (gan if family == "gan" else diffusion and sampler) is None:
        raise ValueError(f"generator {generator!r} is a {family}: give it the "
                         f"{'gan section' if family == 'gan' else 'diffusion and sampler sections'}")
    if family == "gan" and gan.early_stop and metrics is None:
        raise ValueError("the gan section's early_stop is on, and early stopping measures FID with the metrics "
                         "section's network and reference: give train_generator the metrics section as well "
                         "(run_options.json's; --metrics '{\"fid_network\": \"stand-in\"}' for a quick try), "
                         "or turn early_stop off")
    ctx = training_context(data_path, seed)
    ctx = replace(ctx, accel=generators.accel_for(family, ctx.accel))
    sampling = generators.sampling_settings(diffusion if family == "diffusion" else None, sampler)
    store = optional_store()
    with distributed.joined(ctx.accel.device) as world:
        fit = (_fit_gan(ctx, generator, seed, store, gan, world, metrics) if family == "gan" else
               _fit_diffusion(ctx, generator, seed, store, diffusion, sampler, world))
    if not world.main:
        return {}  # rank 0 writes the step's outputs (genaug.steps.gpus)
    tracking.log_history(fit.history, fit.step_key)
    module = generators.sampler_module(generator, fit.net, fit.config, sampling).eval()
    meta = {"generator": generator, "family": family, "dataset": ctx.spec.name, **spec_meta(ctx.spec),
            "data_hash": ctx.data_meta["content_hash"], "seed": seed,
            "accel": ctx.accel.describe(), "params_g": sum(p.numel() for p in fit.net.parameters()),
            "sampling": sampling, **fit.meta}
    meta["diversity_ratio"] = _diversity(module, ctx, seed)
    checkpoint.save(out_path, "generator", generator, fit.config, fit.net, meta)
    _figures(module, fit, ctx, seed, html_path)
    return meta


def _checkpointer(store, every: int, **fields) -> Checkpointer | None:
    return None if store is None else Checkpointer(store, run_key(**fields, format=CHECKPOINT_FORMAT), every)


def _resumed(checkpointer: Checkpointer | None) -> dict:
    meta = {"checkpoint": checkpointer.uri if checkpointer else None,
            "resumed_from_step": checkpointer.resumed_from if checkpointer else None}
    if meta["checkpoint"]:
        tracking.log_params({CHECKPOINT_PARAM: meta["checkpoint"]})
    if meta["resumed_from_step"] is not None:
        tracking.log_params({"resumed_from_step": meta["resumed_from_step"]})
    return meta


def _fit_gan(ctx: TrainingContext, generator: str, seed: int, store, cfg: GanConfig, world: World,
             metrics: MetricsConfig | None) -> Fit:
    spec, acc = ctx.spec, ctx.accel
    config = {"shape": list(spec.shape), "num_classes": spec.num_classes, **cfg.model_args()}
    G, D = models.build_gan(generator, **{**config, "shape": spec.shape})
    loss = LOSSES[generator]()
    # What the early-stopping measurements rest on decides the run too (the same on every rank).
    measured_by = {"fid_network": metrics.fid_network, "fid_mode": metrics.fid_modes[0],
                   "fid_reference_n": metrics.fid_samples} if cfg.early_stop else {}
    checkpointer = _checkpointer(store, cfg.checkpoint_every, data_hash=ctx.data_meta["content_hash"],
                                 generator=generator, seed=seed, model=config, train=cfg.training_key(),
                                 loss=type(loss).__name__, **measured_by)
    tracking.log_params({"generator": generator, "seed": seed, **config, "critic_steps": cfg.steps,
                         "n_critic": loss.n_critic, "batch": cfg.batch, "lr": loss.lr, "betas": loss.betas,
                         "loss": type(loss).__name__, "early_stop": cfg.early_stop})
    early, probe = early_stopping.start(ctx, cfg, metrics, store, world) if cfg.early_stop else (None, None)
    g_steps = max(1, cfg.steps // loss.n_critic)
    per_epoch = len(ctx.arrays["y_train"]) // min(cfg.batch, len(ctx.arrays["y_train"])) / loss.n_critic
    grids = GridLogger(epoch_ends(g_steps, per_epoch, cfg.max_grids),
                       lambda net: generators.GanSampler(net, cfg.z_dim), spec.classes, acc, seed)
    history = train_gan(G, D, ctx.arrays["x_train"], ctx.arrays["y_train"], cfg, acc, spec.num_classes, seed,
                        loss, checkpointer, grids, world=world, early_stop=early)
    steps = history["step"]
    curves = [("loss", "losses", {"D loss": (steps, history["d_loss"]), "G loss": (steps, history["g_loss"])}),
              ("balance", loss.balance_title, {"D(real)": (steps, history["d_real"]),
                                               "D(G(z))": (steps, history["d_fake"])})]
    meta = {"steps": cfg.steps, "final_d_loss": history["d_loss"][-1], "final_g_loss": history["g_loss"][-1],
            "final_d_real": history["d_real"][-1], "final_d_fake": history["d_fake"][-1],
            "grid_steps": grids.logged, **_resumed(checkpointer), "early_stop": None}
    if early is not None and world.main:
        meta["early_stop"] = early_stopping.finish(early, probe, cfg.early_stop_samples)
        curves.append(early_stopping.curve(meta["early_stop"]))
    return Fit(G, config, history, "step", curves, meta)


def _fit_diffusion(ctx: TrainingContext, generator: str, seed: int, store, cfg: DiffusionConfig,
                   sampler: SamplerConfig, world: World) -> Fit:
    spec, acc = ctx.spec, ctx.accel
    config = {"shape": list(spec.shape), "num_classes": spec.num_classes, **cfg.unet_args(spec.height)}
    unet = models.build_generator(generator, **{**config, "shape": spec.shape})
    process = Diffusion.from_schedule(**cfg.process_args())
    # Keyed by the family, not the name: ddpm and ddim train the same model, so either
    # one reuses (or resumes) the other's training.
    checkpointer = _checkpointer(store, cfg.checkpoint_every, data_hash=ctx.data_meta["content_hash"],
                                 family="diffusion", seed=seed, model=config, train=cfg.as_dict(), mirror=spec.mirror)
    tracking.log_params({"generator": generator, "seed": seed, **config, **cfg.as_dict(),
                         **{f"sampler_{k}": v for k, v in sampler.as_dict().items()}})
    per_epoch = len(ctx.arrays["y_train"]) / min(cfg.batch, len(ctx.arrays["y_train"]))
    grids = GridLogger(epoch_ends(cfg.steps, per_epoch, cfg.max_grids),
                       lambda net: generators.DiffusionSampler(net, process, sampler), spec.classes, acc, seed)
    ema, history = train_diffusion(unet, process, ctx.arrays["x_train"], ctx.arrays["y_train"], cfg, acc, seed,
                                   checkpointer, grids, mirror=spec.mirror, world=world)
    steps = history["step"]
    curves = [("loss", "epsilon MSE", {"loss": (steps, history["loss"])}),
              ("grad_norm", "gradient norm (before clipping)", {"grad norm": (steps, history["grad_norm"])})]
    meta = {"steps": cfg.steps, "final_loss": history["loss"][-1], "grid_steps": grids.logged,
            **_resumed(checkpointer)}
    return Fit(ema, config, history, "step", curves, meta)


def _diversity(module, ctx: TrainingContext, seed: int) -> dict[str, float]:
    """Per-class diversity of samples relative to real images (the mode-collapse signal)."""
    spec, arrays = ctx.spec, ctx.arrays
    labels = np.repeat(np.arange(spec.num_classes), DIVERSITY_PER_CLASS)
    images = generators.sample(module, labels, ctx.accel, seed + 7)
    real_idx = np.concatenate([np.flatnonzero(arrays["y_train"] == k)[:DIVERSITY_PER_CLASS]
                               for k in range(spec.num_classes)])
    ratio = diversity.collapse_ratio(images, labels, arrays["x_train"][real_idx], arrays["y_train"][real_idx],
                                     spec.num_classes)
    by_class = {name: float(r) for name, r in zip(spec.classes, ratio)}
    tracking.log_metrics({"diversity_ratio_min": float(np.nanmin(ratio)),
                          **{f"diversity_ratio/{k.replace('/', '-')}": v for k, v in by_class.items()}})
    return by_class


def _figures(module, fit: Fit, ctx: TrainingContext, seed: int, html_path: str) -> None:
    spec = ctx.spec
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels = np.repeat(np.arange(spec.num_classes), GRID_PER_CLASS)
        images = generators.sample(module, labels, ctx.accel, seed)
        plots.sample_grid(images, labels, spec.classes, tmp / "grid.png", GRID_PER_CLASS, "samples")
        parts = [("Samples, one row per class", tmp / "grid.png")]
        for stem, title, series in fit.curves:
            plots.curves(series, tmp / f"{stem}.png", fit.step_key, title)
            parts.append((title[:1].upper() + title[1:], tmp / f"{stem}.png"))
        figures.publish(html_path, "train_generator", parts)
