"""What every training step starts from: the prepared data, its spec and the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genaug import accel as accel_mod
from genaug import catalog
from genaug.accel import Accel
from genaug.catalog import DatasetSpec
from genaug.data import imageset


@dataclass(frozen=True)
class TrainingContext:
    arrays: dict[str, np.ndarray]  # x_train/x_val/x_test uint8 [N, C, H, W], y_* int64 [N]
    data_meta: dict
    spec: DatasetSpec
    accel: Accel


def training_context(data_path: str, seed: int) -> TrainingContext:
    """Load the prepared dataset, pick the device, and seed every RNG with ``seed``."""
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    accel_mod.seed_everything(seed)
    return TrainingContext(arrays, data_meta, catalog.dataset_spec(data_meta["dataset"], data_meta), accel_mod.pick())


def spec_meta(spec: DatasetSpec) -> dict:
    """What a checkpoint records of its dataset, so that later steps rebuild the spec of a
    user dataset version too (genaug.catalog.dataset_spec)."""
    return {"classes": list(spec.classes), "shape": list(spec.shape)}
