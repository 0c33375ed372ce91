"""Export generators and classifiers to ONNX under the serving contract.

Generator: inputs ``labels`` int64 [B] and ``noise`` float32 [B, *noise_dims]; output
``images`` uint8 [B, C, H, W]. noise_dims is [Z] for a GAN and [K+1, C, H, W] for a
diffusion model, whose K-step sampler is unrolled into the graph (see
genaug.generators): one Triton call returns finished images, and with every random draw
an input the served graph can be checked against PyTorch on the same noise.
Classifier: input ``images`` uint8 [B, C, H, W]; output ``logits`` float32 [B, K]. Batch is a dynamic dimension; each file is checked with onnxruntime at two
batch sizes against the PyTorch module it came from.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from genaug.atomic import atomic_path
from genaug.generators import draw_noise, to_uint8

# The batch sizes the exported graph is checked at: 1 and an odd size, so a graph that
# silently fixed the batch dimension from the example input fails the check.
PARITY_BATCHES = (1, 7)


class GeneratorServing(torch.nn.Module):
    """(labels int64 [B], noise float32 [B, *noise_dims]) -> images uint8 [B, C, H, W].

    generator: a sampler module from genaug.generators.
    """

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, labels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.generator(labels, noise))


class ClassifierServing(torch.nn.Module):
    """images uint8 [B, C, H, W] -> logits float32 [B, K]."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images.float() / 255.0)


def _export(module: torch.nn.Module, example: dict[str, torch.Tensor], output: str, path: Path,
            optimize: bool = True) -> None:
    """optimize: run the exporter's onnxscript optimizer (constant folding and rewrite rules)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in example}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The dynamo exporter logs every decomposition at INFO; keep the task log readable.
        logging.getLogger("torch.onnx").setLevel(logging.WARNING)
        program = torch.onnx.export(module.eval(), kwargs=example, dynamo=True, dynamic_shapes=dynamic,
                                    input_names=list(example), output_names=[output], verbose=False,
                                    optimize=optimize)
        program.save(str(tmp), external_data=False)


def _parity(module: torch.nn.Module, path: Path, make_inputs) -> float:
    """max |onnxruntime - torch| over PARITY_BATCHES, in the output's own units."""
    from genaug.onnx_runtime import CpuSession

    # Beside synthesis, the export's check takes its task's share of the cores, not all of them.
    session = CpuSession(str(path))
    worst = 0.0
    for b in PARITY_BATCHES:
        inputs = make_inputs(b)
        with torch.no_grad():
            expected = module(**inputs).numpy().astype(np.float64)
        got = session.run({k: v.numpy() for k, v in inputs.items()})[0]
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {expected.shape} at batch {b}")
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max()))
    return worst


def export_generator(generator: torch.nn.Module, num_classes: int, path: str | Path) -> dict:
    """Write a sampler module's ONNX file; return {path, max_abs_diff (uint8 levels),
    noise_dims, batches}."""
    path = Path(path)
    module = GeneratorServing(generator.cpu().float().eval()).eval()

    def inputs(b: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(b)
        return {"labels": torch.randint(0, num_classes, (b,), generator=g), "noise": draw_noise(generator, b, g)}

    # Without the exporter's optimizer: on a diffusion sampler (K UNet calls unrolled) its
    # rewrite rules took 35 of the export's 80 s on the quick DDIM, while ONNX Runtime, which
    # optimizes every graph as it loads it (Triton's backend too), then served the file as
    # fast (bench/RESULTS.md). A GAN's graph is small either way.
    _export(module, inputs(2), "images", path, optimize=False)
    return {"path": str(path), "max_abs_diff": _parity(module, path, inputs), "units": "uint8 levels",
            "noise_dims": list(generator.noise_dims), "batches": list(PARITY_BATCHES)}


def export_classifier(classifier: torch.nn.Module, shape: tuple[int, int, int], path: str | Path) -> dict:
    """Write the classifier's ONNX file; return {path, max_abs_diff (logits), batches}."""
    path = Path(path)
    module = ClassifierServing(classifier.cpu().float().eval()).eval()

    def inputs(b: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(b)
        return {"images": torch.randint(0, 256, (b, *shape), generator=g, dtype=torch.uint8)}

    _export(module, inputs(2), "logits", path)
    return {"path": str(path), "max_abs_diff": _parity(module, path, inputs),
            "units": "logits", "batches": list(PARITY_BATCHES)}
