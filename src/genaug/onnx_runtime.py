"""A torch module's forward pass run by ONNX Runtime on a CPU.

On the 2-core development CPU ONNX Runtime runs genaug's inference graphs much faster than
torch: the FID Inception 1.8x (0.060 against 0.108 s per image), the quick UNet 1.7x
against eager torch (0.835 against 1.39 s per forward of 500 on one thread), where
torch.compile was no faster and took over a minute to compile. The
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

from genaug import threads as genaug_threads


class CpuSession:
    """An ONNX Runtime CPU session (all graph optimizations, errors-only logging) whose
    intra-op thread count follows this task's share of the cores (genaug.threads): under the
    local runner's concurrent tasks, a session with ORT's default of one thread per core
    would oversubscribe the machine and slow every other task.

    graph: the model, as bytes or a file path. threads: fixed instead of the share."""

    def __init__(self, graph: bytes | str, threads: int | None = None):
        import onnxruntime as ort

        self.graph, self.fixed_threads = graph, threads
        self.name = f"onnxruntime {ort.__version__} (CPU)"
        self.threads, self.session = 0, None
        self._open(threads or genaug_threads.share() or torch.get_num_threads())

    def _open(self, count: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = count
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its graph-transform notices are not for people
        self.session = ort.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])
        self.threads = count

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        share = None if self.fixed_threads else genaug_threads.share()
        if share is not None and share != self.threads:
            self._open(share)  # its thread pool is fixed per session; a new one takes ~0.3 s
        return self.session.run(None, feed)


class OnnxForward:
    """``module``'s forward as an ONNX Runtime CPU session: call it with the same tensors
    (batch first, any batch size) and get the first output as a CPU torch tensor.

    threads: intra-op threads, fixed; by default the task's share (see CpuSession)."""

    def __init__(self, module: torch.nn.Module, example: Sequence[torch.Tensor], input_names: Sequence[str],
                 threads: int | None = None):
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notices
            torch.onnx.export(module, tuple(example), buffer, dynamo=False, opset_version=17,
                              input_names=list(input_names), output_names=["out"],
                              dynamic_axes={**{name: {0: "n"} for name in input_names}, "out": {0: "n"}})
        self.input_names = list(input_names)
        self.session = CpuSession(buffer.getvalue(), threads)
        self.name = self.session.name

    @property
    def threads(self) -> int:
        return self.session.threads

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(t.detach().cpu().numpy()) for name, t in zip(self.input_names, tensors)}
        return torch.from_numpy(self.session.run(feed)[0])
