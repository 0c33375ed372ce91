"""Sample grids taken while a generator trains: at epoch ends, at most a fixed number."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genaug import generators
from genaug.accel import Accel
from genaug.metrics import plots
from genaug.services import tracking

PER_CLASS = 10


def epoch_ends(total_steps: int, steps_per_epoch: float, max_grids: int) -> set[int]:
    """Steps (1..total_steps) that end an epoch, thinned to at most ``max_grids`` evenly
    spread ones; the last step is always included, so even a run shorter than an epoch
    shows one grid."""
    if max_grids < 1 or total_steps < 1:
        return set()
    per_epoch = max(1.0, steps_per_epoch)
    ends = [round(per_epoch * e) for e in range(1, int(total_steps // per_epoch) + 1)]
    ends = [s for s in ends if s < total_steps] + [total_steps]
    stride = -(-len(ends) // max_grids)
    return set(ends[::-1][::stride])


class GridLogger:
    """snapshot(step, net) for the training loops: samples one row per class from the net
    being trained (wrapped by ``as_sampler``) and logs it to MLflow as
    grids/step_NNNNNNN.png. The noise is seeded by ``seed`` alone, so the grids of one
    run show the same noise at every step, and the training RNG is never touched."""

    def __init__(self, steps: set[int], as_sampler: Callable[[torch.nn.Module], torch.nn.Module],
                 class_names, accel: Accel, seed: int):
        self.steps, self.as_sampler = steps, as_sampler
        self.class_names, self.accel, self.seed = class_names, accel, seed
        self.logged: list[int] = []

    def __call__(self, step: int, net: torch.nn.Module) -> None:
        if tracking.active_run_id() is None:
            return
        labels = np.repeat(np.arange(len(self.class_names)), PER_CLASS)
        # The wrapper takes the net's mode, so sample() hands the net back in the mode it had.
        module = self.as_sampler(net).train(net.training)
        images = generators.sample(module, labels, self.accel, self.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"step_{step:07d}.png"
            plots.sample_grid(images, labels, self.class_names, path, PER_CLASS, f"step {step}")
            tracking.log_artifact(path, "grids")
        self.logged.append(step)
