"""One summary.json per run that answers the question, plus a printable table."""

from __future__ import annotations

import json
from pathlib import Path

from genaug.atomic import atomic_path
from genaug.experiment.table import generator_line
from genaug.services import tracking
from genaug.steps.timing import timed_step

STEP_ORDER = ("resolve_config", "start_tracking", "prepare_data", "train_generator", "synthesize",
              "train_classifier_real", "train_classifier_augmented", "train_classifier_synthetic", "evaluate",
              "evaluate_generator", "export_generator", "export_classifier", "promote_generator",
              "promote_classifier")
ROLES = ("generator", "classifier")
# The models the promote steps decide on: each role's, and the classifier's INT8 file.
PROMOTED = (*ROLES, "classifier_int8")
# The early-stopping record's counts and generator steps (EarlyStop.record and what the step
# adds), which come back from KFP's metadata as floats.
EARLY_STOP_COUNTS = ("every", "patience", "best_step", "stopped_at", "measurements", "samples", "n_reference")


def _per_class(evaluation: dict, measure: str) -> dict:
    """{"real"|"augmented": {class name: measure}} from the evaluate step's per-class report."""
    return {v: {name: m[measure] for name, m in evaluation[v]["per_class"].items()} for v in ("real", "augmented")}


@timed_step
def report(params: dict, steps: dict, artifacts: dict, out_path: str, config: dict | None = None) -> dict:
    """Write ``out_path`` (summary.json) from the run parameters and each step's metadata;
    log it to the MLflow parent run (when start_tracking ran) and close that run.

    params: the run parameters as resolved; config: the whole RunConfig (run_options.json),
    kept in the summary as ``config``. steps: step name -> the metadata it returned
    (with its ``seconds``). artifacts: artifact name -> local path or URI.
    """
    ev = steps["evaluate"]
    ex = {role: steps[f"export_{role}"][role] for role in ROLES}
    int8 = steps["export_classifier"].get("classifier_int8") or {}
    summary = {
        **params,
        "accuracy_real": ev["accuracy_real"],
        "accuracy_augmented": ev["accuracy_augmented"],
        "accuracy_delta": ev["accuracy_delta"],
        # Classification Accuracy Score: real test accuracy of a classifier trained on synthetic only.
        "cas": ev.get("cas"),
        # Share of the synthetic images the real-data classifier labels as generated; the
        # promotion gate re-measures it on the exported generator (promotions.generator).
        "label_fidelity": ev.get("label_fidelity"),
        "macro_f1_real": ev["real"]["macro_f1"],
        "macro_f1_augmented": ev["augmented"]["macro_f1"],
        # The mean per-class recall: accuracy as if every class were as common.
        "balanced_accuracy_real": ev["real"]["balanced_accuracy"],
        "balanced_accuracy_augmented": ev["augmented"]["balanced_accuracy"],
        "f1_per_class": _per_class(ev, "f1"),
        # A class's recall: its term in balanced accuracy (the mean of these over the classes).
        "recall_per_class": _per_class(ev, "recall"),
        # int(): counts that travelled through KFP metadata arrive as floats.
        "n_test": int(ev["n_test"]),
        "n_train_real": int(steps["train_classifier_augmented"]["n_train_real"]),
        "n_train_synthetic": int(steps["train_classifier_augmented"]["n_train_synthetic"]),
        "data_hash": steps["prepare_data"]["content_hash"],
        "data_source": steps["prepare_data"]["source"],
        "data_version": steps["prepare_data"].get("data_version"),
        "onnx_max_abs_diff": {"generator": ex["generator"]["max_abs_diff"],
                              "classifier": ex["classifier"]["max_abs_diff"]},
        "onnx_diff_units": {"generator": ex["generator"]["units"], "classifier": ex["classifier"]["units"]},
        "onnx_paths": {"generator": ex["generator"]["path"], "classifier": ex["classifier"]["path"],
                       **({"classifier_int8": int8["path"]} if int8 else {})},
        # The INT8 file: how it was calibrated and what in it is INT8 (its accuracy against the
        # FP32 file is promotion's figure: promotions.classifier_int8).
        "classifier_int8": {k: v for k, v in int8.items() if k not in ("path", "artifact_uri")} or None,
        "served_classifier_variant": ex["classifier"]["variant"],
        "generator_sampling": steps["train_generator"].get("sampling"),
        "generator_resumed_from_step": steps["train_generator"].get("resumed_from_step"),
        "generator_diversity_ratio": steps["train_generator"].get("diversity_ratio"),
        # GAN_EARLY_STOP=1: the generator step kept (the lowest FID), its FID and the curve; else None.
        "generator_early_stop": early_stop_summary(steps["train_generator"].get("early_stop")),
        # FID per mode, KID, precision/recall, per-class FID, IS, and what they were measured on.
        "generator_metrics": {k: v for k, v in steps.get("evaluate_generator", {}).items() if k != "seconds"} or None,
        "step_seconds": {name: steps[name]["seconds"] for name in STEP_ORDER if name in steps},
        "artifacts": artifacts,
        "config": config,
    }
    parent = steps.get("start_tracking", {}).get("parent_run_id")
    if parent:
        summary["mlflow_parent_run_id"] = parent
        summary["mlflow_run_url"] = tracking.run_url(parent)
        summary["pipeline_run_id"] = steps["start_tracking"].get("pipeline_run_id")
    if all(f"promote_{role}" in steps for role in ROLES):
        decided = {**steps["promote_generator"], **steps["promote_classifier"]}
        summary["promotions"] = {model: decided[model] for model in PROMOTED if model in decided}
    if parent:
        # prepare_data may come from KFP's cache, so the run's own step records its data.
        tracking.set_parent_tags(parent, {"genaug.data_hash": summary["data_hash"],
                                          "genaug.data_version": summary["data_version"]})
        tracking.finish_pipeline_run(parent, "FINISHED", summary, settings=params)
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2))
    return summary


