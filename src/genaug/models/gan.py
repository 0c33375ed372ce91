"""Class-conditional GAN networks.

Every generator maps (labels int64 [B], z float [B, z_dim]) -> images float [B, C, H, W]
in [-1, 1]; every discriminator maps (images, labels) -> logits float [B].
Constructors share one signature: (shape=(C, H, W), num_classes, z_dim, width).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def _init_dcgan(module: nn.Module) -> None:
    # N(0, 0.02) weights, as in the DCGAN paper (Radford et al., 2016).
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """Label embedding concatenated to z, projected to a (4w, H/4, W/4) map, upsampled twice."""

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"DCGAN needs H and W divisible by 4, got {h}x{w}")
        self.z_dim, self.s0 = z_dim, (h // 4, w // 4)
        self.embed = nn.Embedding(num_classes, z_dim)
        self.project = nn.Sequential(
            nn.Linear(2 * z_dim, 4 * width * self.s0[0] * self.s0[1], bias=False),
            nn.Unflatten(1, (4 * width, *self.s0)),
            nn.BatchNorm2d(4 * width), nn.ReLU(inplace=True),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, c, 3, 1, 1),
            nn.Tanh(),
        )
        _init_dcgan(self)

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(torch.cat([z, self.embed(labels)], dim=1)))


class DCGANDiscriminator(nn.Module):
    """Strided convs to a feature vector phi(x); logit = w.phi(x) + embed(y).phi(x).

    The label enters by projection (Miyato & Koyama, 2018) rather than concatenation.
    """

    batch_norm = True

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        c, h, w = shape

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if self.batch_norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not self.batch_norm),
            norm(2 * width), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, 1, 1, bias=not self.batch_norm),
            norm(4 * width), nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )
        n_feat = 4 * width * (h // 4) * (w // 4)
        self.linear = nn.Linear(n_feat, 1)
        self.embed = nn.Embedding(num_classes, n_feat)
        _init_dcgan(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        phi = self.features(x)
        return self.linear(phi).squeeze(1) + (self.embed(labels) * phi).sum(1)


class WGANCritic(DCGANDiscriminator):
    """The DCGAN discriminator without batch norm: the gradient penalty is defined per
    sample, and batch statistics would couple the samples (Gulrajani et al., 2017, sec. 4)."""

    batch_norm = False


class MLPGenerator(nn.Module):
    """The conditional GAN of Mirza & Osindero (2014): [z, embed(y)] -> MLP -> image."""

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
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
