"""The GPU session's script body (bench/gpu.sh runs it): CUDA checks, bf16 training-step and
sampling figures, and a 2-minute DDIM training run on real Fashion-MNIST.

    PYTHONPATH=src:. python -m bench.gpu_run --out DIR [--fmnist DIR] [--smoke] [--parts checks,sampling]

Needs torch and numpy only (the GPU machine has no kfp, mlflow, diffusers or torchvision;
tqdm is optional). Figures: images/s, achieved TFLOP/s against the card's dense bf16 peak
(training counts 3x the forward's FLOPs: forward, and backward's two products), and peak
memory. ``--smoke`` runs every part at toy sizes on whatever device there is, in seconds:
that is how the CPU test suite keeps this script working between GPU sessions. ``--parts``
runs only the parts named (all by default), e.g. to rerun one that failed in a GPU session.
Writes DIR/gpu.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from bench.harness import sync
from genaug import accel as accel_mod
from genaug.data.batches import Batches
from genaug.diffusion import Diffusion
from genaug.generators import DiffusionSampler, sample
from genaug.models.classifiers import CNN
from genaug.models.gan import DCGANDiscriminator, DCGANGenerator
from genaug.models.unet import UNet
from genaug.sections import DiffusionConfig, GanConfig, SamplerConfig
from genaug.train.diffusion import train_diffusion
from genaug.train.gan import train_gan

# Dense bf16 tensor-core peaks from the vendors' datasheets (SXM parts), FLOP/s.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in BF16_PEAK.items() if k in name), None)


def forward_flops(net, *inputs) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(*inputs)
    return float(counter.get_total_flops())


def memory_reset(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None


def timed(fn, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


class Sizes:
    """Full-size work on a GPU; toy sizes for --smoke."""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.unet = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=()) if smoke \
            else dict(base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, attention_resolutions=(16,))
        self.fmnist_unet = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=()) \
            if smoke else dict(base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, attention_resolutions=(7,))
        self.batch = 4 if smoke else 128
        self.steps = 2 if smoke else 30
        self.sample_batch = 4 if smoke else 256
        self.sample_steps = 3 if smoke else 50
        self.train_seconds = 1.0 if smoke else 120.0
        self.gan_width = 8 if smoke else 64


def checks(acc, sizes: Sizes) -> dict:
    """The CUDA paths the CPU tests cannot reach, each pass/fail with its figure."""
    out = {}
    dev = acc.device
    out["device"] = {"ok": dev.type == "cuda" or sizes.smoke, "value": str(dev),
                     "amp_bf16": acc.amp, "channels_last": acc.channels_last}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 64).astype(np.int64)
    xb, _ = next(iter(Batches(x, y, 16, dev, seed=0)))
    out["data_resident_uint8"] = {"ok": xb.device.type == dev.type and xb.dtype == torch.uint8, "value": str(xb.device)}
    images = acc.images(xb)
    out["channels_last_batches"] = {"ok": images.is_contiguous(memory_format=torch.channels_last) == acc.channels_last}
    # bf16 against fp32 for one UNet forward: the autocast path gives the same function.
    net = UNet((3, 32, 32), 10, **sizes.unet).to(dev).eval()
    xt, t, lab = torch.randn(8, 3, 32, 32, device=dev), torch.randint(0, 1000, (8,), device=dev), torch.arange(8, device=dev)
    with torch.no_grad():
        ref = net(xt, t, lab).float()
        with acc.autocast():
            low = net(xt, t, lab).float()
    rel = float((low - ref).norm() / ref.norm())
    out["unet_bf16_vs_fp32_rel_err"] = {"ok": rel < 0.05, "value": rel}
    # The same seed and noise give the same images on the GPU (fp32) as on the CPU.
    process = Diffusion.from_schedule("linear", 1000, 0.1)
    sampler = DiffusionSampler(net, process, SamplerConfig(kind="ddim", steps=10, eta=0.0, guidance=2.0))
    labels = np.arange(8) % 10
    fp32 = replace(acc, amp=False)
    on_device = sample(sampler, labels, fp32, seed=1, batch=8)
    on_cpu = sample(sampler, labels, accel_mod.pick("cpu", amp=False), seed=1, batch=8)
    levels = int(np.abs(on_device.astype(int) - on_cpu.astype(int)).max())
    out["sampler_device_vs_cpu_uint8_levels"] = {"ok": levels <= 4, "value": levels}
    # A few real training steps of each trainer on the device, finite all through.
    G, D = DCGANGenerator((3, 32, 32), 10, 32, sizes.gan_width), DCGANDiscriminator((3, 32, 32), 10, 32, sizes.gan_width)
    hist = train_gan(G, D, x, y, GanConfig(steps=4, batch=16, z_dim=32, log_every=2), acc, 10, seed=0)
    out["gan_steps_finite"] = {"ok": all(np.isfinite(v).all() for k, v in hist.items() if k != "step")}
    unet = UNet((3, 32, 32), 10, **sizes.unet)
    _, hist = train_diffusion(unet, process, x, y, DiffusionConfig(steps=4, batch=16, lr=1e-4, warmup=1,
                                                                   ema_decay=0.9, log_every=2), acc, seed=0)
    out["diffusion_steps_finite"] = {"ok": bool(np.isfinite(hist["loss"]).all()), "value": hist["loss"][-1]}
    clf = acc.prepare(CNN((3, 32, 32), 10, width=16))
    opt = torch.optim.AdamW(clf.parameters(), fused=dev.type == "cuda")
    with acc.autocast():
        loss = torch.nn.functional.cross_entropy(clf(images).float(), torch.from_numpy(y[:16]).to(dev))
    loss.backward()
    opt.step()
    out["classifier_step_finite"] = {"ok": bool(torch.isfinite(loss).item()), "value": float(loss)}
    return out


def training_figures(acc, sizes: Sizes) -> dict:
    """UNet and DCGAN training throughput at 32x32x3, eager and compiled."""
    dev, out = acc.device, {}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2048, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, len(x)).astype(np.int64)
    process = Diffusion.from_schedule("linear", 1000, 0.1)
    probe = UNet((3, 32, 32), 10, **sizes.unet).to(dev)
    fwd = forward_flops(probe, torch.randn(1, 3, 32, 32, device=dev), torch.zeros(1, device=dev, dtype=torch.long),
                        torch.zeros(1, device=dev, dtype=torch.long))
    for compiled in (False, True):
        run = replace(acc, compile=compiled)
        unet = UNet((3, 32, 32), 10, **sizes.unet)
        cfg = DiffusionConfig(steps=sizes.steps, batch=sizes.batch, lr=2e-4, warmup=1, ema_decay=0.9999,
                              log_every=10 ** 9)
        train_diffusion(unet, process, x, y, replace(cfg, steps=3), run, seed=0)  # warm-up (and compile)
        memory_reset(dev)
        seconds = timed(lambda: train_diffusion(unet, process, x, y, cfg, run, seed=0), dev)
        ips = sizes.steps * sizes.batch / seconds
        out[f"unet_train_{'compiled' if compiled else 'eager'}"] = {
            "images_per_s": ips, "tflops": 3 * fwd * ips / 1e12, "peak_gib": peak_gib(dev),
            "params": sum(p.numel() for p in unet.parameters()), "batch": sizes.batch}
    G, D = DCGANGenerator((3, 32, 32), 10, 128, sizes.gan_width), DCGANDiscriminator((3, 32, 32), 10, 128, sizes.gan_width)
    gcfg = GanConfig(steps=sizes.steps, batch=sizes.batch, z_dim=128, log_every=10 ** 9)
    train_gan(G, D, x, y, replace(gcfg, steps=3), acc, 10, seed=0)
    memory_reset(dev)
    seconds = timed(lambda: train_gan(G, D, x, y, gcfg, acc, 10, seed=0), dev)
    out["dcgan_train"] = {"images_per_s": sizes.steps * sizes.batch / seconds, "peak_gib": peak_gib(dev)}
    return out


def sampling_figures(acc, sizes: Sizes) -> dict:
    """DDIM-50 with guidance 2 (two forwards per step), eager and with torch.compile."""
    dev, out = acc.device, {}
    net = UNet((3, 32, 32), 10, **sizes.unet).to(dev).eval()
    fwd = forward_flops(net, torch.randn(1, 3, 32, 32, device=dev), torch.zeros(1, device=dev, dtype=torch.long),
                        torch.zeros(1, device=dev, dtype=torch.long))
    module = DiffusionSampler(net, Diffusion.from_schedule("linear", 1000, 0.1),
                              SamplerConfig(kind="ddim", steps=sizes.sample_steps, eta=0.0, guidance=2.0))
    labels = np.arange(sizes.sample_batch) % 10
    variants = {"eager": module, "compiled": module.compiled()}
    if dev.type == "cuda":
        # CUDA graphs: one fixed shape per call, so each of the K steps replays one graph.
        variants["cudagraphs"] = DiffusionSampler(torch.compile(net, mode="reduce-overhead", dynamic=False),
                                                  module.process, module.sampler)
    for name, run in variants.items():
        def call():
            sample(run, labels, acc, seed=0, batch=sizes.sample_batch)
        call()  # warm-up (and compile)
        memory_reset(dev)
        ips = sizes.sample_batch / timed(call, dev)
        out[f"ddim{sizes.sample_steps}_{name}"] = {
            "images_per_s": ips, "tflops": 2 * sizes.sample_steps * fwd * ips / 1e12, "peak_gib": peak_gib(dev)}
    return out


def fmnist_run(acc, sizes: Sizes, folder: Path | None, out_dir: Path) -> dict:
    """Train a DDIM on real Fashion-MNIST for a fixed wall time, then sample 100 images."""
    from bench import idx

    data = idx.load(folder)
    process = Diffusion.from_schedule("cosine", 1000, 0.1)
    unet = UNet((1, 28, 28), 10, **sizes.fmnist_unet)
    base = DiffusionConfig(steps=20, batch=sizes.batch, lr=2e-4, warmup=100, ema_decay=0.999, log_every=10,
                           snr_gamma=5.0)
    # Calibrate steps/s on a short run, then train a fresh network for the time budget.
    calibration = timed(lambda: train_diffusion(UNet((1, 28, 28), 10, **sizes.fmnist_unet), process,
                                                data["train_x"], data["train_y"], base, acc, seed=0), acc.device)
    steps = max(10, int(sizes.train_seconds * base.steps / calibration))
    cfg = replace(base, steps=steps, log_every=max(1, steps // 20))
    memory_reset(acc.device)
    t0 = time.perf_counter()
    ema, hist = train_diffusion(unet, process, data["train_x"], data["train_y"], cfg, acc, seed=0)
    seconds = time.perf_counter() - t0
    module = DiffusionSampler(ema.eval(), process, SamplerConfig(kind="ddim", steps=sizes.sample_steps, guidance=2.0))
    labels = np.repeat(np.arange(10), 10)
    images = sample(module, labels, acc, seed=0, batch=100)
    np.savez_compressed(out_dir / "fmnist_ddim_samples.npz", images=images, labels=labels)
    return {"steps": steps, "seconds": seconds, "images_per_s": steps * cfg.batch / seconds,
            "loss_first": hist["loss"][0], "loss_last": hist["loss"][-1], "peak_gib": peak_gib(acc.device),
            "params": sum(p.numel() for p in unet.parameters()), "samples": "fmnist_ddim_samples.npz"}


def ddp_scaling(acc, sizes: Sizes) -> dict:
    """Images/s of diffusion training (the full profile's UNet, global batch 128) on 1..N GPUs,
    one torchrun process each (bench.ddp); in smoke, 1 and 2 gloo processes of a small UNet."""
    from bench.ddp import scaling

    counts = range(1, 3) if sizes.smoke else range(1, max(1, torch.cuda.device_count()) + 1)
    steps, batch = (3, 8) if sizes.smoke else (30, 128)
    out = {}
    for n in counts:
        ips = scaling(n, steps, batch, full=not sizes.smoke)
        out[f"{n}_gpu" if acc.device.type == "cuda" else f"{n}_proc"] = {
            "images_per_s": ips, "per_device": ips / n, "speedup": ips / out[next(iter(out))]["images_per_s"]
            if out else 1.0}
    return out


# gpu.json's sections, in the order they run.
PARTS = ("checks", "training", "sampling", "fmnist_ddim", "ddp_scaling")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--fmnist", default="bench/data/fashion-mnist")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    args = p.parse_args(argv)
    chosen = args.parts.split(",")
    if unknown := [part for part in chosen if part not in PARTS]:
        p.error(f"unknown part {', '.join(map(repr, unknown))}; choose from {', '.join(PARTS)}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    acc, sizes = accel_mod.pick(), Sizes(args.smoke)
    name = torch.cuda.get_device_name(0) if acc.device.type == "cuda" else platform.processor() or "cpu"
    print(f"torch {torch.__version__} cuda {torch.version.cuda} {name if acc.device.type == 'cuda' else 'no GPU'}",
          flush=True)
    record = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "bf16_peak_tflops":
              (peak_flops(name) or 0) / 1e12 or None, "smoke": args.smoke}
    failed = False
    runs = {"checks": lambda: checks(acc, sizes), "training": lambda: training_figures(acc, sizes),
            "sampling": lambda: sampling_figures(acc, sizes),
            "fmnist_ddim": lambda: fmnist_run(acc, sizes, Path(args.fmnist), out_dir),
            "ddp_scaling": lambda: ddp_scaling(acc, sizes)}
    for part, fn in ((part, runs[part]) for part in PARTS if part in chosen):
        t0 = time.perf_counter()
        try:
            record[part] = fn()
        except Exception as err:  # one broken part must not hide the others' figures
            record[part] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            failed = True
        record[part + "_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"[gpu] {part} ({record[part + '_seconds']} s): {json.dumps(record[part], default=str)[:1500]}",
              flush=True)
    if record.get("bf16_peak_tflops"):
        for section in ("training", "sampling"):
            for fig in record.get(section, {}).values():
                if isinstance(fig, dict) and "tflops" in fig:
                    fig["pct_of_bf16_peak"] = 100 * fig["tflops"] / record["bf16_peak_tflops"]
    failed |= not all(c.get("ok", False) for c in record.get("checks", {}).values() if isinstance(c, dict))
    (out_dir / "gpu.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"[gpu] {'FAILED' if failed else 'ok'}; {out_dir / 'gpu.json'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
