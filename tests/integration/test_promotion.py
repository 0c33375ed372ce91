"""Promotion against the real S3, MLflow and Triton servers of the test stack."""

import numpy as np
import pytest
from PIL import Image

from genaug import accel as accel_mod
from genaug.services import tracking
from genaug.services.store import promotion_store
from genaug.services.triton import ServingError, Triton
from genaug.serving import infer, scoring
from genaug.serving.infer import CAPTION_PX, captioned
from genaug.serving.ledger import Ledger
from genaug.serving.promote import Candidate, promote, rollback
from genaug.serving.repository import Repository, render_config
from genaug.train.classifier import predict
from tests.integration.promotion_models import CLF, SPEC, _clf_candidate


def _served_versions(triton, name):
    return [int(v) for v in triton.config(name)["version_policy"]["specific"]["versions"]]


def test_promotion_lifecycle(stack, files, monkeypatch):
    store, triton = promotion_store(), Triton()
    ledger = Ledger(store)
    x, _ = files["test"]

    first = promote(_clf_candidate(files["bad"], files), store, triton, margin=0.0, floor=0.0)
    assert first["decision"] == "promoted" and first["version"] == 1
    assert _served_versions(triton, CLF) == [1]
    # What Triton answers equals onnxruntime on the same file.
    np.testing.assert_allclose(triton.classify(CLF, x[:16]), scoring.onnx_logits(files["bad"], x[:16]), atol=1e-4)
    # Clients get class names from the version's labels file, by Triton's classification extension.
    logits = scoring.onnx_logits(files["bad"], x[:2])
    for row, ranked in zip(logits, triton.ranked_classes(CLF, x[:2], 3)):
        assert [name for _, _, name in ranked] == [SPEC.classes[k] for k in np.argsort(-row)[:3]]

    better = promote(_clf_candidate(files["good"], files), store, triton, margin=0.0, floor=0.0)
    assert better["decision"] == "promoted" and better["version"] == 2
    assert _served_versions(triton, CLF) == [2]
    assert tracking.alias_version(CLF, "champion") == better["mlflow_version"]
    assert tracking.alias_version(CLF, "previous") == first["mlflow_version"]
    meta = Repository(store).metadata(CLF, 2)
    assert meta["mlflow_version"] == better["mlflow_version"] and meta["pipeline_run_id"] == "test"

    repeat = promote(_clf_candidate(files["good"], files), store, triton, margin=0.0, floor=0.0)
    assert repeat.get("repeat") and Repository(store).versions(CLF) == [1, 2]  # a retry changes nothing

    worse = promote(_clf_candidate(files["bad"], files), store, triton, margin=0.0, floor=0.0)
    assert worse["decision"] == "rejected" and "does not beat the champion" in worse["reason"]
    assert _served_versions(triton, CLF) == [2] and Repository(store).versions(CLF) == [1, 2]

    back = rollback(CLF, store, triton, scoring.classifier_probe(x[:8]), 1e-3)
    assert back["decision"] == "rolled_back" and _served_versions(triton, CLF) == [1]
    assert tracking.alias_version(CLF, "champion") == first["mlflow_version"]
    assert ledger.champion(CLF)["version"] == 1

    # A failure after the new version is written: the old one must keep serving.
    real_load = Triton.load

    def failing_load(self, name, config=None, files=None):
        if name == CLF:
            raise ServingError("injected failure while loading the new version")
        return real_load(self, name, config, files)

    monkeypatch.setattr(Triton, "load", failing_load)
    with pytest.raises(ServingError, match="injected"):
        promote(_clf_candidate(files["good"], files), store, triton, margin=0.0, floor=0.0)
    monkeypatch.undo()
    assert _served_versions(triton, CLF) == [1] and triton.ready(CLF)
    np.testing.assert_allclose(triton.classify(CLF, x[:4]), scoring.onnx_logits(files["bad"], x[:4]), atol=1e-4)
    assert Repository(store).served_version(CLF) == 1
    assert tracking.alias_version(CLF, "champion") == first["mlflow_version"]
    assert ledger.events(CLF)[-1]["decision"] == "failed"


