"""From per-configuration accuracies to the answer: mean ± std per cell, and the paired
difference against real-only training of the same seed, with a 95% t-interval over seeds.

Pairing by seed removes the variance that initialisation and data order add to both arms
alike, so an effect shows with fewer seeds than two independent samples would need.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95


def mean_std(values) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(mean, low, high): Student-t interval of the mean; (mean, None, None) below 2 values."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2:
        return mean, None, None
    half = float(sps.t.ppf((1 + confidence) / 2, df=len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def table(results: list[dict]) -> list[dict]:
    """One row per (classifier, fraction, ratio) over seeds, sorted.

    results: dicts with classifier, fraction, ratio, seed, variant, accuracy and
    mlflow_run_id (synthetic-only runs are left out here: they are the generator's CAS).
    Each row: n_seeds, accuracy_mean, accuracy_std, macro_f1_mean, balanced_accuracy_mean
    and, for ratio > 0, delta_mean,
    delta_low, delta_high (paired against ratio 0 over the seeds that both have),
    significant (the interval excludes 0) and the MLflow run ids behind the numbers.
    """
    cells = defaultdict(dict)
    for r in results:
        if r["variant"] == "synthetic":
            continue
        cells[(r["classifier"], float(r["fraction"]), float(r["ratio"]))][int(r["seed"])] = r
    rows = []
    for (clf, frac, ratio), by_seed in sorted(cells.items()):
        acc = [by_seed[s]["accuracy"] for s in sorted(by_seed)]
        mean, std = mean_std(acc)
        row = {"classifier": clf, "fraction": frac, "ratio": ratio, "n_seeds": len(acc),
               "accuracy_mean": mean, "accuracy_std": std,
               # Next to accuracy, what imbalanced classes need (the mean over seeds; None
               # for results recorded before they were measured).
               **{f"{m}_mean": mean_std([by_seed[s][m] for s in sorted(by_seed)])[0]
                  if all(by_seed[s].get(m) is not None for s in by_seed) else None
                  for m in ("macro_f1", "balanced_accuracy")},
               "mlflow_run_ids": [by_seed[s].get("mlflow_run_id") for s in sorted(by_seed)]}
        base = cells.get((clf, frac, 0.0), {})
        if ratio > 0 and base:
            seeds = sorted(set(by_seed) & set(base))
            deltas = [by_seed[s]["accuracy"] - base[s]["accuracy"] for s in seeds]
            d, lo, hi = t_interval(deltas)
            row.update({"n_pairs": len(seeds), "delta_mean": d, "delta_low": lo, "delta_high": hi,
                        "significant": None if lo is None else bool(lo > 0 or hi < 0)})
        rows.append(row)
    return rows
