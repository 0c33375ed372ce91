"""What a resolution costs: every trainable network of a profile at 32, 64 and 128 px.

    python -m bench.resolution [--profile quick] [--steps 3]

For each network (the DCGAN pair, the WGAN-GP critic, the diffusion UNet and the CNN and
MLP classifiers, as the profile sizes them and genaug.models grows them with the side):
parameters, multiply-accumulates per image of a forward pass (machine-independent), and the
wall time of a training step (forward, backward, Adam) at the profile's batch on this
machine. The reference is the same network at 32 px in the same process; the ratio is how
much more a 64 px training step costs than a 32 px one, next to the 4x in pixels. It is
a record, not judged: the profiles' tables in docs/data.md come from it.
"""

from __future__ import annotations

import argparse

import torch

from bench.flops import macs, params
from bench.harness import Report, interleaved
from genaug import models
from genaug.profiles import PROFILES
from genaug.sections import RESOLUTIONS

CLASSES = 10


def _networks(profile, side: int) -> dict[str, tuple[torch.nn.Module, callable]]:
    """name -> (module, one training-step loss on a batch), at ``side`` px RGB."""
    shape, gan, diff, clf = (3, side, side), profile.gan, profile.diffusion, profile.classifier
    G, D = models.build_gan("dcgan", shape=shape, num_classes=CLASSES, **gan.model_args())
    _, critic = models.build_gan("wgan_gp", shape=shape, num_classes=CLASSES, **gan.model_args())
    unet = models.build_generator("ddim", shape=shape, num_classes=CLASSES, **diff.unet_args(side))
    cnn = models.build_classifier("cnn", shape=shape, num_classes=CLASSES, width=clf.width)
    mlp = models.build_classifier("shallow_mlp", shape=shape, num_classes=CLASSES, width=clf.width)

    def gan_loss(batch):
        y = torch.randint(0, CLASSES, (batch,))
        return D(G(y, torch.randn(batch, gan.z_dim)), y).mean()

    def critic_loss(batch):
        y = torch.randint(0, CLASSES, (batch,))
        return critic(torch.randn(batch, *shape), y).mean()

    def unet_loss(batch):
        x = torch.randn(batch, *shape)
        return unet(x, torch.randint(0, 1000, (batch,)), torch.randint(0, CLASSES, (batch,))).square().mean()

    def classifier_loss(net):
        return lambda batch: net(torch.rand(batch, *shape)).logsumexp(1).mean()

    return {"dcgan G+D": (torch.nn.ModuleList([G, D]), gan_loss, gan.batch),
            "wgan_gp critic": (critic, critic_loss, gan.batch),
            "diffusion UNet": (unet, unet_loss, diff.batch),
            "cnn classifier": (cnn, classifier_loss(cnn), clf.batch),
            "shallow_mlp classifier": (mlp, classifier_loss(mlp), clf.batch)}


def _step(module, loss, batch):
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)

    def run():
        optimizer.zero_grad(set_to_none=True)
        loss(batch).backward()
        optimizer.step()

    return run


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per network and side")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    torch.manual_seed(0)
    report = Report("resolution", f"profile {args.profile}: each network at {', '.join(map(str, RESOLUTIONS))} px")
    by_side = {side: _networks(profile, side) for side in RESOLUTIONS}
    step_ratio = {}
    for name in by_side[RESOLUTIONS[0]]:
        steps = {}
        for side in RESOLUTIONS:
            module, loss, batch = by_side[side][name]
            with torch.no_grad():
                per_image = macs(lambda: loss(2)) / 2
            report.figure(f"{name} at {side} px: parameters", params(module), "")
            report.figure(f"{name} at {side} px: forward MACs per image", per_image / 1e6, "M")
            steps[side] = _step(module, loss, batch)
        timed = interleaved({side: steps[side] for side in RESOLUTIONS[:2]}, warmup=1, repeats=args.steps)
        for side, sec in timed.items():
            report.figure(f"{name} at {side} px: training step (batch {by_side[side][name][2]})", sec * 1000, "ms")
        step_ratio[name] = timed[64] / timed[32]
        report.figure(f"{name}: 64 px step / 32 px step", step_ratio[name], "x")
    worst = max(step_ratio.values())
    report.note("128 px is sized (parameters, MACs) but not timed here: a 2-core CPU is not where it trains")
    return report.done("most costly network: 64 px step / 32 px step (pixels: 4x)", worst, "a record (4x pixels)",
                       None)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