def table(summary: dict) -> str:
    """The summary as aligned plain-text lines, for the end of ``make pipeline``."""
    d = summary
    lines = [
        f"genaug run: dataset={d['dataset']} generator={d['generator']} classifier={d['classifier']} "
        f"profile={d['profile']} seed={d['seed']} ratio={d['ratio']} fraction={d.get('fraction', 1.0)}",
        # Where the images came from: a local copy, the S3 cache, or a download by this run.
        f"  data version {d.get('data_version')}, from {d['data_source']}",
        "",
        f"  {'training data':<28}{'test accuracy':>14}{'macro F1':>10}{'balanced acc.':>15}",
        f"  {'real (' + str(d['n_train_real']) + ')':<28}{d['accuracy_real']:>14.4f}{d['macro_f1_real']:>10.4f}"
        f"{d['balanced_accuracy_real']:>15.4f}",
        f"  {'real + synthetic (+' + str(d['n_train_synthetic']) + ')':<28}"
        f"{d['accuracy_augmented']:>14.4f}{d['macro_f1_augmented']:>10.4f}{d['balanced_accuracy_augmented']:>15.4f}",
        f"  {'difference':<28}{d['accuracy_delta']:>+14.4f}",
        *([f"  {'synthetic only (CAS)':<28}{d['cas']:>14.4f}"] if d.get("cas") is not None else []),
        *([f"  {'synthetic label fidelity':<28}{d['label_fidelity']:>14.4f}"]
          if d.get("label_fidelity") is not None else []),
        "",
        *([f"  generator: {generator_line(d['generator_metrics'])}"] if d.get("generator_metrics") else []),
        *([f"  {early_stop_line(d['generator_early_stop'])}"] if d.get("generator_early_stop") else []),
        *([""] if d.get("generator_metrics") or d.get("generator_early_stop") else []),
        f"  ONNX parity (max |onnxruntime - torch|): generator {d['onnx_max_abs_diff']['generator']:g} "
        f"{d['onnx_diff_units']['generator']}, classifier {d['onnx_max_abs_diff']['classifier']:.3g} "
        f"{d['onnx_diff_units']['classifier']}",
        "",
        f"  {'step':<28}{'seconds':>10}",
    ]
    lines += [f"  {name:<28}{sec:>10.1f}" for name, sec in d["step_seconds"].items()]
    lines.append(f"  {'total of steps':<28}{sum(d['step_seconds'].values()):>10.1f}")
    for role, p in d.get("promotions", {}).items():
        served = f"serving v{p['served_version']}" if p.get("served_version") else "nothing served"
        lines.append(f"  promote {p['model']}: {p['decision']}, {served} ({p['reason']})")
    for name, path in d.get("pages", {}).items():
        lines.append(f"  page {name}: {path}")
    if d.get("mlflow_run_url"):
        lines.append(f"  MLflow run: {d['mlflow_run_url']}")
    return "\n".join(lines)


def early_stop_summary(record: dict | None) -> dict | None:
    """The train_generator step's early-stopping record with its counts and steps as ints
    again; None (early stopping off) stays None."""
    if record is None:
        return None
    counts = {k: int(record[k]) for k in EARLY_STOP_COUNTS if record.get(k) is not None}
    return {**record, **counts, "curve": {**record["curve"], "step": [int(s) for s in record["curve"]["step"]]}}


def early_stop_line(record: dict) -> str:
    """One line on the early-stopping decision (genaug.train.early_stop.EarlyStop.record)."""
    ended = (f"stopped at step {record['stopped_at']} after {record['patience']} measurements without improvement"
             if record.get("stopped_at") is not None else "trained every step")
    return (f"early stopping: kept generator step {record['best_step']} (FID {record['best_fid']:.4g} on "
            f"{record['samples']} fixed samples, {record['measurements']} measurements), {ended}")
