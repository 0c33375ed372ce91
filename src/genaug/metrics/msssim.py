"""Diversity within a class as Odena et al. (2017, AC-GAN, section 4.2) measured it: the mean
MS-SSIM (Wang et al. 2003) over random pairs of images of one class, for the generated and
for the real images. Lower is more diverse; a generated class well above the real one has
collapsed. MS-SSIM itself is torchmetrics' (its functional form), not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Wang et al.'s weights of their five scales, finest first.
WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
BATCH = 512  # pairs per torchmetrics call: float32 [512, C, S, S] twice, ~13 MB at 3x32x32


@dataclass(frozen=True)
class Setting:
    """One image side's MS-SSIM: ``scales`` (each halves the side), a Gaussian window of
    ``window`` pixels with standard deviation ``sigma`` pixels, and the betas: the first
    ``scales`` of Wang et al.'s, scaled to sum to 1 so that values keep the usual range."""

    scales: int
    window: int
    sigma: float

    @property
    def betas(self) -> tuple[float, ...]:
        kept = WANG_BETAS[:self.scales]
        return tuple(b / sum(kept) for b in kept)

    def describe(self, side: int) -> dict:
        import torchmetrics

        return {"side": side, "scales": self.scales, "window": self.window, "sigma": self.sigma,
                "betas": [round(b, 4) for b in self.betas], "data_range": 255,
                "negative_terms": "clipped to 0 (relu, as tf.image.ssim_multiscale)",
                "implementation": f"torchmetrics {torchmetrics.__version__} "
                                  "multiscale_structural_similarity_index_measure"}


# Fixed per side, so that runs at one side compare; a new side is a new row, never a change
# of a row. Wang's five scales with an 11-pixel window need 11 * 2**4 = 176 pixels. The rule:
# the coarsest scale (side / 2**(scales - 1)) must leave at least a 3x3 SSIM map after the
# window (a 1x1 map is one local mean, not a structure comparison) and pass torchmetrics' own
# check (side // (scales - 1)**2 > window - 1). From 64 px Wang's window (11 px, sigma 1.5)
# is kept with as many scales as fit; at 28 and 32 px it would leave 2 scales, so the window
# shrinks to 5 px (sigma 0.7: Wang's sigma-to-window ratio) for 3 scales: 28/32 -> 7/8 px at
# the coarsest. 28 and 32 share one setting, so Fashion-MNIST and CIFAR-10 use one measure.
SETTINGS: dict[int, Setting] = {
    28: Setting(scales=3, window=5, sigma=0.7),
    32: Setting(scales=3, window=5, sigma=0.7),
    64: Setting(scales=3, window=11, sigma=1.5),
    128: Setting(scales=4, window=11, sigma=1.5),
    256: Setting(scales=5, window=11, sigma=1.5),
}


class NoSetting(ValueError):
    """The image side has no recorded MS-SSIM setting."""


def setting_for(height: int, width: int) -> Setting:
    """The recorded setting for square images of this side; NoSetting names the sides there are."""
    if height != width or height not in SETTINGS:
        raise NoSetting(f"no MS-SSIM setting is recorded for {height}x{width} images; genaug.metrics.msssim."
                        f"SETTINGS has square sides {', '.join(map(str, SETTINGS))}: add a row for a new side "
                        "(never change one)")
    return SETTINGS[height]


def random_pairs(n: int, pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """int64 [pairs] twice: ordered pairs (a, b) of distinct indices below n, uniform, drawn with
    replacement (a class of 30 images has only 435 pairs)."""
    a = rng.integers(0, n, pairs)
    b = rng.integers(0, n - 1, pairs)
    return a, b + (b >= a)  # skip a itself: uniform over the other n - 1


def pair_scores(images: np.ndarray, a: np.ndarray, b: np.ndarray, setting: Setting) -> np.ndarray:
    """float [P]: MS-SSIM of images[a[i]] against images[b[i]], in [0, 1] (1: identical).

    images: uint8 [N, C, S, S], kept as uint8; only each batch of pairs becomes float.
    """
    # Imported here: torchmetrics takes ~2.5 s to import, paid only by the step that measures.
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    x = torch.from_numpy(images)
    out = []
    for i in range(0, len(a), BATCH):
        pa, pb = (x[torch.from_numpy(idx[i:i + BATCH])].float() for idx in (a, b))
        out.append(ms_ssim(pa, pb, kernel_size=setting.window, sigma=setting.sigma, betas=setting.betas,
                           data_range=255.0, reduction="none", normalize="relu"))
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def class_mean(images: np.ndarray, members: np.ndarray, pairs: int, rng: np.random.Generator,
               setting: Setting) -> float:
    """Mean MS-SSIM over ``pairs`` random pairs of distinct ``images[members]`` (uint8 [N, C, S, S];
    members: int [M >= 2], one class's indices, so no class-sized copy is made)."""
    if len(members) < 2:
        raise ValueError(f"MS-SSIM diversity needs at least 2 images of a class, got {len(members)}")
    a, b = random_pairs(len(members), pairs, rng)
    return float(pair_scores(images, members[a], members[b], setting).mean())


def per_class(generated: np.ndarray, gen_labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
              classes: list[str], pairs: int, seed: int) -> dict:
    """evaluate_generator's MS-SSIM fields, for images uint8 [N, C, S, S] with int labels [N]:

    ``per_class_msssim`` {class: {"generated", "real"}} (null where a class has fewer than 2
    images), ``msssim_generated`` and ``msssim_real`` (the means over classes, null unless
    every class has both), ``msssim_setting`` (the side's setting, ``pairs_per_class``,
    ``seed``) and ``msssim_reason`` (null, or why values are null). The pairs of class k in
    set s come from their own seeded stream, so one class or set does not move another's.
    """
    try:
        setting = setting_for(*real.shape[2:])
    except NoSetting as e:
        return {"msssim_generated": None, "msssim_real": None, "per_class_msssim": None, "msssim_setting": None,
                "msssim_reason": str(e)}
    table, short = {}, []
    for k, name in enumerate(classes):
        table[name] = {}
        for stream, (kind, x, y) in enumerate((("generated", generated, gen_labels), ("real", real, real_labels))):
            members = np.flatnonzero(y == k)
            if len(members) < 2:
                short.append(f"{name} has {len(members)} {kind} image(s)")
                table[name][kind] = None
            else:
                table[name][kind] = class_mean(x, members, pairs, np.random.default_rng([seed, k, stream]), setting)
    means = {kind: (None if short else float(np.mean([v[kind] for v in table.values()])))
             for kind in ("generated", "real")}
    return {"msssim_generated": means["generated"], "msssim_real": means["real"], "per_class_msssim": table,
            "msssim_setting": {**setting.describe(real.shape[2]), "pairs_per_class": pairs, "seed": seed},
            "msssim_reason": ("MS-SSIM needs at least 2 images of each class: " + "; ".join(short)) if short else None}
