"""Images -> feature vectors (and class probabilities) through a FeatureNet, per FID mode.

Modes (clean-fid's names):
- ``clean``: each channel resized to 299x299 in float with PIL's bicubic filter and no
  quantisation, clean-fid's own resizer (Parmar et al., 2022);
- ``legacy_tensorflow``: bilinear resizing as in the original TF implementation, which
  papers before 2021 report; an nvlabs-layout network resizes inside, as clean-fid does
  it, and for a pool3-layout network the same interpolation runs before it.
Grey images are repeated to three channels, as every FID implementation does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from cleanfid.resize import build_resizer

from genaug.metrics.feature_net import INPUT_SIZE, FeatureNet
from genaug.train.progress import bar

MODES = ("clean", "legacy_tensorflow")


def _as_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


def _resized(batch: np.ndarray, mode: str, net: FeatureNet) -> torch.Tensor:
    """float32 [B, 3, 299, 299] in [0, 255] (or unresized, for nvlabs' in-network resize)."""
    if mode == "clean":
        resize = build_resizer("clean")
        hwc = batch.transpose(0, 2, 3, 1)
        return torch.from_numpy(np.stack([resize(img) for img in hwc]).transpose(0, 3, 1, 2).copy())
    x = torch.from_numpy(batch).float()
    if net.layout == "nvlabs":
        return x
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)


def extract(images: np.ndarray, net: FeatureNet, mode: str, probabilities: bool = False,
            batch: int = 50, desc: str = "features") -> tuple[np.ndarray, np.ndarray | None]:
    """(features float64 [N, D], class probabilities float64 [N, K] or None).

    images: uint8 [N, C, H, W] with C = 1 or 3. probabilities: also return the network's
    class probabilities (only for a network with logits; see FeatureNet.has_logits).
    """
    if mode not in MODES:
        raise ValueError(f"unknown FID mode {mode!r}; choose one of {', '.join(MODES)}")
    images = _as_rgb(np.asarray(images))
    feats, probs = [], []
    with bar(len(images), desc, "img") as progress:
        for start in range(0, len(images), batch):
            x = _resized(images[start:start + batch], mode, net)
            feats.append(net.features(x).double().numpy())
            if probabilities:
                probs.append(net.probabilities(x).double().numpy())
            progress.update(len(x))
    dims = (0, 0)
    return (np.concatenate(feats) if feats else np.zeros(dims),
            (np.concatenate(probs) if probs else np.zeros(dims)) if probabilities else None)
