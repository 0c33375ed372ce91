"""Early stopping for the GANs by FID (GAN_EARLY_STOP=1).

Every ``every`` generator steps, and at the last step, the training loop measures the
generator (``measure``: FID of the images of a fixed set of latents and labels, see
``fixed_sample_fid``) and hands the value to ``EarlyStop.observe``, which decides:

- a value below every earlier one is an improvement: the generator's weights at that step
  are kept (a copy on the CPU) and the count of measurements since the best restarts at 0;
- any other value (equal, higher, or not a number) adds 1 to that count; when it reaches
  ``patience``, training stops at that step.

The generator handed on is the kept one, not the last. The whole state (every measurement,
the best weights, FID and step, the count) travels in the training checkpoint, so a resumed
run takes the decisions the uninterrupted run would have taken.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from genaug import generators
from genaug.accel import Accel

# The noise of the measured images: a stream of its own, neither the synthetic set's, the
# training grids' nor evaluate_generator's images.
PROBE_SEED = 3_000_017


def fixed_sample_fid(fid: Callable[[np.ndarray], float], z_dim: int, num_classes: int, n: int,
                     accel: Accel) -> Callable[[torch.nn.Module], float]:
    """measure(G) -> FID of G's images for one fixed set of ``n`` latents (seeded) and labels
    (the classes in turn), through ``fid`` (images uint8 [n, C, H, W] -> float). The images
    are drawn in eval mode (BatchNorm's running statistics, as served); G is left in the mode
    it had, and the global RNG is not touched."""
    labels = np.arange(n, dtype=np.int64) % num_classes

    def measure(G: torch.nn.Module) -> float:
        module = generators.GanSampler(G, z_dim).train(G.training)
        return fid(generators.sample(module, labels, accel, PROBE_SEED))

    return measure


@dataclass
class EarlyStop:
    """The early-stopping decision of one GAN training run, and what it keeps."""

    every: int                                   # generator steps between measurements
    patience: int                                # measurements without improvement before stopping
    measure: Callable[[torch.nn.Module], float] | None = None  # G -> FID; rank 0's only
    log: Callable[[int, float], None] | None = None            # (generator step, FID), e.g. to MLflow
    steps: list[int] = field(default_factory=list)     # generator steps measured, in order
    fids: list[float] = field(default_factory=list)    # their FIDs
    best_step: int | None = None
    best_fid: float = math.inf
    best_weights: dict | None = None             # G's state dict at best_step, on the CPU
    since_best: int = 0                          # measurements since the best one
    stopped_at: int | None = None                # the generator step training stopped at
    seconds: float = 0.0                         # wall time spent measuring

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    def due(self, g_step: int, last: bool) -> bool:
        """Whether generator step ``g_step`` (``last``: the run's final one) is measured."""
        return g_step % self.every == 0 or last

    def timed_measure(self, G: torch.nn.Module) -> float:
        if self.measure is None:
            raise RuntimeError("this EarlyStop has no measure: only rank 0 measures (World.from_main)")
        t0 = time.perf_counter()
        value = self.measure(G)
        self.seconds += time.perf_counter() - t0
        return value

    def observe(self, g_step: int, fid: float, G: torch.nn.Module) -> bool:
        """Record ``fid``, measured on ``G`` at generator step ``g_step``; True when training
        should stop here."""
        self.steps.append(int(g_step))
        self.fids.append(float(fid))
        if fid < self.best_fid:  # False for NaN: a broken measurement never becomes the best
            self.best_step, self.best_fid, self.since_best = int(g_step), float(fid), 0
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in G.state_dict().items()}
        else:
            self.since_best += 1
        if self.log is not None:
            self.log(int(g_step), float(fid))
        if self.since_best >= self.patience:
            self.stopped_at = int(g_step)
        return self.stopped

    def keep_best(self, G: torch.nn.Module) -> None:
        """Load the kept weights into G (G as it is when nothing was ever measured)."""
        if self.best_weights is not None:
            G.load_state_dict(self.best_weights)
            if self.stopped:
                print(f"[genaug] early stopping: FID has not improved for {self.patience} measurements by "
                      f"generator step {self.stopped_at}; keeping step {self.best_step} (FID {self.best_fid:.4g})",
                      file=sys.stderr, flush=True)

    _STATE = ("steps", "fids", "best_step", "best_fid", "best_weights", "since_best", "stopped_at", "seconds")

    def state_dict(self) -> dict:
        """For the training checkpoint (torch.load with weights_only=True reads it back)."""
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's state; the curve so far is logged again, so the
        resumed run's record holds all of it."""
        for k in self._STATE:
            setattr(self, k, state[k])
        if self.log is not None:
            for step, fid in zip(self.steps, self.fids):
                self.log(step, fid)

    def record(self) -> dict:
        """The decision for the step's metadata and the run's summary (JSON)."""
        return {"every": self.every, "patience": self.patience, "best_step": self.best_step,
                "best_fid": None if self.best_step is None else self.best_fid, "stopped_at": self.stopped_at,
                "measurements": len(self.steps), "curve": {"step": list(self.steps), "fid": list(self.fids)},
                "seconds": round(self.seconds, 3)}
