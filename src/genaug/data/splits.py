"""Deterministic stratified splits, profile subsets and content hashes."""

from __future__ import annotations

import hashlib

import numpy as np

# The train/val split never depends on the run seed, so runs with different seeds
# (and different generators) are scored on the same validation images.
SPLIT_SEED = 20240601


def stratified_take(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of ``n`` items with the class proportions of ``labels`` (all if n is None).

    labels: int64 [N]. Returns sorted int64 indices, identical for identical inputs.
    """
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(counts / counts.sum() * n).astype(int)
    # Hand the remainder to the largest classes so the total is exactly n.
    for i in np.argsort(-counts)[: n - quotas.sum()]:
        quotas[i] += 1
    for cls, quota in zip(classes, quotas):
        idx = np.flatnonzero(labels == cls)
        picked.append(rng.choice(idx, size=quota, replace=False))
    return np.sort(np.concatenate(picked))


def train_val_split(labels: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, val_idx) over ``labels``, fixed by SPLIT_SEED."""
    val = stratified_take(labels, int(round(len(labels) * val_fraction)), SPLIT_SEED)
    mask = np.ones(len(labels), dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), val


def content_hash(*arrays: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of each array; equal data gives equal hashes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()
