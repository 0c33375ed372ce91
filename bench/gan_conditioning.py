"""Where the label enters a DCGAN, and what it does to label fidelity.

    python -m bench.gan_conditioning RUN_DIR/summary.json [--seeds 0,1] [--steps 1500]

Trains the DCGAN of the quick profile (genaug.profiles) on a run's prepared data three ways
per seed, from the same initial RNG state and data order:

- ``label at the input`` (the reference): the DCGAN before issue 21's fix: the generator's
  label embedding concatenated to z and nowhere else, the projection discriminator, the
  non-saturating loss;
- ``class batch norm``: the generator of genaug.models.gan (per-class batch-norm scale and
  shift at every stage), the same discriminator and loss;
- ``class batch norm + auxiliary classifier`` (what ``dcgan`` trains now): that generator
  with genaug.train.gan_losses.AuxiliaryClassifier.

Each generator draws 200 images a class, judged by the run's real-data classifier (the judge
of the pipeline's label fidelity). The ratio is the last layout's fidelity over the
reference's, averaged over seeds. A record, not judged (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn

from bench.harness import Report
from genaug import accel as accel_mod
from genaug import checkpoint, generators, models
from genaug.data import imageset
from genaug.models.gan import DCGANGenerator, _init_dcgan, _mult, dcgan_stages
from genaug.profiles import PROFILES
from genaug.train.classifier import predict
from genaug.train.gan import train_gan
from genaug.train.gan_losses import AuxiliaryClassifier, NonSaturating

PER_CLASS = 200


class LabelAtInput(nn.Module):
    """The DCGAN generator with the label concatenated to z only (plain batch norm)."""

    def __init__(self, shape, num_classes: int, z_dim: int, width: int):
        super().__init__()
        c, h, w = shape
        stages = dcgan_stages(h, w)
        s0, top = (h >> stages, w >> stages), _mult(stages) * width
        self.embed = nn.Embedding(num_classes, z_dim)
        layers: list[nn.Module] = [nn.Linear(2 * z_dim, top * s0[0] * s0[1], bias=False), nn.Unflatten(1, (top, *s0)),
                                   nn.BatchNorm2d(top), nn.ReLU()]
        for k in range(stages, 0, -1):
            layers += [nn.ConvTranspose2d(_mult(k) * width, _mult(k - 1) * width, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(_mult(k - 1) * width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, c, 3, 1, 1), nn.Tanh())
        _init_dcgan(self)

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


REFERENCE, SHIPPED = "label at the input", "class batch norm + auxiliary classifier"
# name -> (generator class, objective)
GENERATORS = {REFERENCE: (LabelAtInput, NonSaturating), "class batch norm": (DCGANGenerator, NonSaturating),
              SHIPPED: (DCGANGenerator, AuxiliaryClassifier)}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="a run's summary.json (its prepared data and real classifier are read)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    parser.add_argument("--steps", type=int, default=PROFILES["quick"].gan.steps, help="discriminator updates")
    parser.add_argument("--only", choices=sorted(GENERATORS), help="train one layout only (no ratio)")
    args = parser.parse_args(argv)
    artifacts = json.loads(open(args.summary).read())["artifacts"]
    real, meta = imageset.load(artifacts["data"], "prepared dataset")
    judge, _ = checkpoint.load(artifacts["classifier_real"], "classifier")
    shape, k = tuple(real["x_train"].shape[1:]), len(meta["classes"])
    cfg = replace(PROFILES["quick"].gan, steps=args.steps)
    seeds = [int(s) for s in args.seeds.split(",")]
    layouts = {args.only: GENERATORS[args.only]} if args.only else GENERATORS
    acc = accel_mod.pick()
    report = Report("gan_conditioning", f"label fidelity of a conditional DCGAN on {meta['dataset']} at {shape[1]} px "
                                        f"after {cfg.steps} steps (batch {cfg.batch}), seeds {seeds}")
    labels = np.repeat(np.arange(k), PER_CLASS)
    fidelity: dict[str, list[float]] = {name: [] for name in layouts}
    for seed in seeds:
        for name, (build, objective) in layouts.items():
            torch.manual_seed(seed)
            G = build(shape, k, cfg.z_dim, cfg.width)
            _, D = models.build_gan("dcgan", shape=shape, num_classes=k, **cfg.model_args())
            start = time.perf_counter()
            train_gan(G, D, real["x_train"], real["y_train"], cfg, acc, k, seed, objective())
            seconds = time.perf_counter() - start
            images = generators.sample(generators.GanSampler(G, cfg.z_dim), labels, acc, seed + 1)
            fidelity[name].append(float((predict(judge, images, acc).argmax(1) == labels).mean()))
            report.figure(f"{name}, seed {seed}: training", seconds, "s")
            report.figure(f"{name}, seed {seed}: label fidelity", fidelity[name][-1], "")
    if args.only:
        return report.done(f"{args.only}: mean label fidelity", float(np.mean(fidelity[args.only])), "a record", None)
    return report.done(f"label fidelity, {SHIPPED} / {REFERENCE}",
                       float(np.mean(fidelity[SHIPPED]) / np.mean(fidelity[REFERENCE])), "a record", None)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
