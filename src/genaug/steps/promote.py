"""Promote the run's generator or its classifier to Triton, through the gates."""

from __future__ import annotations

import json
from pathlib import Path

from genaug import accel as accel_mod
from genaug import catalog, checkpoint
from genaug.data import imageset
from genaug.params import load_options
from genaug.sections import PromotionConfig
from genaug.services import tracking
from genaug.services.store import promotion_store
from genaug.services.triton import Triton
from genaug.serving import scoring
from genaug.serving.int8 import int8_candidate
from genaug.serving.promote import Candidate, promote as run_promotion
from genaug.serving.repository import classifier_model_name, generator_model_name, labels_bytes, render_config
from genaug.serving.scoring import CLASSIFIER_TOLERANCE, GENERATOR_TOLERANCE
from genaug.steps.timing import timed_step
from genaug.train.classifier import predict

# A run that meets another promotion of the same model (a manual rollback, an overlapping
# scheduled run) waits for it rather than failing; a dead holder's lease expires sooner.
LOCK_WAIT_S = 900.0


ROLES = ("generator", "classifier")


@timed_step(run_name=lambda args: f"promote_{args['role']}")
def promote(role: str, data_path: str, onnx_path: str, export: dict, classifier_real_path: str = "",
            pipeline_run_id: str = "", parent_run_id: str = "", int8_onnx_path: str = "", *,
            promotion: PromotionConfig) -> dict:
    """Promote the run's generator or classifier (``role``) if its gates pass; return
    {role: decision}, and for a classifier with ``int8_onnx_path`` also {"classifier_int8":
    decision}: its INT8 file, promoted as ``<dataset>-classifier-int8`` when the FP32 one was
    and it keeps the FP32 test accuracy within genaug.serving.gates.INT8_TOLERANCE.

    One task per model, so the generator's promotion runs as soon as it is exported and the
    classifier trained on real data (its judge) is ready, not after the other classifiers.
    export: what export_generator or export_classifier returned (parity, MLflow artifact URI).
    Classifiers are gated on the test split's ``promotion.metric`` (accuracy, macro-F1 or
    balanced accuracy); generators on label fidelity, judged by the
    classifier trained on real data only (``classifier_real_path``). Champions are re-scored
    on the same test split or the same noise. promotion: the gates (margin over the champion,
    floor).
    """
    promotion = PromotionConfig.coerce(promotion)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "generator" and not classifier_real_path:
        raise ValueError("promoting a generator needs classifier_real_path, the classifier trained on real "
                         "data that judges its label fidelity")
    if role == "generator":  # only the data's identity; the judge brings its own training
        arrays, data_meta = None, imageset.read_meta(data_path, "prepared dataset")
    else:
        arrays, data_meta = imageset.load(data_path, "prepared dataset")
    spec = catalog.dataset_spec(data_meta["dataset"], data_meta)
    meta = export[role]
    lineage = {"pipeline_run_id": pipeline_run_id, "mlflow_parent_run_id": parent_run_id,
               "mlflow_run_id": export.get("mlflow_run_id"), "data_hash": data_meta["content_hash"],
               "dataset": spec.name, "data_version": data_meta.get("data_version") or None}
    cand = (_generator(spec, Path(onnx_path), meta, lineage, classifier_real_path) if role == "generator"
            else _classifier(spec, Path(onnx_path), meta, lineage, arrays, promotion.metric))
    store, triton = promotion_store(), Triton()
    decision = run_promotion(cand, store, triton, promotion.margin, promotion.floor, lock_wait_s=LOCK_WAIT_S)
    results = {role: _recorded(role, cand, decision, parent_run_id)}
    if role == "classifier" and int8_onnx_path:
        int8 = _classifier_int8(spec, cand, decision, Path(int8_onnx_path), export.get("classifier_int8", {}), arrays)
        results["classifier_int8"] = _recorded(
            "classifier_int8", int8, run_promotion(int8, store, triton, promotion.margin, promotion.floor,
                                                   lock_wait_s=LOCK_WAIT_S), parent_run_id)
    return results


