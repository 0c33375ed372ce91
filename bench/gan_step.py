"""GAN training steps: genaug's class-conditional DCGAN, trained by its own loop, against the
DCGAN of Radford et al. (2016) as people know it from pytorch/examples (re-implemented here
from the paper's description), trained by the textbook loop.

    python -m bench.gan_step [--steps 20] [--batch 128] [--width 0]

Both at 32x32x3 (CIFAR-10's size) on the same batch size, one D update and one G update per
step, Adam(2e-4, 0.5). The reference has the paper's widths (ngf = ndf = 64, nz = 100); ours
gets the width whose G + D forward has the reference's multiply-accumulates (within 10%;
--width overrides), so the ratio compares implementations, not model sizes. Ours is measured through ``genaug.train.gan.train_gan`` itself (its
data path, bf16 autocast and channels_last on CUDA, fused Adam); the reference gets its
batches as ready float tensors on the device, which favours it. Target: ours >= 1.0x in
images/s.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn as nn

from bench.flops import macs, params
from bench.harness import Report, interleaved
from genaug import accel as accel_mod
from genaug.models.gan import DCGANDiscriminator, DCGANGenerator
from genaug.sections import GanConfig
from genaug.train.gan import train_gan

SHAPE = (3, 32, 32)


class PaperGenerator(nn.Module):
    """z [B, nz, 1, 1] -> image [B, 3, 32, 32]: a 4x4 projection by a transposed conv, then
    fractionally-strided convs that halve the channels and double the side, batch norm and
    ReLU between, tanh at the end (Radford et al., 2016, sec. 3 and fig. 1)."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3):
        super().__init__()
        layers, ch = [nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True)], ngf * 4
        for _ in range(2):  # 4 -> 8 -> 16
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]  # 16 -> 32
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class PaperDiscriminator(nn.Module):
    """image -> logit: strided convs doubling the channels, LeakyReLU(0.2), batch norm on all
    but the first, and a final 4x4 conv to one value (no pooling, no fully connected layers)."""

    def __init__(self, ndf: int = 64, channels: int = 3):
        super().__init__()
        layers, ch = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], ndf
        for _ in range(2):  # 16 -> 8 -> 4
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten()


def reference_steps(G, D, real: torch.Tensor, steps: int, batch: int, nz: int):
    """The textbook loop: BCE on D(real) = 1 and D(G(z)) = 0, then G's non-saturating step."""
    device = real.device
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def run():
        for _ in range(steps):
            xb = real[torch.randint(0, len(real), (batch,), device=device)]
            fake = G(torch.randn(batch, nz, 1, 1, device=device))
            d_loss = bce(D(xb), ones) + bce(D(fake.detach()), zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = bce(D(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
    return run


def _macs_per_image(G, D, z_dim: int) -> float:
    labels, z = torch.zeros(8, dtype=torch.long), torch.randn(8, z_dim)
    return macs(lambda: D(G(labels, z), labels)) / 8


def matched_width(target_macs: float, z_dim: int) -> int:
    """The even width of genaug's DCGAN whose MACs per image come closest to ``target_macs``."""
    def cost(width):
        return abs(_macs_per_image(DCGANGenerator(SHAPE, 10, z_dim, width), DCGANDiscriminator(SHAPE, 10, z_dim, width),
                                   z_dim) / target_macs - 1)
    return min(range(8, 130, 2), key=cost)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=0, help="ours; 0: matched to the reference's MACs")
    p.add_argument("--z_dim", type=int, default=128, help="ours: the full profile's z_dim")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    acc = accel_mod.pick()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4096, *SHAPE), dtype=np.uint8)  # content does not change the cost
    y = rng.integers(0, 10, 4096).astype(np.int64)
    report = Report("gan_step", f"DCGAN training steps at {SHAPE[1]}x{SHAPE[2]}x{SHAPE[0]}, batch {args.batch}, "
                                f"on {acc.device}{' (bf16)' if acc.amp else ''}")

    PG, PD = PaperGenerator(), PaperDiscriminator()
    ref_macs = macs(lambda: PD(PG(torch.randn(8, 100, 1, 1)))) / 8
    width = args.width or matched_width(ref_macs, args.z_dim)
    G, D = DCGANGenerator(SHAPE, 10, args.z_dim, width), DCGANDiscriminator(SHAPE, 10, args.z_dim, width)
    our_macs = _macs_per_image(G, D, args.z_dim)
    report.figure(f"genaug width (matched to the reference's MACs)" if not args.width else "genaug width", width, "")
    report.figure("genaug G + D parameters", params(G) + params(D), "params")
    report.figure("reference G + D parameters", params(PG) + params(PD), "params")
    report.figure("genaug MACs of G + D forward per image", our_macs, "MAC")
    report.figure("reference MACs of G + D forward per image", ref_macs, "MAC")
    PG, PD = PG.to(acc.device), PD.to(acc.device)
    real = torch.from_numpy(x).to(acc.device).float().div(127.5).sub(1.0)

    def ours():
        train_gan(G, D, x, y, GanConfig(steps=args.steps, batch=args.batch, z_dim=args.z_dim, log_every=10 ** 9),
                  acc, num_classes=10, seed=0)

    times = interleaved({"ours": ours, "reference": reference_steps(PG, PD, real, args.steps, args.batch, 100)},
                        acc.device, warmup=1, repeats=args.repeats)
    ours_ips, ref_ips = args.steps * args.batch / times["ours"], args.steps * args.batch / times["reference"]
    report.figure("genaug (train_gan, conditional)", ours_ips, "images/s")
    report.figure("reference (textbook loop, unconditional)", ref_ips, "images/s")
    ratio = ours_ips / ref_ips
    # Throughput per unit of work: what is left of the ratio once the size difference is out.
    report.figure("multiply-accumulates per second, genaug / reference", ratio * our_macs / ref_macs, "x")
    matched = abs(our_macs / ref_macs - 1) <= 0.1
    if not matched:
        report.note("the two differ by more than 10% in MACs: the ratio compares sizes too")
    return report.done("images/s, genaug / reference", ratio, ">= 1.0x", ratio >= 1.0 and matched)


if __name__ == "__main__":
    main()
