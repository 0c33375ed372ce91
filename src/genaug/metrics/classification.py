"""Accuracy, macro-F1, balanced accuracy, per-class precision/recall/F1 and the confusion
matrix, from labels alone."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [K, K]; row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str] | tuple[str, ...]) -> dict:
    """accuracy, macro_f1, balanced_accuracy, per_class {name: precision, recall, f1, support}
    and the matrix."""
    k = len(class_names)
    cm = confusion(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(0).astype(float)
    support = cm.sum(1).astype(float)
    # A class never predicted (or absent) has precision (recall) 0, not NaN.
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "macro_f1": float(f1.mean()),
        # The mean recall over the classes the test split holds: what accuracy would be if
        # every class were as common as every other.
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": cm.tolist(),
    }
