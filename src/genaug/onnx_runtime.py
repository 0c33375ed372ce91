"""A torch module's forward pass run by ONNX Runtime on a CPU.

On the 2-core development CPU ONNX Runtime runs genaug's inference graphs much faster than
torch: the FID Inception 1.8x (0.060 against 0.108 s per image), the quick UNet 1.9x
against eager torch, where torch.compile was no faster and took 30-80 s to compile. The
graph is exported in memory from the module as loaded (about a second; nothing cached to
go stale), and its outputs equal torch's to float32 rounding (tests check each use).
On a GPU torch stays: there it is fast, and bf16/compile paths apply.
"""

from __future__ import annotations

import io
import warnings
from typing import Sequence

import numpy as np
import torch


class OnnxForward:
    """``module``'s forward as an ONNX Runtime CPU session: call it with the same tensors
    (batch first, any batch size) and get the first output as a CPU torch tensor."""

    def __init__(self, module: torch.nn.Module, example: Sequence[torch.Tensor], input_names: Sequence[str],
                 threads: int | None = None):
        import onnxruntime as ort

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notices
            torch.onnx.export(module, tuple(example), buffer, dynamo=False, opset_version=17,
                              input_names=list(input_names), output_names=["out"],
                              dynamic_axes={**{name: {0: "n"} for name in input_names}, "out": {0: "n"}})
        options = ort.SessionOptions()
        # The task's thread share (OMP_NUM_THREADS reaches torch's count; pipelines/concurrent_dag.py).
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its graph-transform notices are not for people
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.input_names = list(input_names)
        self.name = f"onnxruntime {ort.__version__} (CPU)"

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(t.detach().cpu().numpy()) for name, t in zip(self.input_names, tensors)}
        return torch.from_numpy(self.session.run(None, feed)[0])
