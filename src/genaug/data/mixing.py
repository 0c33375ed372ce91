"""How many synthetic images each class gets, and the real and synthetic images mixed.

Two rules (SYNTH):
- ratio: r * n_real synthetic images in all, the same number for every class;
- balance: every class topped up to the largest class's count (or to ``target`` images),
  so a class with 10x fewer real images gets the most synthetic ones and a class at the
  target none.
"""

from __future__ import annotations

import numpy as np


def synthetic_per_class(n_real: int, ratio: float, num_classes: int) -> int:
    """Synthetic images per class so that n_synthetic / n_real = ratio, equal for every class."""
    return int(round(ratio * n_real / num_classes))


def synthetic_counts(real_y: np.ndarray, num_classes: int, ratio: float, mode: str = "ratio",
                     target: int | None = None) -> np.ndarray:
    """int64 [K]: synthetic images per class for real labels ``real_y`` (int64 [N]) under
    the module docstring's rule ``mode`` ("ratio" or "balance")."""
    if mode == "ratio":
        return np.full(num_classes, synthetic_per_class(len(real_y), ratio, num_classes), dtype=np.int64)
    if mode != "balance":
        raise ValueError(f"unknown synthesis mode {mode!r}; choose ratio or balance, e.g. SYNTH=balance")
    real = np.bincount(real_y, minlength=num_classes).astype(np.int64)
    level = int(target) if target else int(real.max())
    return np.maximum(level - real, 0)


def mix(real_x: np.ndarray, real_y: np.ndarray, synth_x: np.ndarray, synth_y: np.ndarray,
        counts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real data plus ``counts[k]`` synthetic images of each class k (synthetic_counts).

    All arrays: x uint8 [N, C, H, W], y int64 [N]. Raises ValueError when the synthetic
    set has too few images of some class; the message says how many to synthesize.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for cls, per_class in enumerate(int(c) for c in counts):
        idx = np.flatnonzero(synth_y == cls)
        if len(idx) < per_class:
            raise ValueError(f"synthetic set has {len(idx)} images of class {cls}, the mix needs {per_class}; "
                             f"synthesize at least {per_class} of it")
        picked.append(rng.choice(idx, size=per_class, replace=False))
    take = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return (np.concatenate([real_x, synth_x[take]]), np.concatenate([real_y, synth_y[take]]))
