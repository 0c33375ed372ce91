"""Diffusion training steps: genaug's conditional UNet trained by its own loop against
diffusers' UNet2DModel of matched parameters and MACs (each within 10%, checked), trained by
the loop of diffusers' training examples (DDPMScheduler.add_noise, MSE, AdamW, gradient
clipping, EMAModel).

    python -m bench.diffusion_step [--preset cpu|full] [--steps 5] [--batch 32]

Same resolution, batch, timesteps (1000, linear), label dropout 10%, EMA and clipping on
both sides; on CUDA both run under bf16 autocast. Ours is measured through
``genaug.train.diffusion.train_diffusion`` with the settings the pipeline uses on this
device. Target: ours >= 1.0x in images/s.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from bench import unets
from bench.harness import Report, interleaved
from genaug import accel as accel_mod
from genaug.diffusion import Diffusion
from genaug.generators import accel_for
from genaug.sections import DiffusionConfig
from genaug.train.diffusion import train_diffusion


def reference_steps(net, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, acc):
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    net = net.to(acc.device).train()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=0.0)
    ema = EMAModel(net.parameters(), decay=0.9999)

    def run():
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch,), device=x.device)
            x0, labels = x[idx], y[idx]
            labels = torch.where(torch.rand(batch, device=x.device) < 0.1, torch.full_like(labels, 10), labels)
            noise = torch.randn_like(x0)
            t = torch.randint(0, 1000, (batch,), device=x.device)
            noisy = scheduler.add_noise(x0, noise, t)
            with acc.autocast():
                pred = net(noisy, t, labels)
            loss = F.mse_loss(pred.float(), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            ema.step(net.parameters())
    return run


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(unets.PRESETS), default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    acc = accel_for("diffusion", accel_mod.pick())
    pair = unets.pair(args.preset)
    shape = pair.shape
    report = Report("diffusion_step", f"UNet training steps ({args.preset} preset), {shape[1]}x{shape[2]}x{shape[0]}, "
                                      f"batch {args.batch}, on {acc.device}{' (bf16)' if acc.amp else ''}")
    size = unets.sizes(pair)
    for side in ("ours", "reference"):
        report.figure(f"{side}: parameters", size[side]["params"], "params")
        report.figure(f"{side}: MACs per image (forward)", size[side]["macs_per_image"], "MAC")
    report.figure("parameters, ours / reference", size["params_ratio"], "x")
    report.figure("MACs, ours / reference", size["macs_per_image_ratio"], "x")
    if not size["matched"]:
        report.note("the networks differ by more than 10% in parameters or MACs: the ratio compares sizes too")

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2048, *shape), dtype=np.uint8)  # content does not change the cost
    y = rng.integers(0, 10, len(x)).astype(np.int64)
    process = Diffusion.from_schedule("linear", 1000, 0.1)
    cfg = DiffusionConfig(steps=args.steps, batch=args.batch, lr=2e-4, warmup=1, ema_decay=0.9999, log_every=10 ** 9)
    ref_x = torch.from_numpy(x).to(acc.device).float().div(127.5).sub(1.0)
    ref_y = torch.from_numpy(y).to(acc.device)

    def ours():
        train_diffusion(pair.ours, process, x, y, cfg, acc, seed=0)

    times = interleaved({"ours": ours, "reference": reference_steps(pair.reference, ref_x, ref_y, args.steps,
                                                                     args.batch, acc)},
                        acc.device, warmup=1, repeats=args.repeats)
    ours_ips, ref_ips = args.steps * args.batch / times["ours"], args.steps * args.batch / times["reference"]
    report.figure("genaug (train_diffusion)", ours_ips, "images/s")
    report.figure("reference (diffusers UNet2DModel, example loop)", ref_ips, "images/s")
    ratio = ours_ips / ref_ips
    return report.done("images/s, genaug / diffusers", ratio, ">= 1.0x", ratio >= 1.0 and size["matched"])


if __name__ == "__main__":
    main()
