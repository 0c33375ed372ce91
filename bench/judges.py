"""How much label fidelity depends on its judge: one run's synthetic images, three CNNs.

    python -m bench.judges RUN_DIR/summary.json [--train 12000] [--epochs 3] [--synthetic 5000]

Label fidelity is the share of synthetic images that the real-data classifier assigns to the
label they were generated for, so the judge is part of the measurement. This trains three
CNN layouts for 64 px images alike (the same real training subset, seed, epochs and widths)
and reports, for each: training seconds, test accuracy on 3000 real test images, and label
fidelity on the run's synthetic set:

- ``pooled blocks``: the CNN before issue 21's stem (a conv block at every side down to 8 px,
  a 2x max pool after each), 51M MACs a forward at 64 px;
- ``strided stem`` (genaug.models.classifiers.CNN): one stride-2 conv block, then the 32 px
  body, 20M MACs;
- ``conv + avg-pool stem``: a stride-1 conv block and a 2x average pool (a blurred
  downsampling, Zhang 2019), then the 32 px body, 23M MACs.

The reference is the pooled-blocks judge in the same process; the ratio is its label
fidelity over the strided stem's. A record, not judged (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

from bench.harness import Report
from genaug import accel as accel_mod
from genaug.data import imageset
from genaug.models.classifiers import CNN, _conv_block
from genaug.sections import ClassifierConfig
from genaug.train.classifier import predict, train_classifier

TEST_IMAGES = 3000


class _Judge(nn.Module):
    """features -> global average pool -> dropout -> linear, on [0, 1] pixels centred on zero."""

    def __init__(self, features: list[nn.Module], channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(*features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * 2.0 - 1.0))


def pooled_blocks(shape, num_classes: int, width: int) -> nn.Module:
    """Conv blocks w, 2w, 4w, then 4w until the maps are 8 px or less, a max pool between."""
    layers, side = [_conv_block(shape[0], width), nn.MaxPool2d(2), _conv_block(width, 2 * width), nn.MaxPool2d(2),
                    _conv_block(2 * width, 4 * width)], (shape[1] + 3) // 4
    while side > 8:
        layers += [nn.MaxPool2d(2), _conv_block(4 * width, 4 * width)]
        side = (side + 1) // 2
    return _Judge(layers, 4 * width, num_classes)


def avg_pool_stem(shape, num_classes: int, width: int) -> nn.Module:
    """A stride-1 conv block and a 2x average pool, then the 32 px body."""
    return _Judge([_conv_block(shape[0], width), nn.AvgPool2d(2), _conv_block(width, width), nn.MaxPool2d(2),
                   _conv_block(width, 2 * width), nn.MaxPool2d(2), _conv_block(2 * width, 4 * width)],
                  4 * width, num_classes)


JUDGES = {"pooled blocks": pooled_blocks,
          "strided stem": lambda shape, k, width: CNN(shape, k, width=width),
          "conv + avg-pool stem": avg_pool_stem}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="a run's summary.json (its prepared data and synthetic set are read)")
    parser.add_argument("--train", type=int, default=12000, help="real training images (a seeded subset)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=5000, help="synthetic images judged (a seeded subset)")
    args = parser.parse_args(argv)
    artifacts = json.loads(open(args.summary).read())["artifacts"]
    real, meta = imageset.load(artifacts["data"], "prepared dataset")
    synth, _ = imageset.load(artifacts["synthetic"], "synthetic dataset")
    rng = np.random.default_rng(0)
    train = rng.permutation(len(real["y_train"]))[:args.train]
    judged = rng.permutation(len(synth["y"]))[:args.synthetic]
    shape, k = tuple(real["x_train"].shape[1:]), len(meta["classes"])
    cfg = ClassifierConfig(epochs=args.epochs, patience=args.epochs, batch=128, width=32, lr=3e-3)
    acc = accel_mod.pick()
    report = Report("judges", f"label fidelity of {args.synthetic} synthetic images of {meta['dataset']} at "
                              f"{shape[1]} px under three CNN judges ({args.train} real images, {args.epochs} epochs)")
    fidelity = {}
    for name, build in JUDGES.items():
        torch.manual_seed(0)
        model = build(shape, k, 32)
        start = time.perf_counter()
        train_classifier(model, (real["x_train"][train], real["y_train"][train]),
                         (real["x_val"][:2000], real["y_val"][:2000]), cfg, acc, seed=0)
        seconds = time.perf_counter() - start
        test = float((predict(model, real["x_test"][:TEST_IMAGES], acc).argmax(1)
                      == real["y_test"][:TEST_IMAGES]).mean())
        fidelity[name] = float((predict(model, synth["x"][judged], acc).argmax(1) == synth["y"][judged]).mean())
        report.figure(f"{name}: training", seconds, "s")
        report.figure(f"{name}: real test accuracy", test, "")
        report.figure(f"{name}: label fidelity", fidelity[name], "")
    return report.done("label fidelity, pooled blocks / strided stem",
                       fidelity["pooled blocks"] / fidelity["strided stem"], "a record", None)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
