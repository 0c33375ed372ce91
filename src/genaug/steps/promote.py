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
from genaug.store import promotion_store
from genaug.train.classifier import predict

# ONNX vs PyTorch at export, and Triton vs onnxruntime when served.
CLASSIFIER_TOLERANCE = 1e-3  # logits
GENERATOR_TOLERANCE = 1.0    # uint8 levels: rounding at .5 may flip one level
# A run that meets another promotion of the same model (a manual rollback, an overlapping
# scheduled run) waits for it rather than failing; a dead holder's lease expires sooner.
LOCK_WAIT_S = 900.0


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
    store, triton = promotion_store(), Triton()
    result = {}
    for role, cand in candidates.items():
        decision = run_promotion(cand, store, triton, margin, floor, lock_wait_s=LOCK_WAIT_S)
        result[role] = {k: decision.get(k) for k in ("model", "decision", "reason", "version", "mlflow_version",
                                                      "champion_version_before", "champion_version_after")}
        result[role]["served_version"] = decision.get("champion_version_after")
        result[role]["candidate_score"] = decision.get("gate", {}).get("candidate")
        result[role]["champion_score"] = decision.get("gate", {}).get("champion")
        tracking.log_metrics({f"{role}_{cand.metric}": decision.get("gate", {}).get("candidate", float("nan")),
                              f"{role}_promoted": float(decision["decision"] == "promoted")})
        tracking.log_dict(decision, f"promotion/{role}.json")
        print(f"[genaug] promote {cand.name}: {decision['decision']} ({decision.get('reason')})", flush=True)
    if parent_run_id:
        # On the parent run, so the runs table in the MLflow UI shows what each run changed.
        tracking.set_parent_tags(parent_run_id, {f"genaug.promotion.{role}": verdict_line(d)
                                                 for role, d in result.items()})
    return result


def verdict_line(d: dict) -> str:
    """'promoted v4' or 'rejected; champion v3 keeps serving (...)': one model's outcome."""
    before, after = d.get("champion_version_before"), d.get("served_version")
    if d["decision"] == "promoted":
        return f"promoted v{after} (replaces {'v' + str(before) if before else 'nothing'}; {d.get('reason')})"
    serving = f"champion v{after} keeps serving" if after else "nothing is served"
    return f"{d['decision']}; {serving} ({d.get('reason')})"


def verdict_markdown(result: dict) -> str:
    """The promotion decisions as a Markdown table, for the KFP run view."""
    def score(value):
        return "-" if value is None else f"{value:.4f}"

    lines = ["| model | decision | candidate | champion | serving | reason |", "|---|---|---|---|---|---|"]
    for d in result.values():
        serving = f"v{d['served_version']}" if d.get("served_version") else "nothing"
        reason = str(d.get("reason", "")).replace("|", "/")
        lines.append(f"| {d['model']} | **{d['decision']}** | {score(d.get('candidate_score'))} | "
                     f"{score(d.get('champion_score'))} | {serving} | {reason} |")
    kept = [d["model"] for d in result.values() if d["decision"] != "promoted" and d.get("served_version")]
    if kept:
        lines += ["", f"No better than the champion: {', '.join(kept)} keep serving the previous version."]
    return "\n".join(lines) + "\n"
