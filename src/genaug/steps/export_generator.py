"""The generator's ONNX file under the serving contract, checked against PyTorch.

It needs only the trained generator, so it runs beside synthesis rather than after the
classifiers: a diffusion model's export (its K-step sampler unrolled into one graph) is the
longest export, and at the end of the run it would hold up promotion.
"""

from __future__ import annotations

from genaug import catalog, generators
from genaug.export import onnx
from genaug.services import tracking
from genaug.steps.timing import timed_step


@timed_step
def export_generator(generator_path: str, generator_onnx_path: str, parent_run_id: str = "") -> dict:
    """Write ``generator_onnx_path``; return {"generator": {path, max_abs_diff (uint8
    levels), noise_dims, batches, generator (its arch), artifact_uri}, "dataset"}."""
    module, ckpt = generators.load(generator_path)
    spec = catalog.dataset_spec(ckpt["meta"]["dataset"], ckpt["meta"])
    gen = onnx.export_generator(module, spec.num_classes, generator_onnx_path)
    gen["generator"] = ckpt["arch"]
    tracking.log_metrics({"onnx_max_abs_diff_generator": gen["max_abs_diff"]})
    # Under the name Triton serves it by, so a registry version points at a servable file.
    gen["artifact_uri"] = tracking.log_file_as(generator_onnx_path, "onnx/generator/model.onnx")
    return {"generator": gen, "dataset": spec.name}
