"""Mixing real and synthetic training images at a class-balanced ratio."""

from __future__ import annotations

import numpy as np


def synthetic_per_class(n_real: int, ratio: float, num_classes: int) -> int:
    """Synthetic images per class so that n_synthetic / n_real = ratio, equal for every class."""
    return int(round(ratio * n_real / num_classes))


def mix(real_x: np.ndarray, real_y: np.ndarray, synth_x: np.ndarray, synth_y: np.ndarray,
        ratio: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real data plus ``ratio * len(real)`` synthetic images, the same number per class.

    All arrays: x uint8 [N, C, H, W], y int64 [N]. Raises ValueError when the synthetic
    set has too few images of some class; the message says how many to synthesize.
    """
    per_class = synthetic_per_class(len(real_y), ratio, num_classes)
    rng = np.random.default_rng(seed)
    picked = []
    for cls in range(num_classes):
        idx = np.flatnonzero(synth_y == cls)
        if len(idx) < per_class:
            raise ValueError(f"synthetic set has {len(idx)} images of class {cls}, ratio {ratio} "
                             f"needs {per_class}; synthesize with n_per_class >= {per_class}")
        picked.append(rng.choice(idx, size=per_class, replace=False))
    take = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return (np.concatenate([real_x, synth_x[take]]), np.concatenate([real_y, synth_y[take]]))
