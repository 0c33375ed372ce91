"""Pictures a person would rather look at than read: sample grids, matrices, curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: pipeline tasks have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genaug.atomic import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names, path: str | Path,
                per_class: int = 10, title: str = "") -> None:
    """One row per class with up to ``per_class`` images: images uint8 [N, C, H, W]."""
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.7 + 1.6, k * 0.7 + 0.4),
                             squeeze=False)
    for row, name in enumerate(class_names):
        idx = np.flatnonzero(labels == row)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(idx):
                img = images[idx[col]].transpose(1, 2, 0)
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names, path: str | Path, title: str = "") -> None:
    """Heat map of row percentages, each cell labelled with its count and row percentage."""
    cm = np.asarray(cm)
    rows = cm.sum(1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) * 100
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.65 * k))
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}\n{pct[i, j]:.0f}%", ha="center", va="center", fontsize=6.5,
                    color="white" if pct[i, j] > 60 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def curves(series: dict[str, tuple[list, list]], path: str | Path, xlabel: str, title: str = "") -> None:
    """Line plot of named (x, y) series, e.g. losses per step or accuracy per epoch."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, label=name, marker="o" if len(xs) < 30 else None, markersize=3)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def class_bars(series: dict[str, list], class_names, path: str | Path, ylabel: str, title: str = "") -> None:
    """Side-by-side bars per class, one colour per named series (None: no bar), e.g. the
    mean MS-SSIM of generated and of real pairs, where a taller generated bar is a collapse."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(class_names), 3.2))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(class_names)) + (i - (len(series) - 1) / 2) * width
        ax.bar(xs, [np.nan if v is None else v for v in values], width, label=name)
    ax.set_xticks(np.arange(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.25)  # headroom: the legend sits above the tallest bars, not on them
    ax.legend(fontsize=8, ncol=len(series), loc="upper right")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)
