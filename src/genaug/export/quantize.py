"""The INT8 classifier: ONNX Runtime's static quantization of the FP32 ONNX export,
calibrated on training images.

Same contract as the FP32 file (images uint8 [B, C, H, W] -> logits float32 [B, K]). The
file is in QDQ form: weights are int8 initializers (per output channel) read through
DequantizeLinear, activations pass QuantizeLinear/DequantizeLinear pairs with uint8 ranges
measured on the calibration images (MinMax), and ONNX Runtime, Triton's backend included,
fuses each pair around a Conv or MatMul into its integer kernel (QLinearConv) when it loads
the graph. Whether the INT8 file is good enough to serve is promotion's decision, on the
test split (genaug.serving.gates.decide_int8); this module never looks at test images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from genaug.atomic import atomic_path

# Images per calibration batch: the reader's memory stays one batch of activations.
CALIBRATION_BATCH = 32
# The operators with weights, where the integer kernels are. Elementwise operators (the
# input's scaling, activations, pooling) stay float: a QDQ pair around each adds rounding
# error and buys no speed.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
HEAD_OPS = ("MatMul", "Gemm")


def calibration_images(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded subset of ``count`` training images (uint8 [N, C, H, W]; all of them when
    there are fewer), the same for the same data and seed."""
    if count < 1:
        raise ValueError(f"INT8 calibration needs at least one image, got count={count}; set the profile's "
                         "classifier int8_calibration >= 1")
    rng = np.random.default_rng(seed)
    take = rng.permutation(len(x_train))[:count]
    return x_train[np.sort(take)]


def _reader(images: np.ndarray):
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        """Feeds ``images`` to the calibrator as {"images": uint8 [b, C, H, W]} batches."""

        def __init__(self):
            self.batches = iter(np.array_split(images, max(1, -(-len(images) // CALIBRATION_BATCH))))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": np.ascontiguousarray(batch)}

    return Batches()


def int8_census(path: str | Path) -> dict:
    """What makes a file INT8: counts of QuantizeLinear, DequantizeLinear and QLinear* nodes,
    and of int8/uint8 initializers against float32 ones."""
    import onnx

    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    types = [init.data_type for init in model.graph.initializer]
    return {"quantize_linear": ops.count("QuantizeLinear"), "dequantize_linear": ops.count("DequantizeLinear"),
            "qlinear_ops": sum(op.startswith("QLinear") for op in ops),
            "int8_initializers": sum(t in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) for t in types),
            "float_initializers": types.count(onnx.TensorProto.FLOAT)}


def quantize_classifier(fp32_path: str | Path, int8_path: str | Path, images: np.ndarray) -> dict:
    """Write the INT8 file of the FP32 classifier ``fp32_path``, its activation ranges
    calibrated on ``images`` (uint8 [N, C, H, W]); return {path, calibration_images, format,
    weights, activations, census (int8_census)}."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    int8_path = Path(int8_path)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(int8_path) as out:
        # Shapes inferred and the graph folded first, as ONNX Runtime advises: the quantizer
        # places its nodes by the value infos this writes.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
        head = _head(prepared)
        # uint8 activations with int8 weights: the pairing x86 CPUs' integer kernels
        # (VNNI) and ONNX Runtime's QLinearConv take; weights per output channel, since
        # channels of one conv differ in range by orders of magnitude after BatchNorm folding.
        quantize_static(str(prepared), str(out), _reader(images), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(QUANTIZED_OPS),
                        nodes_to_exclude=head)
    return {"path": str(int8_path), "calibration_images": int(len(images)), "format": "QDQ",
            "weights": "int8, per channel", "activations": "uint8, MinMax-calibrated",
            "float_nodes": head, "census": int8_census(int8_path)}


def _head(path: Path) -> list[str]:
    """The name of the last MatMul or Gemm (the layer that writes the logits), kept float.

    Why: its output is the decision itself, and rounding it costs what the body's INT8 saves
    nowhere else. On a 3-epoch CNN (test/promotion's "good" model, 300 test images) INT8 with
    the head quantized lost 1.7 to 3 points of accuracy, and 0.3 with it float."""
    import onnx

    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type in HEAD_OPS]
    return [nodes[-1].name] if nodes else []
