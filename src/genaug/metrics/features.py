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
from PIL import Image

from genaug.metrics.feature_net import INPUT_SIZE, FeatureNet
from genaug.train.progress import bar

MODES = ("clean", "legacy_tensorflow")


def _as_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


def _clean_channel(channel: np.ndarray) -> np.ndarray:
    """float32 [299, 299] in [0, 255]: one channel [H, W] resized as clean-fid's "clean"
    resizer does it (PIL, float mode 'F', bicubic, clipped, no quantisation)."""
    img = Image.fromarray(channel.astype(np.float32), mode="F")
    resized = np.asarray(img.resize((INPUT_SIZE, INPUT_SIZE), resample=Image.BICUBIC), dtype=np.float32)
    return resized.clip(0, 255)


def _clean_resized(batch: np.ndarray) -> torch.Tensor:
    """float32 [B, 3, 299, 299] for uint8 [B, C, H, W], C = 1 or 3. clean-fid resizes each
    channel on its own, so a grey image's one channel is resized once and repeated: the
    same values as resizing its three copies, at a third of the cost."""
    out = np.stack([[_clean_channel(ch) for ch in img] for img in batch])
    x = torch.from_numpy(out)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _resized(batch: np.ndarray, mode: str, net: FeatureNet) -> torch.Tensor:
    """float32 [B, 3, 299, 299] in [0, 255] (or unresized, for nvlabs' in-network resize)."""
    if mode == "clean":
        return _clean_resized(batch)
    x = torch.from_numpy(_as_rgb(batch)).float()
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
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be uint8 [N, C, H, W] with C = 1 or 3, got shape {images.shape}")
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
