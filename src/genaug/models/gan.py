"""Class-conditional GAN networks.

Every generator maps (labels int64 [B], z float [B, z_dim]) -> images float [B, C, H, W]
in [-1, 1]; every discriminator maps (images, labels) -> logits float [B].
Constructors share one signature: (shape=(C, H, W), num_classes, z_dim, width).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from genaug.catalog import MLP_GAN_MAX_SIDE, mlp_too_large


def mlp_fits(shape) -> None:
    """Raise ValueError when images of ``shape`` (C, H, W) are too large for vanilla_gan."""
    if max(shape[1], shape[2]) > MLP_GAN_MAX_SIDE:
        raise ValueError(mlp_too_large(shape[1], shape[2]))


def _init_dcgan(module: nn.Module) -> None:
    # N(0, 0.02) weights, as in the DCGAN paper (Radford et al., 2016).
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    for m in module.modules():  # after the loop above, which drew N(0, 0.02) for their embeddings
        if isinstance(m, ClassBatchNorm2d):
            nn.init.normal_(m.scale.weight, 1.0, 0.02)
            nn.init.zeros_(m.shift.weight)


# The side of a DCGAN's smallest map: 28 px images start from 7x7, 32 px from 8x8, and every
# doubling above that adds one up/down-sampling stage rather than a larger first map, as
# DCGAN64 does (Radford et al., 2016: 4x4 up to 64x64 in four stages).
SMALLEST_SIDE = 8
# Channels are width * 2^k at k stages from the image, capped at width * MAX_MULT (DCGAN64's 8).
MAX_MULT = 8


def dcgan_stages(h: int, w: int) -> int:
    """Up/down-sampling stages between an image of h x w pixels and the smallest map: 2 at
    28 or 32 px, 3 at 64, 4 at 128 (one per doubling). Raises ValueError for a size that
    cannot halve twice."""
    if h % 4 or w % 4:
        raise ValueError(f"DCGAN needs H and W divisible by 4, got {h}x{w}")
    stages = 2
    while max(h, w) >> stages > SMALLEST_SIDE and h % (2 << stages) == 0 and w % (2 << stages) == 0:
        stages += 1
    return stages


def _mult(k: int) -> int:
    """Channel multiple of a map k stages from the image."""
    return min(2 ** k, MAX_MULT)


class ClassBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (conditional batch norm,
    de Vries et al., 2017, as in the generator of Miyato & Koyama, 2018):
    (x float [B, C, H, W], labels int64 [B]) -> float [B, C, H, W]."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale, self.shift = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


class DCGANGenerator(nn.Module):
    """Label embedding concatenated to z, projected to the smallest map (H / 2^S, W / 2^S)
    and upsampled S times by transposed convolutions (S = dcgan_stages(H, W)).

    Every batch norm takes its scale and shift from the label (ClassBatchNorm2d), so the
    class steers each stage, not only the input, as in the generator that Miyato & Koyama
    pair with the projection discriminator. On its own it did not raise label fidelity at
    64 px; with the auxiliary-classifier objective it did (bench/gan_conditioning.py).
    """

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        c, h, w = shape
        stages = dcgan_stages(h, w)
        self.z_dim, self.s0 = z_dim, (h >> stages, w >> stages)
        top = _mult(stages) * width
        self.embed = nn.Embedding(num_classes, z_dim)
        self.project = nn.Sequential(nn.Linear(2 * z_dim, top * self.s0[0] * self.s0[1], bias=False),
                                     nn.Unflatten(1, (top, *self.s0)))
        self.up = nn.ModuleList(nn.ConvTranspose2d(_mult(k) * width, _mult(k - 1) * width, 4, 2, 1, bias=False)
                                for k in range(stages, 0, -1))
        # norms[0] follows the projection; norms[i] follows up[i - 1].
        self.norms = nn.ModuleList(ClassBatchNorm2d(_mult(k) * width, num_classes) for k in range(stages, -1, -1))
        self.to_image = nn.Sequential(nn.Conv2d(width, c, 3, 1, 1), nn.Tanh())
        _init_dcgan(self)

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norms[0](self.project(torch.cat([z, self.embed(labels)], dim=1)), labels))
        for up, norm in zip(self.up, self.norms[1:]):
            x = torch.relu(norm(up(x), labels))
        return self.to_image(x)


class DCGANDiscriminator(nn.Module):
    """Strided convs down to the smallest map (one per stage, as the generator's), then a
    3x3 conv, as a feature vector phi(x); logit = w.phi(x) + embed(y).phi(x).

    The label enters by projection (Miyato & Koyama, 2018) rather than concatenation.
    ``scores`` adds class logits from a linear classifier on the same phi(x), for the
    auxiliary-classifier objective (genaug.train.gan_losses.AuxiliaryClassifier).
    """

    batch_norm = True
    auxiliary_classifier = True

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        c, h, w = shape

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if self.batch_norm else nn.Identity()

        stages = dcgan_stages(h, w)
        layers: list[nn.Module] = [nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for k in range(1, stages):  # strided 4x4 convs down to the smallest map
            layers += [nn.Conv2d(_mult(k - 1) * width, _mult(k) * width, 4, 2, 1, bias=not self.batch_norm),
                       norm(_mult(k) * width), nn.LeakyReLU(0.2, inplace=True)]
        top = _mult(stages) * width
        layers += [nn.Conv2d(_mult(stages - 1) * width, top, 3, 1, 1, bias=not self.batch_norm),
                   norm(top), nn.LeakyReLU(0.2, inplace=True), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        n_feat = top * (h >> stages) * (w >> stages)
        self.linear = nn.Linear(n_feat, 1)
        self.embed = nn.Embedding(num_classes, n_feat)
        self.classify = nn.Linear(n_feat, num_classes) if self.auxiliary_classifier else None
        _init_dcgan(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._logit(self.features(x), labels)

    def scores(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake logits float [B], class logits float [B, num_classes]) of one pass."""
        phi = self.features(x)
        return self._logit(phi, labels), self.classify(phi)

    def _logit(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.linear(phi).squeeze(1) + (self.embed(labels) * phi).sum(1)


class WGANCritic(DCGANDiscriminator):
    """The DCGAN discriminator without batch norm: the gradient penalty is defined per
    sample, and batch statistics would couple the samples (Gulrajani et al., 2017, sec. 4)."""

    batch_norm = False
    auxiliary_classifier = False


class MLPGenerator(nn.Module):
    """The conditional GAN of Mirza & Osindero (2014): [z, embed(y)] -> MLP -> image."""

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        mlp_fits(shape)
        self.shape, self.z_dim = tuple(shape), z_dim
        hidden = 8 * width
        self.embed = nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(
            nn.Linear(2 * z_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(2 * hidden, math.prod(self.shape)), nn.Tanh(),
        )

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([z, self.embed(labels)], dim=1))
        return out.view(-1, *self.shape)


class MLPDiscriminator(nn.Module):
    """[flattened image, embed(y)] -> MLP -> logit."""

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        hidden = 8 * width
        n_pix = math.prod(shape)
        self.embed = nn.Embedding(num_classes, 64)
        self.net = nn.Sequential(
            nn.Linear(n_pix + 64, 2 * hidden), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(2 * hidden, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), self.embed(labels)], dim=1)).squeeze(1)
