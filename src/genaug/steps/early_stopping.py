"""train_generator's early stopping (GAN_EARLY_STOP=1): the FID measurement built from the
run's own FID machinery, and what the step records of the decision (genaug.train.early_stop).

MLflow gets the curve as the metric ``early_stop_fid`` with step = generator step (the loss
curves' steps are critic steps; the same for dcgan and vanilla_gan, 5x for wgan_gp), the
kept step and its FID as ``early_stop_best_step`` and ``early_stop_best_fid``, and, when
training stopped before its last step, ``early_stop_stopped_at``.
"""

from __future__ import annotations

import torch

from genaug.data.decoded import reference_data
from genaug.metrics import feature_net
from genaug.metrics.fid_probe import FidProbe
from genaug.metrics.reference import reference
from genaug.sections import GanConfig, MetricsConfig
from genaug.services import tracking
from genaug.steps.context import TrainingContext
from genaug.train.distributed import World
from genaug.train.early_stop import EarlyStop, fixed_sample_fid

FID_METRIC = "early_stop_fid"


def start(ctx: TrainingContext, cfg: GanConfig, metrics: MetricsConfig, store,
          world: World) -> tuple[EarlyStop, FidProbe | None]:
    """The run's EarlyStop and, on rank 0 (the one rank that measures), its FidProbe."""
    probe = None
    if world.main:
        with torch.random.fork_rng(devices=[]):  # building it leaves training's RNG where it was
            probe = _probe(ctx, metrics, store)
        tracking.log_params({"early_stop_every": cfg.early_stop_every, "early_stop_patience": cfg.early_stop_patience,
                             "early_stop_samples": cfg.early_stop_samples, "early_stop_network": probe.net.name,
                             "early_stop_mode": probe.mode})
    measure = None if probe is None else fixed_sample_fid(probe, cfg.z_dim, ctx.spec.num_classes,
                                                          cfg.early_stop_samples, ctx.accel)
    return EarlyStop(cfg.early_stop_every, cfg.early_stop_patience, measure, log=_log), probe


def _probe(ctx: TrainingContext, metrics: MetricsConfig, store) -> FidProbe:
    """FID as evaluate_generator measures it: the section's network and first mode, against the
    run's cached reference features (computed now if this is the run's first use of them)."""
    net, origin = feature_net.for_profile(metrics.fid_network, store, ctx.accel.device)
    if net is None:
        raise feature_net.FeatureNetError(f"early stopping measures FID, but there is no feature network: {origin}; "
                                          "or set GAN_EARLY_STOP=0")
    mode = metrics.fid_modes[0]
    _, raw = reference_data(ctx.spec.name, ctx.data_meta.get("data_version") or "latest", store,
                            side=ctx.spec.height)
    return FidProbe(net, mode, reference(ctx.spec, raw, metrics.fid_samples, mode, net, store))


def _log(g_step: int, fid: float) -> None:
    tracking.log_metrics({FID_METRIC: fid}, step=g_step)


def finish(early: EarlyStop, probe: FidProbe, samples: int) -> dict:
    """The step's record of the decision: early.record() and what it was measured with."""
    record = {**early.record(), "samples": samples, **probe.describe()}
    tracking.log_metrics({"early_stop_best_fid": record["best_fid"], "early_stop_best_step": record["best_step"],
                          "early_stop_stopped_at": record["stopped_at"]})
    return record


def curve(record: dict) -> tuple[str, str, dict]:
    """The FID curve for the step's page, as genaug.steps.train_generator.Fit.curves holds it."""
    points = record["curve"]
    return ("early_stop_fid", f"FID of {record['samples']} fixed samples, at generator steps (early stopping)",
            {"FID": (points["step"], points["fid"]), "kept": ([record["best_step"]], [record["best_fid"]])})
