"""The INT8 classifier: a real INT8 file that keeps the FP32 accuracy, its gate both ways in
the promotion transaction, and Triton serving it; EfficientNet-B0 exported and served."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from genaug import models
from genaug.export.onnx import export_classifier
from genaug.export.quantize import int8_census
from genaug.services.store import promotion_store
from genaug.services.triton import Triton
from genaug.serving import scoring
from genaug.serving.gates import INT8_TOLERANCE
from genaug.serving.ledger import Ledger
from genaug.serving.promote import promote
from tests.integration.promotion_models import SPEC, _clf_candidate, _int8_candidate


def _fused_ops(path, tmp_path) -> list[str]:
    """The operators ONNX Runtime runs for ``path`` once it has optimized the graph."""
    import onnx

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


def test_the_int8_file_is_int8_and_keeps_the_fp32_accuracy(files, tmp_path):
    census = int8_census(files["good_int8"])
    assert census["quantize_linear"] > 0 and census["int8_initializers"] > 0, census
    assert int8_census(files["good"])["int8_initializers"] == 0  # the FP32 file has none: the census tells them apart
    assert "QLinearConv" in _fused_ops(files["good_int8"], tmp_path)  # ONNX Runtime runs integer kernels
    x, y = files["test"]
    accuracy = scoring.classifier_score(x, y)
    fp32, int8 = accuracy(files["good"]), accuracy(files["good_int8"])
    assert fp32 > 0.5 and int8 >= fp32 - INT8_TOLERANCE, (fp32, int8)
    assert accuracy(files["good_int8_far"]) < fp32 - INT8_TOLERANCE  # the planted defect is one the gate sees


def test_int8_is_promoted_beside_its_promoted_fp32_model_and_answers_over_triton(stack, files):
    store, triton = promotion_store(), Triton()
    fp32 = _clf_candidate(files["good"], files, name="int8_test-classifier")
    first = promote(fp32, store, triton, margin=0.0, floor=0.0)
    assert first["decision"] == "promoted"
    int8 = promote(_int8_candidate(files["good_int8"], fp32, first, files), store, triton, margin=0.0, floor=0.0)
    assert int8["decision"] == "promoted" and int8["model"] == "int8_test-classifier-int8", int8["reason"]
    gate = int8["gate"]
    assert gate["reference"]["model"] == fp32.name and gate["reference"]["promoted"] is True
    assert gate["candidate"] >= gate["reference"]["score"] - INT8_TOLERANCE
    assert Ledger(store).champion("int8_test-classifier-int8")["version"] == int8["version"]
    x, _ = files["test"]
    np.testing.assert_allclose(triton.classify("int8_test-classifier-int8", x[:16]),
                               scoring.onnx_logits(files["good_int8"], x[:16]), atol=1e-4)
    params = triton.config("int8_test-classifier-int8")["parameters"]
    assert params["precision"]["string_value"] == "int8"

    # Refused when too far: calibrated on black images, the INT8 file loses accuracy.
    far = promote(_int8_candidate(files["good_int8_far"], fp32, first, files), store, triton, margin=0.0, floor=0.0)
    assert far["decision"] == "rejected" and "below the FP32 model's" in far["reason"], far["reason"]
    # Refused when its FP32 model was not promoted (the untrained one loses to the champion),
    # however close the INT8 file is. Another pipeline run: within one, the same file's
    # earlier decision would be returned as a retry's.
    worse = _clf_candidate(files["bad"], files, name="int8_test-classifier", run_id="test-2")
    lost = promote(worse, store, triton, margin=0.0, floor=0.0)
    assert lost["decision"] == "rejected"
    refused = promote(_int8_candidate(files["good_int8"], worse, lost, files), store, triton, margin=0.0, floor=0.0)
    assert refused["decision"] == "rejected" and "was not promoted" in refused["reason"], refused["reason"]
    # Each refusal left the promoted INT8 version serving, and recorded its figures.
    assert Ledger(store).champion("int8_test-classifier-int8")["version"] == int8["version"]
    events = Ledger(store).events("int8_test-classifier-int8")
    assert [e["decision"] for e in events[-3:]] == ["promoted", "rejected", "rejected"]
    assert events[-1]["gate"]["reference"]["promoted"] is False


def test_efficientnet_b0_exports_with_parity_and_serves_over_triton(stack, files, tmp_path):
    torch.manual_seed(0)
    net = models.build_classifier("efficientnet_b0", shape=SPEC.shape, num_classes=10).eval()
    out = export_classifier(net, SPEC.shape, tmp_path / "efficientnet_b0.onnx")
    assert out["max_abs_diff"] < 1e-3, out
    decision = promote(_clf_candidate(tmp_path / "efficientnet_b0.onnx", files, name="effnet_test-classifier"),
                       promotion_store(), Triton(), margin=0.0, floor=0.0)
    assert decision["decision"] == "promoted", decision["reason"]  # staged and served, Triton's answers checked
    x, _ = files["test"]
    with torch.no_grad():
        expected = net(torch.from_numpy(x[:4]).float() / 255.0).numpy()
    np.testing.assert_allclose(Triton().classify("effnet_test-classifier", x[:4]), expected, atol=1e-3)
