"""An ``onnxruntime`` backend for Triton written on the python backend.

The Triton binary bundled in nvidia-pytriton ships only the python backend. Triton treats a
folder ``backends/<name>/`` that holds a ``model.py`` as a backend called ``<name>``, and it
maps ``platform: "onnxruntime_onnx"`` to the backend ``onnxruntime``. Installed as
``backends/onnxruntime/model.py`` this file therefore lets the SAME model repository that
NVIDIA's Triton image serves with its native onnxruntime backend load here unchanged:

    <model_dir>/config.pbtxt        platform: "onnxruntime_onnx" (or backend: "onnxruntime")
    <model_dir>/<version>/model.onnx

It runs the graph with the onnxruntime pip package on CPU. What it honours from the config:
``max_batch_size`` (requests that arrive together are concatenated along dim 0 and run as one
batch), ``reshape`` on inputs and outputs, ``default_model_filename``, declared output data
types, and the native backend's ``intra_op_thread_count`` / ``inter_op_thread_count``
parameters. Errors are returned per request, so one bad request never stops the model.

This module is executed by ``triton_python_backend_stub`` inside the server's own venv
(numpy<2: with numpy 2 the 2.51 stub returns empty tensors without an error).
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

# Triton config data types -> numpy. BYTES tensors arrive as numpy object arrays.
_NUMPY_OF_TRITON = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}


def _dims_of(tensor_config: dict, key: str) -> list[int] | None:
    """The shape a config entry declares under ``key`` ('dims' or 'reshape'), or None."""
    if key == "reshape":
        reshape = tensor_config.get("reshape")
        return None if reshape is None else [int(d) for d in reshape.get("shape", [])]
    return [int(d) for d in tensor_config.get("dims", [])]


def _int_parameter(config: dict, name: str) -> int:
    """A positive integer from the config's ``parameters`` map; 0 means 'let onnxruntime choose'."""
    entry = config.get("parameters", {}).get(name)
    if entry is None:
        return 0
    raw = entry.get("string_value", "0")
    try:
        return max(0, int(raw))
    except ValueError:
        raise pb_utils.TritonModelException(
            f"config parameter {name}={raw!r} is not an integer; give a whole number such as '1'"
        ) from None


class TritonPythonModel:
    """One instance serves one loaded version of one model."""

    def initialize(self, args: dict) -> None:
        """Open ``<model_dir>/<version>/<default_model_filename or model.onnx>`` on CPU."""
        self.config = json.loads(args["model_config"])
        self.name = args["model_name"]
        self.max_batch_size = int(self.config.get("max_batch_size", 0))
        filename = self.config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if not os.path.isfile(path):
            raise pb_utils.TritonModelException(
                f"model '{self.name}': no ONNX file at {path}; upload "
                f"<model>/{args['model_version']}/{filename} to the repository"
            )

        options = ort.SessionOptions()
        # The native backend's parameter names, so one config.pbtxt serves both servers.
        options.intra_op_num_threads = _int_parameter(self.config, "intra_op_thread_count")
        options.inter_op_num_threads = _int_parameter(self.config, "inter_op_thread_count")
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])

        self.inputs = self.config.get("input", [])
        self.outputs = self.config.get("output", [])
        if not self.outputs:
            raise pb_utils.TritonModelException(
                f"model '{self.name}': config.pbtxt declares no output; list the graph's outputs "
                f"{[o.name for o in self.session.get_outputs()]} with their data_type and dims"
            )
        graph_inputs = {i.name for i in self.session.get_inputs()}
        graph_outputs = {o.name for o in self.session.get_outputs()}
        missing = [i["name"] for i in self.inputs if i["name"] not in graph_inputs]
        missing += [o["name"] for o in self.outputs if o["name"] not in graph_outputs]
        if missing:
            raise pb_utils.TritonModelException(
                f"model '{self.name}': config names {missing} are not in {filename} "
                f"(graph inputs {sorted(graph_inputs)}, outputs {sorted(graph_outputs)}); "
                "rename them in config.pbtxt or re-export the graph with those names"
            )

    def execute(self, requests: list) -> list:
        """Answer each request; requests of a batching model run as one onnxruntime call."""
        if self.max_batch_size > 0 and len(requests) > 1:
            try:
                return self._execute_batched(requests)
            except Exception as error:  # noqa: BLE001 - retry one by one: each request gets its own error
                pb_utils.Logger.log_warn(f"model '{self.name}': batch of {len(requests)} requests failed "
                                         f"({type(error).__name__}: {error}); running them one by one")
        responses = []
        for request in requests:
            try:
                feeds = self._feeds(request)
                responses.append(self._response(self._run(feeds)))
            except Exception as error:  # noqa: BLE001 - an error belongs to its request
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"model '{self.name}': {type(error).__name__}: {error}")))
        return responses

    # -- helpers ----------------------------------------------------------------------------
    def _feeds(self, request) -> dict[str, np.ndarray]:
        """Inputs of one request, reshaped to what the graph expects (batch dim kept)."""
        feeds = {}
        for spec in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, spec["name"])
            if tensor is None:
                if spec.get("optional", False):
                    continue
                raise ValueError(f"request lacks input '{spec['name']}'")
            array = tensor.as_numpy()
            model_shape = _dims_of(spec, "reshape")
            if model_shape is not None:
                lead = [array.shape[0]] if self.max_batch_size > 0 else []
                array = array.reshape(lead + model_shape)
            feeds[spec["name"]] = array
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in config order, each of its declared type and client-facing shape."""
        names = [spec["name"] for spec in self.outputs]
        arrays = self.session.run(names, feeds)
        shaped = []
        for spec, array in zip(self.outputs, arrays):
            array = np.asarray(array).astype(_NUMPY_OF_TRITON[spec["data_type"]], copy=False)
            if spec.get("reshape") is not None:
                # The graph produced the reshape shape; clients were promised `dims`.
                lead = [array.shape[0]] if self.max_batch_size > 0 else []
                array = array.reshape(lead + _dims_of(spec, "dims"))
            shaped.append(array)
        return shaped

    def _response(self, arrays: list[np.ndarray]):
        tensors = [pb_utils.Tensor(spec["name"], array) for spec, array in zip(self.outputs, arrays)]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _execute_batched(self, requests: list) -> list:
        """Concatenate every request along dim 0, run once, and split the outputs back."""
        per_request = [self._feeds(request) for request in requests]
        sizes = [len(next(iter(feeds.values()))) for feeds in per_request]
        joined = {name: np.concatenate([feeds[name] for feeds in per_request], axis=0)
                  for name in per_request[0]}
        outputs = self._run(joined)
        bounds = np.cumsum(sizes)[:-1]
        pieces = [np.split(array, bounds, axis=0) for array in outputs]
        return [self._response([piece[i] for piece in pieces]) for i in range(len(requests))]

    def finalize(self) -> None:
        self.session = None
