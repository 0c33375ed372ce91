"""Which engine runs a feature network's forward pass: ONNX Runtime on a CPU, torch elsewhere.

The Inception forward is most of evaluate_generator on a CPU node. ONNX Runtime runs the
same graph 1.8x faster than torch eager on the 2-core development machine (0.060 against
0.108 s per 299x299 image), with features equal to ~1e-5 (values up to ~7), so FIDs stay
comparable with every recorded run. bf16 was rejected for that reason: 1.6% apart.

The ONNX graph is exported from the loaded (and already hash-checked) TorchScript file in
memory (genaug.onnx_runtime). Only the pool3 layout goes through ONNX Runtime; NVlabs' file resizes inside
and has a second output head, so it stays on torch, as does any CUDA device (where torch
is fast and the features must come from the same fp32 kernels as published FIDs).

``$GENAUG_FEATURE_RUNTIME`` = ``auto`` (default), ``onnxruntime`` or ``torch`` forces one;
``onnxruntime`` on a network it cannot run is an error that says so.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

from genaug.onnx_runtime import OnnxForward

RUNTIME_ENV = "GENAUG_FEATURE_RUNTIME"
RUNTIMES = ("auto", "onnxruntime", "torch")
# A batch of one at export; the batch axis is dynamic.
_EXPORT_SHAPE = (1, 3, 299, 299)

Forward = Callable[[torch.Tensor], torch.Tensor]


def choice() -> str:
    """The configured runtime, checked against RUNTIMES."""
    value = os.environ.get(RUNTIME_ENV, "auto").strip().lower() or "auto"
    if value not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV}={value!r} is not a feature runtime; choose one of {', '.join(RUNTIMES)}")
    return value


def torch_forward(module: torch.nn.Module, device: torch.device) -> Forward:
    """``module``'s forward on ``device`` in torch, NHWC (1.3x faster than NCHW on this CPU)."""

    @torch.inference_mode()
    def forward(x: torch.Tensor) -> torch.Tensor:
        return module(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu()

    return forward


def pool3_forward(module: torch.nn.Module, device: torch.device) -> tuple[Forward, str]:
    """(the forward of a pool3-layout network, the runtime's name for records)."""
    wanted = choice()
    if wanted == "torch" or (wanted == "auto" and device.type != "cpu"):
        return torch_forward(module, device), "torch"
    if device.type != "cpu":
        raise ValueError(f"{RUNTIME_ENV}=onnxruntime runs on the CPU only, but the device is {device}; "
                         f"unset {RUNTIME_ENV} or set it to torch")
    forward = OnnxForward(module, [torch.zeros(_EXPORT_SHAPE)], ["x"])
    return forward, forward.name
