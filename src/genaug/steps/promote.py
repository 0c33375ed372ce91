"""Step 8: promote the generator and the classifier to Triton, through the gates."""

from __future__ import annotations

from pathlib import Path

from genaug import accel as accel_mod
from genaug import catalog, checkpoint, tracking
from genaug.data import imageset
from genaug.serving import scoring
from genaug.serving.client import Triton
from genaug.serving.promote import Candidate, promote as run_promotion
from genaug.serving.repository import classifier_model_name, generator_model_name, render_config
from genaug.steps.timing import timed_step
from genaug.store import Store
from genaug.train.classifier import predict

# ONNX vs PyTorch at export, and Triton vs onnxruntime when served.
CLASSIFIER_TOLERANCE = 1e-3  # logits
GENERATOR_TOLERANCE = 1.0    # uint8 levels: rounding at .5 may flip one level


@timed_step
def promote(data_path: str, classifier_real_path: str, generator_onnx_path: str, classifier_onnx_path: str,
            export: dict, margin: float = 0.0, floor: float = 0.2, pipeline_run_id: str = "",
            parent_run_id: str = "") -> dict:
    """Promote each model whose gates pass; return {"generator": decision, "classifier": decision}.

    export: the metadata export_onnx returned (parity per model, MLflow artifact URIs).
    Classifiers are gated on test accuracy; generators on label fidelity, judged by the
    classifier trained on real data only. Champions are re-scored on the same test split.
    """
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    spec = catalog.dataset(data_meta["dataset"])
    judge_model, _ = checkpoint.load(classifier_real_path, "classifier")
    acc = accel_mod.pick()
    judge_model = acc.prepare(judge_model)
    gen_meta, clf_meta = export["generator"], export["classifier"]
    lineage = {"pipeline_run_id": pipeline_run_id, "mlflow_parent_run_id": parent_run_id,
               "mlflow_run_id": export.get("mlflow_run_id"), "data_hash": data_meta["content_hash"],
               "dataset": spec.name}
    noise_dims = scoring.noise_dims(Path(generator_onnx_path))
    gen_name = generator_model_name(spec.name, gen_meta["generator"])
    clf_name = classifier_model_name(spec.name)
    candidates = {
        "generator": Candidate(
            name=gen_name, kind="generator", onnx_path=Path(generator_onnx_path),
            render_config=lambda v: render_config("generator", gen_name, v, spec, noise_dims=noise_dims),
            metric="label_fidelity",
            score=scoring.label_fidelity(lambda x: predict(judge_model, x, acc), spec.num_classes),
            probe=scoring.generator_probe(spec.num_classes), probe_tolerance=GENERATOR_TOLERANCE,
            parity=float(gen_meta["max_abs_diff"]), parity_tolerance=GENERATOR_TOLERANCE,
            lineage={**lineage, "generator": gen_meta["generator"]}, mlflow_source=gen_meta.get("artifact_uri")),
        "classifier": Candidate(
            name=clf_name, kind="classifier", onnx_path=Path(classifier_onnx_path),
            render_config=lambda v: render_config("classifier", clf_name, v, spec),
            metric="test_accuracy", score=scoring.classifier_accuracy(arrays["x_test"], arrays["y_test"]),
            probe=scoring.classifier_probe(arrays["x_test"][:8]), probe_tolerance=CLASSIFIER_TOLERANCE,
            parity=float(clf_meta["max_abs_diff"]), parity_tolerance=CLASSIFIER_TOLERANCE,
            lineage={**lineage, "variant": clf_meta.get("variant")}, mlflow_source=clf_meta.get("artifact_uri")),
    }
    store, triton = Store(), Triton()
    result = {}
    for role, cand in candidates.items():
        decision = run_promotion(cand, store, triton, margin, floor)
        result[role] = {k: decision.get(k) for k in ("model", "decision", "reason", "version", "mlflow_version",
                                                      "champion_version_before", "champion_version_after")}
        result[role]["served_version"] = decision.get("champion_version_after")
        result[role]["candidate_score"] = decision.get("gate", {}).get("candidate")
        result[role]["champion_score"] = decision.get("gate", {}).get("champion")
        tracking.log_metrics({f"{role}_{cand.metric}": decision.get("gate", {}).get("candidate", float("nan")),
                              f"{role}_promoted": float(decision["decision"] == "promoted")})
        tracking.log_dict(decision, f"promotion/{role}.json")
        print(f"[genaug] promote {cand.name}: {decision['decision']} ({decision.get('reason')})", flush=True)
    return result
