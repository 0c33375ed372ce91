"""Network definitions only. ``build(arch, **config)`` makes any of them by name."""

from __future__ import annotations

import torch.nn as nn

from genaug.models.classifiers import CNN
from genaug.models.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                               MLPGenerator, WGANCritic)

# arch name -> (network class); generators map to (G, D).
GENERATOR_ARCHS = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "vanilla_gan": (MLPGenerator, MLPDiscriminator),
    "wgan_gp": (DCGANGenerator, WGANCritic),
}
CLASSIFIER_ARCHS = {"cnn": CNN}


def build_gan(arch: str, **config) -> tuple[nn.Module, nn.Module]:
    g_cls, d_cls = GENERATOR_ARCHS[arch]
    return g_cls(**config), d_cls(**config)


def build_generator(arch: str, **config) -> nn.Module:
    return GENERATOR_ARCHS[arch][0](**config)


def build_classifier(arch: str, **config) -> nn.Module:
    return CLASSIFIER_ARCHS[arch](**config)