def _recorded(role: str, cand: Candidate, decision: dict, parent_run_id: str) -> dict:
    """The step's record of one model's decision, logged to MLflow and printed."""
    result = {k: decision.get(k) for k in ("model", "decision", "reason", "version", "mlflow_version",
                                           "champion_version_before", "champion_version_after")}
    result["served_version"] = decision.get("champion_version_after")
    result["metric"] = cand.metric  # what the gate compared (GATE_METRIC for a classifier)
    result["candidate_score"] = decision.get("gate", {}).get("candidate")
    result["champion_score"] = decision.get("gate", {}).get("champion")
    if decision.get("gate", {}).get("reference"):  # the INT8 gate's FP32 figures
        result["reference"] = decision["gate"]["reference"]
    tracking.log_metrics({f"{role}_{cand.metric}": decision.get("gate", {}).get("candidate", float("nan")),
                          f"{role}_promoted": float(decision["decision"] == "promoted")})
    tracking.log_dict(decision, f"promotion/{role}.json")
    print(f"[genaug] promote {cand.name}: {decision['decision']} ({decision.get('reason')})", flush=True)
    if parent_run_id:
        # On the parent run, so the runs table in the MLflow UI shows what each run changed.
        tracking.set_parent_tags(parent_run_id, {f"genaug.promotion.{role}": verdict_line(result)})
    return result


def promote_task(role: str, data, onnx, export, options, pipeline_run_id: str, parent_run_id: str, decisions,
                 verdict, classifier_real=None, int8_onnx=None) -> dict:
    """The body of the promote_generator and promote_classifier components: ``promote`` on
    the paths of KFP artifacts (objects with .path and .metadata) with the run's promotion
    section (from ``options``, run_options.json), its decisions written to ``decisions`` (JSON
    and metadata) and ``verdict`` (Markdown for the run view). int8_onnx: the classifier's
    INT8 file, promoted after it."""
    with open(export.path) as f:
        export_meta = json.load(f)
    meta = promote(role, data.path, onnx.path, export_meta,
                   classifier_real_path=classifier_real.path if classifier_real is not None else "",
                   pipeline_run_id=pipeline_run_id, parent_run_id=parent_run_id,
                   int8_onnx_path=int8_onnx.path if int8_onnx is not None else "",
                   promotion=load_options(options.path).promotion)
    decisions.metadata.update(meta)
    with open(decisions.path, "w") as f:
        json.dump(meta, f)
    with open(verdict.path, "w") as f:
        # Only the decisions: the step's metadata also holds its seconds and MLflow run id.
        f.write(verdict_markdown({k: v for k, v in meta.items() if isinstance(v, dict) and "decision" in v}))
    return meta


def _generator(spec, onnx_path: Path, meta: dict, lineage: dict, judge_path: str) -> Candidate:
    judge, _ = checkpoint.load(judge_path, "classifier")
    acc = accel_mod.pick()
    judge = acc.prepare(judge)
    name = generator_model_name(spec, meta["generator"])
    noise_dims = scoring.noise_dims(onnx_path)
    return Candidate(
        name=name, kind="generator", onnx_path=onnx_path,
        render_config=lambda v: render_config("generator", name, v, spec, noise_dims=noise_dims),
        metric="label_fidelity", score=scoring.label_fidelity(lambda x: predict(judge, x, acc), spec.num_classes),
        probe=scoring.generator_probe(spec.num_classes), probe_tolerance=GENERATOR_TOLERANCE,
        parity=float(meta["max_abs_diff"]), parity_tolerance=GENERATOR_TOLERANCE,
        lineage={**lineage, "generator": meta["generator"]}, mlflow_source=meta.get("artifact_uri"))


def _classifier(spec, onnx_path: Path, meta: dict, lineage: dict, arrays: dict, metric: str) -> Candidate:
    name = classifier_model_name(spec)
    return Candidate(
        name=name, kind="classifier", onnx_path=onnx_path,
        render_config=lambda v: render_config("classifier", name, v, spec),
        metric=f"test_{metric}", score=scoring.classifier_score(arrays["x_test"], arrays["y_test"], metric,
                                                                spec.num_classes),
        probe=scoring.classifier_probe(arrays["x_test"][:8]), probe_tolerance=CLASSIFIER_TOLERANCE,
        parity=float(meta["max_abs_diff"]), parity_tolerance=CLASSIFIER_TOLERANCE,
        lineage={**lineage, "variant": meta.get("variant")}, mlflow_source=meta.get("artifact_uri"),
        files={"labels.txt": labels_bytes(spec.classes)})


def _classifier_int8(spec, fp32: Candidate, fp32_decision: dict, onnx_path: Path, meta: dict,
                     arrays: dict) -> Candidate:
    name = classifier_model_name(spec, "int8")
    return int8_candidate(
        fp32, fp32_decision, name, onnx_path,
        render_config=lambda v: render_config("classifier", name, v, spec, precision="int8"),
        accuracy=scoring.classifier_score(arrays["x_test"], arrays["y_test"], "accuracy", spec.num_classes),
        mlflow_source=meta.get("artifact_uri"))


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
