"""Device choice and the fast-path switches: bf16 autocast and channels_last.

CUDA is used when present, the CPU otherwise. bf16 autocast defaults to on for CUDA only;
channels_last defaults to on everywhere (on this 2-core CPU it made a CNN training step
~1.3-1.6x faster). Both can be forced either way, so their code paths are tested on a CPU.
torch.compile is opt-in (GENAUG_COMPILE=1): it pays on a GPU over a long run, while on a
small CPU its start-up costs more than a quick run saves.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Accel:
    device: torch.device
    amp: bool            # bf16 autocast for forward passes
    channels_last: bool  # NHWC memory layout for 4-d activations and conv weights
    compile: bool = False  # torch.compile the training forward passes that support it

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def images(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] (any device) -> float32 [B, C, H, W] in [0, 1] on this device."""
        x = x_uint8.to(self.device, non_blocking=True).float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def compiled(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` through torch.compile when enabled (same parameters, same state_dict
        keys on the original), else ``model`` itself."""
        return torch.compile(model) if self.compile else model

    def describe(self) -> dict:
        return {"device": str(self.device), "amp_bf16": self.amp, "channels_last": self.channels_last,
                "compile": self.compile}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network under torch.compile's and DistributedDataParallel's wrappers: the one whose
    attributes (e.g. a UNet's null_label) and state_dict keys are the model's own."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def pick(device: str | None = None, amp: bool | None = None,
         channels_last: bool | None = None, compile: bool | None = None) -> Accel:
    """Resolve the device (arg, then $GENAUG_DEVICE, then cuda if available) and switches
    (compile: arg, then $GENAUG_COMPILE == "1")."""
    name = device or os.environ.get("GENAUG_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    on_gpu = dev.type == "cuda"
    if compile is None:
        compile = os.environ.get("GENAUG_COMPILE", "0") == "1"
    return Accel(dev, on_gpu if amp is None else amp, True if channels_last is None else channels_last, compile)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNGs and return a CPU generator for data order."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