def test_generator_serves_the_contract(stack, files, tmp_path):
    store, triton = promotion_store(), Triton()
    name = "promo_test-dcgan-generator"
    judge = files["good_model"]
    cand = Candidate(name=name, kind="generator", onnx_path=files["gen"],
                     render_config=lambda v: render_config("generator", name, v, SPEC, noise_dims=[16]),
                     metric="label_fidelity",
                     score=scoring.label_fidelity(lambda im: predict(judge, im, accel_mod.pick("cpu")), 10),
                     probe=scoring.generator_probe(10), probe_tolerance=1.0, parity=0.0, parity_tolerance=1.0)
    decision = promote(cand, store, triton, margin=0.0, floor=0.0)
    assert decision["decision"] == "promoted", decision
    labels = np.array([0, 3, 9])
    inputs = scoring.generator_inputs(files["gen"], labels)
    images = triton.generate(name, inputs["labels"], inputs["noise"])
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8
    assert np.abs(images.astype(int) - scoring.onnx_generate(files["gen"], labels).astype(int)).max() <= 1
    # `genaug infer generator`: each image of the strip is captioned with its class name.
    strip = np.asarray(Image.open(infer.generate(name, [0, 3, 9], tmp_path / "strip.png", triton=triton)))
    names = captioned(np.zeros((3, 1, 28, 28), np.uint8), [SPEC.classes[k] for k in (0, 3, 9)])[:, 0, 84:]
    gap = 2  # genaug.serving.infer.tile's
    for k, band in enumerate(names):
        x = gap + k * (84 + gap)
        np.testing.assert_array_equal(strip[gap + 84:gap + 84 + CAPTION_PX, x:x + 84], band)


def test_clients_cannot_change_what_is_served(stack, files):
    anonymous = Triton(admin_key="")
    with pytest.raises(ServingError, match="GENAUG_TRITON_ADMIN_KEY"):
        anonymous.unload(CLF)
    wrong = Triton(admin_key="not-the-key")
    with pytest.raises(ServingError):
        wrong.unload(CLF)
    assert Triton().ready(CLF)


def test_top_classes_of_image_arrays_are_the_served_softmax_with_class_names(stack, files):
    """What the classifier notebook shows: per image the most probable classes, by name, with
    probabilities that are the softmax of the served logits over every class."""
    x, _ = files["test"]
    triton = Triton()
    if not triton.ready(CLF):  # run alone, without the lifecycle test that serves it
        promote(_clf_candidate(files["good"], files), promotion_store(), triton, margin=0.0, floor=0.0)
    logits = triton.classify(CLF, x[:5]).astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    ranked = infer.top_classes(CLF, x[:5], top=3, triton=triton)
    assert len(ranked) == 5
    for row, p in zip(ranked, probs):
        best = np.argsort(-p)[:3]
        assert [name for name, _ in row] == [SPEC.classes[k] for k in best]
        np.testing.assert_allclose([q for _, q in row], p[best], rtol=1e-5)
    with pytest.raises(ValueError, match=r"takes uint8 images \[B, 1, 28, 28\], not uint8 \[2, 1, 32, 32\]"):
        infer.top_classes(CLF, np.zeros((2, 1, 32, 32), np.uint8), triton=triton)


def test_concurrent_promotion_is_locked_out(stack, files):
    from genaug.serving.ledger import LockedError

    store = promotion_store()
    ledger = Ledger(store)
    lease = ledger.acquire(CLF, "another-run")
    try:
        with pytest.raises(LockedError, match="another-run"):
            promote(_clf_candidate(files["good"], files), store, Triton(), margin=0.0, floor=0.0)
    finally:
        lease.release()
    assert ledger.holder(CLF) is None
