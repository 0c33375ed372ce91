"""Distances between a generated and a real image set, computed on feature vectors.

- FID (Heusel et al., 2017): the Fréchet distance between Gaussians fitted to the features.
- KID (Bińkowski et al., 2018): unbiased MMD² with the cubic polynomial kernel, averaged
  over random subsets; clean-fid's estimator, with its RNG seeded so runs repeat.
- Improved precision and recall (Kynkäänniemi et al., 2019): the share of generated
  samples inside the real manifold (k-NN balls around real features) and vice versa.
- Inception Score (Salimans et al., 2016): exp E[KL(p(y|x) || p(y))], over splits.

Features are float [N, D]; every function is pure numpy/torch, so each can be checked on
features that a test makes up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from cleanfid.fid import kernel_distance


@dataclass(frozen=True)
class Gaussian:
    """mean float64 [D] and covariance float64 [D, D] of ``n`` feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def of(cls, feats: np.ndarray) -> "Gaussian":
        feats = np.asarray(feats, dtype=np.float64)
        if len(feats) < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {len(feats)}")
        return cls(feats.mean(0), np.cov(feats, rowvar=False), len(feats))


def _trace_sqrt_product(factor: np.ndarray, sigma: np.ndarray) -> float:
    """tr sqrt(A^T A @ sigma) for factor A [r, D]: the eigenvalues of (A^T A) sigma are
    those of the symmetric PSD A sigma A^T, so one r x r eigvalsh replaces a D x D sqrtm."""
    inner = factor @ sigma @ factor.T
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def _factor(g: Gaussian) -> np.ndarray:
    w, v = np.linalg.eigh(g.sigma)
    return np.sqrt(np.clip(w, 0.0, None))[:, None] * v.T


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """||mu_a - mu_b||² + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b), in squared feature units."""
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * _trace_sqrt_product(_factor(a), b.sigma))


def frechet_from_features(feats: np.ndarray, ref: Gaussian) -> float:
    """The same distance with the generated side given as features float [N, D]. With N < D
    the centred features are a factor of the covariance, which makes per-class FID cheap."""
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) >= feats.shape[1]:
        return frechet_distance(Gaussian.of(feats), ref)
    mu = feats.mean(0)
    centred = (feats - mu) / np.sqrt(len(feats) - 1)
    diff = mu - ref.mu
    return float(diff @ diff + (centred ** 2).sum() + np.trace(ref.sigma)
                 - 2 * _trace_sqrt_product(centred, ref.sigma))


def kid(fake: np.ndarray, real: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """KID (unbiased MMD², cubic kernel) between features float [N, D] and [M, D]."""
    state = np.random.get_state()
    np.random.seed(seed)  # clean-fid draws subsets from numpy's global RNG
    try:
        return kernel_distance(np.asarray(fake, np.float64), np.asarray(real, np.float64),
                               num_subsets=subsets, max_subset_size=subset_size)
    finally:
        np.random.set_state(state)


def _kth_neighbour_radius(feats: torch.Tensor, k: int, block: int = 1024) -> torch.Tensor:
    """float64 [N]: distance from each vector to its k-th nearest other vector."""
    radii = []
    for start in range(0, len(feats), block):
        d = torch.cdist(feats[start:start + block], feats)
        # The k+1-th smallest, because the nearest vector to each one is itself (distance 0).
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = 1024) -> float:
    """Share of ``queries`` within radius of at least one centre."""
    inside = []
    for start in range(0, len(queries), block):
        d = torch.cdist(queries[start:start + block], centres)
        inside.append((d <= radii[None, :]).any(1))
    return float(torch.cat(inside).double().mean())


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """(precision, recall) in [0, 1] of generated features [N, D] against real ones [M, D]."""
    f = torch.from_numpy(np.asarray(fake, np.float64))
    r = torch.from_numpy(np.asarray(real, np.float64))
    if min(len(f), len(r)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} vectors on each side")
    precision = _coverage(f, r, _kth_neighbour_radius(r, k))
    recall = _coverage(r, f, _kth_neighbour_radius(f, k))
    return precision, recall


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` of exp E_x[KL(p(y|x) || p(y))], probs float [N, K]."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def per_class_fid(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                  num_classes: int) -> list[float | None]:
    """FID of each class's generated features against the same class's real ones (None for
    a class with fewer than 2 vectors on a side). Small per-class sets bias FID upwards,
    so compare these between generators at equal counts, not with whole-set FIDs."""
    out = []
    for c in range(num_classes):
        f, r = fake[fake_labels == c], real[real_labels == c]
        out.append(frechet_from_features(f, Gaussian.of(r)) if len(f) >= 2 and len(r) >= 2 else None)
    return out
