"""A mode-collapse signal: how different a class's images are from each other."""

from __future__ import annotations

import numpy as np
import torch


def mean_pairwise_distance(images: np.ndarray) -> float:
    """Mean L2 distance between all pairs of images (uint8 [N, C, H, W]), pixels in [0, 1],
    divided by sqrt(C*H*W) so the value does not grow with the image size."""
    x = torch.from_numpy(images.reshape(len(images), -1)).float() / 255.0
    if len(x) < 2:
        return 0.0
    d = torch.cdist(x, x)
    n = len(x)
    return float(d.sum() / (n * (n - 1)) / np.sqrt(x.shape[1]))


def per_class(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float [K]: mean_pairwise_distance within each class (NaN for an absent class)."""
    return np.array([mean_pairwise_distance(images[labels == k]) if (labels == k).sum() > 1 else np.nan
                     for k in range(num_classes)])


def collapse_ratio(generated: np.ndarray, gen_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                   num_classes: int) -> np.ndarray:
    """float [K]: generated diversity / real diversity per class. Near 0 means the generator
    draws (nearly) one image per class: mode collapse. Near 1 matches the data."""
    return per_class(generated, gen_labels, num_classes) / per_class(real, real_labels, num_classes)
