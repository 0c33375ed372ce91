"""The Likeness Score (Guan and Loew, Neural Computing and Applications, 2021; the successor
of their CID index): can two image sets be told apart by the distances within and between them?

ICD_r, ICD_g: all pairwise Euclidean distances within the real and within the generated set
(pixel space, flattened); BCD: all distances between a real and a generated image.
DSI = max(KS(ICD_r, BCD), KS(ICD_g, BCD)), KS the two-sample Kolmogorov-Smirnov statistic;
LS = 1 - DSI in [0, 1]: 1 when the sets cannot be told apart, 0 when every distance across
them differs from those within one (a collapsed set: its ICD is all zeros).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import ks_2samp

# Fewer than 5 images give at most 10 within-set distances: KS on those is a step function of
# a handful of values, not a measurement.
MIN_IMAGES = 5


def _pixels(images: np.ndarray) -> torch.Tensor:
    """float64 [N, C*H*W] in [0, 1] of uint8 [N, C, H, W]; float64 because cdist's matrix-product
    form subtracts sums over up to 49152 pixels (3x128x128), where float32 keeps ~4 digits."""
    return torch.from_numpy(images.reshape(len(images), -1)).double() / 255.0


def _within(x: torch.Tensor) -> np.ndarray:
    """float [N(N-1)/2]: the distances between distinct rows of x (the upper triangle)."""
    i, j = torch.triu_indices(len(x), len(x), offset=1)
    return torch.cdist(x, x)[i, j].numpy()


def likeness(real: np.ndarray, generated: np.ndarray) -> float:
    """LS of two image sets, uint8 [N, C, H, W] and [M, C, H, W], N and M >= MIN_IMAGES."""
    if min(len(real), len(generated)) < MIN_IMAGES:
        raise ValueError(f"the Likeness Score needs at least {MIN_IMAGES} images in each set, got "
                         f"{len(real)} real and {len(generated)} generated")
    r, g = _pixels(real), _pixels(generated)
    bcd = torch.cdist(r, g).flatten().numpy()
    # The statistic only: the asymptotic p-value is cheap where the exact one is O(N*M) and unused.
    dsi = max(ks_2samp(_within(r), bcd, method="asymp").statistic, ks_2samp(_within(g), bcd, method="asymp").statistic)
    return 1.0 - float(dsi)


def subset(labels: np.ndarray, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [min(n, count)]: indices of up to n images of class k, drawn without replacement."""
    members = np.flatnonzero(labels == k)
    return np.sort(rng.choice(members, size=min(n, len(members)), replace=False))


def per_class(generated: np.ndarray, gen_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
              classes: list[str], images: int, seed: int) -> dict:
    """evaluate_generator's Likeness Score fields, for images uint8 [N, C, H, W] with int labels [N]:

    ``per_class_likeness`` {class: LS} on up to ``images`` seeded images of each class and set
    (null where either set has fewer than MIN_IMAGES), ``likeness_score`` on the union of
    those subsets (class-balanced; null unless every class was measured), ``likeness_setting``
    (``images_per_class``, ``seed``) and ``likeness_reason`` (null, or why values are null).
    """
    table, short, chosen = {}, [], {"real": [], "generated": []}
    for k, name in enumerate(classes):
        picks = {kind: subset(y, k, images, np.random.default_rng([seed, k, stream]))
                 for stream, (kind, y) in enumerate((("generated", gen_labels), ("real", real_labels)))}
        if min(len(p) for p in picks.values()) < MIN_IMAGES:
            short.append(f"{name} has {len(picks['real'])} real and {len(picks['generated'])} generated")
            table[name] = None
            continue
        for kind, p in picks.items():
            chosen[kind].append(p)
        table[name] = float(likeness(real[picks["real"]], generated[picks["generated"]]))
    overall = None if short else likeness(real[np.concatenate(chosen["real"])],
                                          generated[np.concatenate(chosen["generated"])])
    return {"likeness_score": overall, "per_class_likeness": table,
            "likeness_setting": {"images_per_class": images, "seed": seed, "space": "pixels in [0, 1], flattened",
                                 "ks": "scipy.stats.ks_2samp statistic"},
            "likeness_reason": (f"the Likeness Score needs at least {MIN_IMAGES} images of each class in each "
                                "set: " + "; ".join(short)) if short else None}
