"""``train_generator`` on a node of a TrainJob: its dataset and outputs in S3, not in a
KFP task's folders (genaug.steps.handoff). Every rank runs it under torchrun; each takes
its own copy of the staged dataset, and rank 0 publishes the trained generator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from genaug.sections import DiffusionConfig, GanConfig, MetricsConfig, SamplerConfig
from genaug.services.store import Store
from genaug.steps import handoff
from genaug.steps.train_generator import train_generator
from genaug.train.distributed import World


def train_generator_staged(staging: str, data_sha256: str, parent_run_id: str = "", *, generator: str, seed: int,
                           gan: GanConfig | None = None, diffusion: DiffusionConfig | None = None,
                           sampler: SamplerConfig | None = None, metrics: MetricsConfig | None = None) -> dict:
    """Train ``generator`` on the dataset staged under ``staging`` (a key prefix of the
    checkpoints bucket, whose data.npz must have sha256 ``data_sha256``); rank 0 publishes
    the generator there. The sections as train_generator takes them."""
    store = Store()
    with tempfile.TemporaryDirectory(prefix="genaug-node-") as tmp:
        data, model, samples = Path(tmp) / handoff.DATA, Path(tmp) / handoff.MODEL, Path(tmp) / handoff.SAMPLES
        handoff.fetch_data(store, staging, data, data_sha256)
        meta = train_generator(str(data), str(model), str(samples), parent_run_id, generator=generator, seed=seed,
                               gan=gan, diffusion=diffusion, sampler=sampler, metrics=metrics)
        if World.from_env().main:
            handoff.publish(store, staging, model, samples, meta, data_sha256)
    return meta
