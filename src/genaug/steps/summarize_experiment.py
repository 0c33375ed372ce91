"""Last step of the experiment: the table that answers the question, in MLflow and the KFP UI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from genaug.atomic import atomic_path
from genaug.experiment import stats, table
from genaug.experiment.table import generator_line
from genaug.services import tracking


def _metric_key(row: dict, what: str) -> str:
    return f"{what}/{row['classifier']}/f{row['fraction']:g}/r{row['ratio']:g}"


def _seed(value) -> int:
    """An arm's generator seed (results and metrics recorded before GEN_SEEDS: 0)."""
    return 0 if value is None else int(value)


def _arm(arm: dict) -> str:
    return f"f{arm['fraction']:g}/g{_seed(arm.get('generator_seed'))}"


def summarize_experiment(params: dict, results: list, generators: list, out_path: str,
                         markdown_path: str = "", parent_run_id: str = "") -> dict:
    """Write ``out_path`` (the experiment's summary.json): the parameters, every configuration's result,
    the table (see genaug.experiment.stats.table), each arm's generator metrics with its
    CAS; log them to the MLflow parent run and close it. Returns the same dict."""
    t0 = time.perf_counter()
    results = sorted(results, key=lambda r: (r["variant"], r["classifier"], r["fraction"], r["ratio"], r["seed"]))
    rows = stats.table(results)
    cas = {(float(r["fraction"]), _seed(r.get("generator_seed"))): r for r in results if r["variant"] == "synthetic"}
    arms = []
    for g in sorted(generators, key=lambda g: (g["fraction"], _seed(g.get("generator_seed")))):
        c = cas.get((float(g["fraction"]), _seed(g.get("generator_seed"))))
        arms.append({**g, "cas": c["accuracy"] if c else None, "cas_mlflow_run_id": c.get("mlflow_run_id") if c else None})
    summary = {"params": {k: v for k, v in params.items() if k != "configs"}, "table": rows, "generators": arms,
               "results": results, "mlflow_parent_run_id": parent_run_id or None}
    text = render(summary)
    summary["text"] = text
    if parent_run_id:
        summary["mlflow_run_url"] = tracking.run_url(parent_run_id)
        metrics = {}
        for row in rows:
            metrics[_metric_key(row, "acc_mean")] = row["accuracy_mean"]
            if "delta_mean" in row:
                metrics[_metric_key(row, "delta_mean")] = row["delta_mean"]
                metrics[_metric_key(row, "generator_spread")] = row.get("generator_spread")
        for arm in arms:
            for mode, v in arm["fid"].items():
                metrics[f"fid_{mode}/{_arm(arm)}"] = v
            for k in ("kid", "precision", "recall", "msssim_generated", "msssim_real", "likeness_score", "cas"):
                metrics[f"{k}/{_arm(arm)}"] = arm.get(k)
        tracking.log_to(parent_run_id, text, "experiment_table.txt")
        tracking.log_to(parent_run_id, summary, "experiment.json")
        tracking.finish_pipeline_run(parent_run_id, "FINISHED",
                                     {k: v for k, v in metrics.items() if v is not None},
                                     settings=summary["params"])
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2))
    if markdown_path:
        with atomic_path(markdown_path) as tmp:
            Path(tmp).write_text(markdown(summary), encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def _generator_lines(summary: dict) -> list[str]:
    lines = []
    for arm in summary["generators"]:
        cas = "n/a" if arm.get("cas") is None else f"{arm['cas']:.4f}"
        lines.append(f"  fraction {arm['fraction']:g}, generator seed {_seed(arm.get('generator_seed'))}: "
                     f"{generator_line(arm)}, CAS {cas}")
    return lines


def render(summary: dict) -> str:
    """The experiment's answer as plain text: the table, then the generator per arm."""
    p = summary["params"]
    head = (f"genaug experiment: dataset={p['dataset']} generator={p['generator']} profile={p['profile']} "
            f"seeds={p['seeds']} generator_seeds={p.get('generator_seeds', [0])} "
            f"filter_threshold={p['filter_threshold']}")
    return "\n".join([head, "", table.text(summary["table"]), "",
                      "  " + table.INTERVAL_NOTE, "",
                      f"generator ({p['generator']}, one per fraction and generator seed, trained on that "
                      "fraction only):",
                      *_generator_lines(summary)])


def markdown(summary: dict) -> str:
    p = summary["params"]
    return "\n".join([f"## {p['generator']} on {p['dataset']} ({p['profile']})", "",
                      table.markdown(summary["table"]), "",
                      "Δ: accuracy minus real-only accuracy of the same classifier, fraction and seed. "
                      + table.INTERVAL_NOTE + ".", "",
                      "### Generator, per fraction and generator seed", "", *[f"-{line[1:]}" for line in _generator_lines(summary)]])
