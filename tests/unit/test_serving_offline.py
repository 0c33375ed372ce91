"""Promotion gates, Triton config templates, image tiling and captions: the parts with no server."""

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from genaug import catalog
from genaug.serving.gates import INT8_TOLERANCE, decide, decide_int8
from genaug.serving.infer import CAPTION_PX, captioned, tile
from genaug.serving.repository import classifier_model_name, pinned_version, render_config


def test_first_candidate_needs_only_floor_and_parity():
    d = decide("acc", 0.5, None, margin=0.01, floor=0.2, parity=1e-6, parity_tolerance=1e-3)
    assert d.passed and "no champion" in d.reasons[0]


@pytest.mark.parametrize("cand,champ,margin,passed", [
    (0.90, 0.89, 0.0, True),
    (0.90, 0.90, 0.0, False),    # equal is not better: a retrain that is no better never swaps
    (0.90, 0.89, 0.02, False),
    (0.92, 0.89, 0.02, True),
])
def test_margin_over_champion(cand, champ, margin, passed):
    d = decide("acc", cand, champ, margin=margin, floor=0.2, parity=0.0, parity_tolerance=1e-3)
    assert d.passed is passed
    if not passed:
        assert "does not beat the champion" in d.reasons[0]


def test_floor_and_parity_fail_with_reasons():
    d = decide("acc", 0.1, None, margin=0.0, floor=0.2, parity=0.5, parity_tolerance=1e-3)
    assert not d.passed and len(d.reasons) == 2
    assert any("floor" in r for r in d.reasons) and any("parity" in r for r in d.reasons)


@pytest.mark.parametrize("int8,fp32_promoted,passed,why", [
    (0.800, True, True, "within"),
    (0.800 - INT8_TOLERANCE, True, True, "within"),      # exactly half a point below still serves
    (0.794, True, False, "below the FP32"),
    (0.810, False, False, "was not promoted"),             # better than FP32, but FP32 does not serve
])
def test_int8_gate_follows_its_fp32_model(int8, fp32_promoted, passed, why):
    d = decide_int8("test_accuracy", int8, 0.99, "ds-classifier", 0.800, fp32_promoted)
    assert d.passed is passed and why in " ".join(d.reasons)
    assert d.reference == {"model": "ds-classifier", "score": 0.800, "promoted": fp32_promoted,
                           "tolerance": INT8_TOLERANCE}
    assert d.champion == 0.99  # recorded, not judged: a better INT8 champion does not block it


def test_the_int8_classifier_has_its_own_name_and_says_its_precision():
    spec = catalog.dataset("fashion_mnist")
    assert classifier_model_name(spec, "int8") == "fashion_mnist-classifier-int8"
    text = render_config("classifier", "fashion_mnist-classifier-int8", 2, spec, precision="int8")
    cfg = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert cfg.parameters["precision"].string_value == "int8"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        classifier_model_name(spec, "fp16")


@pytest.mark.parametrize("kind", ["generator", "classifier"])
@pytest.mark.parametrize("dataset", ["fashion_mnist", "cifar10"])
def test_templates_parse_as_triton_model_config(kind, dataset):
    spec = catalog.dataset(dataset)
    text = render_config(kind, f"{dataset}-x", 7, spec, noise_dims=[64])
    cfg = text_format.Parse(text, model_config_pb2.ModelConfig())  # Triton's own schema
    assert list(cfg.version_policy.specific.versions) == [7] and pinned_version(text) == 7
    assert cfg.max_batch_size > 0 and cfg.dynamic_batching is not None
    assert all(g.kind == 0 for g in cfg.instance_group)  # KIND_AUTO: no kind named
    assert cfg.parameters["class_names"].string_value.split(",") == list(spec.classes)
    out = cfg.output[0]
    assert list(out.dims) == ([spec.num_classes] if kind == "classifier" else list(spec.shape))


def test_tile_places_each_image():
    images = np.stack([np.full((1, 2, 2), i * 10, np.uint8) for i in range(5)])
    picture = tile(images, columns=3, scale=1)
    assert picture.shape == (2 * 4 + 2, 3 * 4 + 2, 1)
    assert picture[2, 2, 0] == 0 and picture[2, 6, 0] == 10 and picture[6, 2, 0] == 30


def test_each_generated_image_is_captioned_with_its_class_name():
    images = np.full((3, 1, 28, 28), 100, np.uint8)
    strips = captioned(images, ["Trouser", "", "Bag"], scale=3)
    assert strips.shape == (3, 1, 84 + CAPTION_PX, 84)
    assert (strips[:, :, :84] == 100).all()  # the image, enlarged and untouched
    bands = strips[:, 0, 84:]
    assert bands[0].max() > 200 and bands[1].max() == 0  # white text where there is a name
    assert not np.array_equal(bands[0], bands[2])  # and it is the name: Trouser is not Bag
    wide = captioned(images[:1], ["a class name far wider than its image"], scale=3)[0, 0, 84:]
    assert wide[:, -1].max() == 0  # shortened to fit: nothing runs off the edge


def test_the_verdict_says_when_a_champion_keeps_serving():
    from genaug.steps.promote import verdict_line, verdict_markdown

    kept = {"model": "fashion_mnist-classifier", "decision": "rejected", "reason": "0.80 does not beat 0.82",
            "served_version": "3", "champion_version_before": "3", "candidate_score": 0.8, "champion_score": 0.82}
    new = {"model": "fashion_mnist-dcgan-generator", "decision": "promoted", "reason": "first model",
           "served_version": "1", "champion_version_before": None, "candidate_score": 0.9, "champion_score": None}
    assert verdict_line(kept) == "rejected; champion v3 keeps serving (0.80 does not beat 0.82)"
    assert verdict_line(new) == "promoted v1 (replaces nothing; first model)"
    table = verdict_markdown({"generator": new, "classifier": kept})
    assert "| fashion_mnist-classifier | **rejected** | 0.8000 | 0.8200 | v3 |" in table
    assert "fashion_mnist-classifier keep serving the previous version" in table
