"""ONNX export under the serving contract, checked against PyTorch with onnxruntime."""
