"""From per-configuration accuracies to the answer: mean ± std per cell, and the paired
difference against real-only training of the same seed, with a 95% t-interval.

Pairing by seed removes the variance that initialisation and data order add to both arms
alike, so an effect shows with fewer seeds than two independent samples would need.

Two sources of variance reach an effect: the classifier's seed and the generator's. With
one generator seed, the interval is a t-interval over classifier seeds of the paired
differences, and it speaks for that one generator only. With G >= 2 generator seeds, each
generator's effect is the mean of its paired differences over the classifier seeds, and
the interval is a t-interval over the G generators' effects (df = G - 1): the two-stage
estimate of a nested design, whose between-generator spread already holds the classifier
seeds' share (their variance divided by their count). It is wider, and it is what a new
generator training would face.
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


def effect(deltas: dict[int | None, dict[int, float]], confidence: float = CONFIDENCE) -> dict:
    """The effect and its interval from paired differences {generator seed: {classifier seed: Δ}}
    (generator seed None: one generator, unnamed). See the module's docstring for the method.

    Returns delta_mean, delta_low, delta_high (None when the interval needs more seeds),
    n_generators, generator_effects {seed: mean Δ}, generator_spread (sample std of those;
    None below 2) and interval_over ("generator seeds" or "classifier seeds")."""
    per_generator = {g: mean_std(list(d.values()))[0] for g, d in deltas.items() if d}
    if len(per_generator) >= 2:
        mean, low, high = t_interval(list(per_generator.values()), confidence)
        spread, over = mean_std(list(per_generator.values()))[1], "generator seeds"
    else:
        (only,) = deltas.values()
        mean, low, high = t_interval(list(only.values()), confidence)
        spread, over = None, "classifier seeds"
    return {"delta_mean": mean, "delta_low": low, "delta_high": high, "n_generators": len(per_generator),
            "generator_effects": {str(g): v for g, v in per_generator.items()}, "generator_spread": spread,
            "interval_over": over}


def table(results: list[dict]) -> list[dict]:
    """One row per (classifier, fraction, ratio) over seeds, sorted.

    results: dicts with classifier, fraction, ratio, seed, variant, accuracy, mlflow_run_id
    and, for augmented runs, generator_seed (synthetic-only runs are left out here: they are
    the generator's CAS). Each row: n_seeds (classifier seeds), accuracy_mean, accuracy_std,
    macro_f1_mean, balanced_accuracy_mean (over every run of the cell) and, for ratio > 0,
    n_pairs and the ``effect`` of the differences paired against ratio 0 of the same
    classifier seed, significant (the interval excludes 0) and the MLflow run ids behind the
    numbers.
    """
    cells = defaultdict(dict)
    for r in results:
        if r["variant"] == "synthetic":
            continue
        generator_seed = r.get("generator_seed")
        cells[(r["classifier"], float(r["fraction"]), float(r["ratio"]))][
            (None if generator_seed is None else int(generator_seed), int(r["seed"]))] = r
    rows = []
    for (clf, frac, ratio), by_seed in sorted(cells.items()):
        acc = [by_seed[s]["accuracy"] for s in sorted(by_seed, key=_order)]
        mean, std = mean_std(acc)
        row = {"classifier": clf, "fraction": frac, "ratio": ratio, "n_seeds": len({s for _, s in by_seed}),
               "accuracy_mean": mean, "accuracy_std": std,
               # Next to accuracy, what imbalanced classes need (the mean over seeds; None
               # for results recorded before they were measured).
               **{f"{m}_mean": mean_std([by_seed[s][m] for s in sorted(by_seed, key=_order)])[0]
                  if all(by_seed[s].get(m) is not None for s in by_seed) else None
                  for m in ("macro_f1", "balanced_accuracy")},
               "mlflow_run_ids": [by_seed[s].get("mlflow_run_id") for s in sorted(by_seed, key=_order)]}
        base = {s: r for (_, s), r in cells.get((clf, frac, 0.0), {}).items()}
        deltas = defaultdict(dict)
        for (g, s), r in by_seed.items():
            if s in base:
                deltas[g][s] = r["accuracy"] - base[s]["accuracy"]
        if ratio > 0 and deltas:
            found = effect(dict(deltas))
            row.update({"n_pairs": sum(len(d) for d in deltas.values()), **found,
                        "significant": None if found["delta_low"] is None else
                        bool(found["delta_low"] > 0 or found["delta_high"] < 0)})
        rows.append(row)
    return rows


def _order(key: tuple) -> tuple:
    """Sort (generator seed or None, classifier seed) keys: None first."""
    g, s = key
    return (g is not None, g or 0, s)
