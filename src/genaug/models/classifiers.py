"""Image classifiers: images float [B, C, H, W] in [0, 1] -> logits float [B, num_classes]."""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CNN(nn.Module):
    """Three conv blocks (w, 2w, 4w channels), two 2x poolings, global average pool, linear."""

    def __init__(self, shape, num_classes: int, width: int = 32, dropout: float = 0.2):
        super().__init__()
        c = shape[0]
        self.features = nn.Sequential(
            _conv_block(c, width), nn.MaxPool2d(2),
            _conv_block(width, 2 * width), nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centre [0, 1] pixels on zero; the BatchNorm after the first conv does the rest.
        return self.head(self.features(x * 2.0 - 1.0))
