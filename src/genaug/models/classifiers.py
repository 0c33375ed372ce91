"""Image classifiers: images float [B, C, H, W] in [0, 1] -> logits float [B, num_classes].

Every constructor takes (shape, num_classes, width): ``width`` sets the capacity (the
profile's clf_width), so one profile line sizes all of them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


# The side the CNN's body is built for: 28 and 32 px images enter it directly, and each
# doubling above adds a stride-2 stem block in front that halves the side.
CNN_BODY_SIDE = 32


class CNN(nn.Module):
    """Conv blocks of w, 2w and 4w channels with a 2x max pool between them, global average
    pool, linear. Above CNN_BODY_SIDE, one stride-2 conv block of w channels per doubling
    comes first (one at 64 px, two at 128).

    Why a strided stem and not more blocks at the end: the body's cost grows with the area it
    sees, so a 64 px image through the 32 px body costs 4x its MACs; the stem costs one cheap
    conv at the input side and keeps the body at 32 px (64 px: 20M MACs, 2x the 32 px net,
    where one more pooled block would cost 51M)."""

    def __init__(self, shape, num_classes: int, width: int = 32, dropout: float = 0.2):
        super().__init__()
        c, side = shape[0], max(shape[1], shape[2])
        stem: list[nn.Module] = []
        while side > CNN_BODY_SIDE:
            stem.append(_conv_block(c, width, stride=2))
            c, side = width, (side + 1) // 2
        self.features = nn.Sequential(*stem, _conv_block(c, width), nn.MaxPool2d(2),
                                      _conv_block(width, 2 * width), nn.MaxPool2d(2),
                                      _conv_block(2 * width, 4 * width),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centre [0, 1] pixels on zero; the BatchNorm after the first conv does the rest.
        return self.head(self.features(x * 2.0 - 1.0))


class MLP(nn.Module):
    """Flattened pixels -> ``depth`` hidden layers of 16w units (BatchNorm, ReLU, dropout)
    -> linear. depth 1 is the shallow baseline; depth 4 the deep one."""

    def __init__(self, shape, num_classes: int, width: int = 32, depth: int = 1, dropout: float = 0.2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"an MLP classifier needs depth >= 1 hidden layers, got {depth}")
        n_in, hidden = shape[0] * shape[1] * shape[2], 16 * width
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(n_in if i == 0 else hidden, hidden, bias=False), nn.BatchNorm1d(hidden),
                       nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2.0 - 1.0)


class ShallowMLP(MLP):
    def __init__(self, shape, num_classes: int, width: int = 32):
        super().__init__(shape, num_classes, width, depth=1)


class DeepMLP(MLP):
    def __init__(self, shape, num_classes: int, width: int = 32):
        super().__init__(shape, num_classes, width, depth=4)


# ImageNet statistics that torchvision's pretrained weights expect, per RGB channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Small images are upsampled to this side before the ImageNet stem (7x7 conv stride 2 and
# a max pool): at 28 or 32 pixels the stem would leave 7x7 or 8x8 maps for four stages.
TRANSFER_SIDE = 64


class ImageNetBackbone(nn.Module):
    """A torchvision ImageNet network with a new linear head, for fine-tuning.

    Grey images are repeated to three channels, normalised with ImageNet statistics and,
    when smaller, resized to TRANSFER_SIDE. The network starts random; genaug.models.pretrained
    loads ImageNet weights into ``backbone`` when a copy is available. Subclasses name the
    torchvision builder (``ARCH``) and replace its head in ``new_head``. ``width`` is unused
    (the architecture is torchvision's) and kept so all classifiers share one signature.
    """

    ARCH = ""

    def __init__(self, shape, num_classes: int, width: int = 32):
        super().__init__()
        import torchvision.models

        self.backbone = getattr(torchvision.models, self.ARCH)(weights=None)
        self.new_head(num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def new_head(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        side = max(TRANSFER_SIDE, x.shape[-1])  # small images up to the stem's size; larger ones as they are
        x = F.interpolate((x - self.mean) / self.std, size=(side, side), mode="bilinear", align_corners=False)
        return self.backbone(x)


class Transfer(ImageNetBackbone):
    """torchvision ResNet-18; its ``fc`` is the new head."""

    ARCH = "resnet18"

    def new_head(self, num_classes: int) -> None:
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, num_classes)


class EfficientNetB0(ImageNetBackbone):
    """torchvision EfficientNet-B0 (5.3M parameters, 0.39 GFLOPs at 224 px); the linear layer
    of its ``classifier`` (dropout, linear) is the new head."""

    ARCH = "efficientnet_b0"

    def new_head(self, num_classes: int) -> None:
        self.backbone.classifier[1] = nn.Linear(self.backbone.classifier[1].in_features, num_classes)
