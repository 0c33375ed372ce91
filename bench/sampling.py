"""DDIM-50 sampling: genaug's sampler against a loop over diffusers' DDIMScheduler, both
driving the same network (genaug's UNet, the same weights) with classifier-free guidance.

    python -m bench.sampling [--preset cpu|full] [--images 8] [--guidance 2]

Ours is ``genaug.generators.sample`` on a DiffusionSampler, as the synthesize step runs it
(noise drawn per batch, x_0 clipped, uint8 out); the reference is the loop of diffusers'
pipelines: set_timesteps(50), the conditional and unconditional batch in one call, then
scheduler.step. Target: ours >= 1.0x in images/s.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench import unets
from bench.harness import Report, interleaved
from genaug import accel as accel_mod
from genaug.diffusion import Diffusion
from genaug.generators import DiffusionSampler, accel_for, sample, to_uint8
from genaug.sections import SamplerConfig


def reference_sampler(net, n: int, guidance: float, steps: int, acc):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True,
                              set_alpha_to_one=False, timestep_spacing="leading")
    labels = torch.arange(n, device=acc.device) % 10
    null = torch.full_like(labels, 10)

    @torch.no_grad()
    def run():
        scheduler.set_timesteps(steps)
        x = torch.randn(n, *net.shape, device=acc.device)
        for t in scheduler.timesteps:
            tt = t.to(acc.device).expand(2 * n)
            with acc.autocast():
                both = net(torch.cat([x, x]), tt, torch.cat([labels, null])).float()
            cond, uncond = both.chunk(2)
            x = scheduler.step(uncond + guidance * (cond - uncond), t, x).prev_sample
        to_uint8(x).cpu()
    return run


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(unets.PRESETS), default="cpu")
    p.add_argument("--images", type=int, default=8, help="images per call (one batch)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=2.0, help="the full profile's")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    acc = accel_for("diffusion", accel_mod.pick())
    net = unets.ours(args.preset).to(acc.device).eval()
    report = Report("sampling", f"DDIM-{args.steps}, guidance {args.guidance:g}, {args.images} images per call, "
                                f"{args.preset} UNet, on {acc.device}{' (bf16)' if acc.amp else ''}")
    module = DiffusionSampler(net, Diffusion.from_schedule("linear", 1000, 0.1),
                              SamplerConfig(kind="ddim", steps=args.steps, eta=0.0, guidance=args.guidance))
    labels = np.arange(args.images) % 10

    def ours():
        sample(module, labels, acc, seed=0, batch=args.images)

    times = interleaved({"ours": ours, "reference": reference_sampler(net, args.images, args.guidance, args.steps, acc)},
                        acc.device, warmup=1, repeats=args.repeats)
    ours_ips, ref_ips = args.images / times["ours"], args.images / times["reference"]
    report.figure("genaug (generators.sample, DiffusionSampler)", ours_ips, "images/s")
    report.figure("reference (diffusers DDIMScheduler loop)", ref_ips, "images/s")
    ratio = ours_ips / ref_ips
    return report.done("images/s, genaug / diffusers", ratio, ">= 1.0x", ratio >= 1.0)


if __name__ == "__main__":
    main()
