"""Which accelerator this process sees, and how fast it runs bf16 matmuls and convolutions.

A quick check before a long run (notebooks/gpu_check.ipynb), not a benchmark: bench/ times
the project's own steps against references. Both measurements run on whatever device
genaug.accel.pick() chooses, so on a machine without a GPU they measure the CPU, and say so.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import torch

from genaug import accel

# Sizes that keep a GPU busy for a few ms per call, and a CPU for tens of ms.
MATMUL_N = {"cuda": 8192, "cpu": 1024}
CONV_BATCH = {"cuda": 256, "cpu": 16}


@dataclass(frozen=True)
class Throughput:
    """One timed operation: ``calls`` calls of ``flops`` floating-point operations each."""

    op: str          # "matmul" or "conv2d"
    shape: str       # the operands, e.g. "[1024, 1024] @ [1024, 1024]"
    device: str      # "cuda" or "cpu"
    dtype: str       # "bfloat16"
    flops: int       # per call: 2 per multiply-accumulate
    calls: int
    seconds: float   # wall time of all the calls, after one warm-up call

    @property
    def tflops(self) -> float:
        """Achieved TFLOP/s (10^12 floating-point operations per second)."""
        return self.flops * self.calls / self.seconds / 1e12

    def line(self) -> str:
        return (f"{self.op} {self.shape} {self.dtype} on {self.device}: {self.tflops:.3f} TFLOP/s "
                f"({self.calls} calls in {self.seconds * 1e3:.1f} ms)")


def accelerator() -> dict:
    """What this process computes on: ``device`` (cuda or cpu), ``name``, ``count`` (GPUs, or
    CPU cores this process may use), ``memory_gib`` (per GPU; None on a CPU), ``capability``
    (CUDA compute capability, e.g. "9.0"), ``bf16`` (whether the device runs bf16 natively),
    and the torch and CUDA versions."""
    device = accel.pick().device
    info = {"device": device.type, "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, count=torch.cuda.device_count(), memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    else:
        info.update(name=_cpu_name(), count=len(os.sched_getaffinity(0)),
                    memory_gib=None, capability=None, bf16=torch.backends.mkldnn.is_available())
    return info


def _cpu_name() -> str:
    """The CPU's model name as Linux reports it, else the machine type (e.g. x86_64)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(fn, calls: int, device: torch.device) -> float:
    """Seconds for ``calls`` calls of ``fn`` after one warm-up call (kernel choice, allocation)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        fn()
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
    return time.perf_counter() - t0


def matmul(n: int | None = None, calls: int = 10, device: str | None = None) -> Throughput:
    """bf16 [n, n] @ [n, n], 2 n^3 FLOPs a call; n defaults to MATMUL_N of the device."""
    dev = accel.pick(device).device
    n = n or MATMUL_N[dev.type]
    a, b = (torch.randn(n, n, device=dev, dtype=torch.bfloat16) for _ in range(2))
    seconds = _timed(lambda: a @ b, calls, dev)
    return Throughput("matmul", f"[{n}, {n}] @ [{n}, {n}]", dev.type, "bfloat16", 2 * n**3, calls, seconds)


def conv2d(batch: int | None = None, channels: int = 128, side: int = 32, kernel: int = 3, calls: int = 10,
           device: str | None = None) -> Throughput:
    """bf16 3x3 convolution, ``channels`` in and out, stride 1, same padding, channels_last
    (as genaug's networks run): input [batch, channels, side, side]; 2 * batch * side^2 *
    channels^2 * kernel^2 FLOPs a call; batch defaults to CONV_BATCH of the device."""
    dev = accel.pick(device).device
    batch = batch or CONV_BATCH[dev.type]
    conv = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
    conv = conv.to(dev, torch.bfloat16, memory_format=torch.channels_last)
    x = torch.randn(batch, channels, side, side, device=dev, dtype=torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last)
    seconds = _timed(lambda: conv(x), calls, dev)
    flops = 2 * batch * side * side * channels * channels * kernel * kernel
    return Throughput("conv2d", f"[{batch}, {channels}, {side}, {side}] * {kernel}x{kernel}", dev.type, "bfloat16",
                      flops, calls, seconds)
