"""Network definitions only. ``build_*(arch, **config)`` makes any of them by name."""

from __future__ import annotations

import torch.nn as nn

from genaug.models.classifiers import CNN, DeepMLP, EfficientNetB0, ShallowMLP, Transfer
from genaug.models.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                               MLPGenerator, WGANCritic)
from genaug.models.unet import UNet

# GAN name -> (generator class, discriminator class).
GAN_ARCHS = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "vanilla_gan": (MLPGenerator, MLPDiscriminator),
    "wgan_gp": (DCGANGenerator, WGANCritic),
}
# Diffusion name -> denoising network. Both names share one network; they differ in sampling.
DIFFUSION_ARCHS = {"ddpm": UNet, "ddim": UNet}
CLASSIFIER_ARCHS = {"shallow_mlp": ShallowMLP, "deep_mlp": DeepMLP, "cnn": CNN, "transfer": Transfer,
                    "efficientnet_b0": EfficientNetB0}


def build_gan(arch: str, **config) -> tuple[nn.Module, nn.Module]:
    g_cls, d_cls = GAN_ARCHS[arch]
    return g_cls(**config), d_cls(**config)


def build_generator(arch: str, **config) -> nn.Module:
    """The network a generator checkpoint holds: a GAN's G, or a diffusion model's UNet."""
    if arch in GAN_ARCHS:
        return GAN_ARCHS[arch][0](**config)
    return DIFFUSION_ARCHS[arch](**config)


def build_classifier(arch: str, **config) -> nn.Module:
    return CLASSIFIER_ARCHS[arch](**config)
