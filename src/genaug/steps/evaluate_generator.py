"""How close the generator's images are to the real ones: FID, KID,
precision/recall, per-class FID and, when the network has logits, the Inception Score; and,
in pixel space without any network, how diverse each class is (mean MS-SSIM of same-class
pairs, generated against real) and the Likeness Score, per class and overall."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from genaug import accel, catalog, generators
from genaug.atomic import atomic_path
from genaug.data import imageset
from genaug.data.decoded import reference_data
from genaug.metrics import feature_net, generative, html, likeness, msssim, plots
from genaug.metrics.features import extract
from genaug.metrics.reference import reference
from genaug.sections import MetricsConfig
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps import figures
from genaug.steps.timing import timed_step

PR_K = 3  # neighbours for improved precision/recall (Kynkäänniemi et al.'s default)
# Noise seed of the measured images: its own stream, so they are neither the synthetic
# set's images nor those of training-time grids, and every generator is measured alike.
METRICS_SEED = 2_000_003


def _unavailable(reason: str, n: int, n_generated: int, modes) -> dict:
    return {"network": None, "reason": reason, "n_generated": n_generated, "n_reference": n, "reference_split": "train",
            "fid": {m: None for m in modes}, "kid": None, "precision": None, "recall": None,
            "inception_score": None, "inception_score_std": None, "inception_score_reason": reason,
            "per_class_fid": None}


@timed_step
def evaluate_generator(data_path: str, generator_path: str, out_path: str, html_path: str = "",
                       parent_run_id: str = "", *, metrics: MetricsConfig) -> dict:
    """Measure a trained generator against the real training split.

    Draws ``metrics.fid_samples`` images from the generator (N / K per class, fixed noise
    seed) whatever the augmentation ratio, so that FIDs of every run and arm rest on the same
    count, and uses the section's FID modes and feature network. Returns and writes (JSON
    at ``out_path``) ``fid`` {mode: value}, ``kid``, ``precision``, ``recall`` (k=3),
    ``per_class_fid`` {class: value},
    ``inception_score`` (+ ``_std``) or null with ``inception_score_reason``, and what
    each was computed on: ``n_generated``, ``n_reference``, ``reference_split``,
    ``network``, ``reference_keys``. Without a feature network every feature metric is null
    and ``reason`` says why; nothing is made up.

    With or without one, on the same generated images and the real training split: the mean
    MS-SSIM of ``metrics.msssim_pairs`` seeded same-class pairs (genaug.metrics.msssim:
    ``msssim_generated``, ``msssim_real``, ``per_class_msssim``, ``msssim_setting``,
    ``msssim_reason``) and the Likeness Score on ``metrics.likeness_images`` seeded images of
    each class (genaug.metrics.likeness: ``likeness_score``, ``per_class_likeness``,
    ``likeness_setting``, ``likeness_reason``).
    """
    data_meta = imageset.read_meta(data_path, "prepared dataset")
    module, ckpt = generators.load(generator_path)
    spec, metrics = catalog.dataset_spec(data_meta["dataset"], data_meta), MetricsConfig.coerce(metrics)
    if ckpt["meta"]["dataset"] != spec.name:
        raise ValueError(f"the generator was trained on {ckpt['meta']['dataset']!r} but the real data is "
                         f"{spec.name!r}; measure a generator trained on {spec.name}")
    store = optional_store()
    acc = accel.pick()
    net, origin = feature_net.for_profile(metrics.fid_network, store, acc.device)
    _, raw = reference_data(spec.name, data_meta.get("data_version") or "latest", store, side=spec.height)
    fake_y = np.repeat(np.arange(spec.num_classes, dtype=np.int64), metrics.fid_samples // spec.num_classes)
    fake_x = generators.sample(module, fake_y, generators.accel_for(ckpt["meta"]["family"], acc), METRICS_SEED,
                               progress="generate for metrics", fast=len(fake_y) >= generators.FAST_FROM)
    if net is None:
        print(f"[genaug] feature metrics unavailable: {origin}", file=sys.stderr, flush=True)
        result = _unavailable(origin, metrics.fid_samples, len(fake_y), metrics.fid_modes)
    else:
        result = {"network": net.describe(), "network_note": origin, "n_generated": int(len(fake_y)),
                  "reference_split": "train", "fid": {}, "reference_keys": {}, "kid": None}
        for mode in metrics.fid_modes:
            ref = reference(spec, raw, metrics.fid_samples, mode, net, store)
            fake, probs = extract(fake_x, net, mode, probabilities=net.has_logits and mode == "clean",
                                  desc=f"FID generated ({mode})")
            result["fid"][mode] = generative.frechet_distance(generative.Gaussian.of(fake),
                                                              generative.Gaussian.of(ref.feats))
            result["reference_keys"][mode] = ref.key
            result["n_reference"] = int(len(ref.labels))
            if mode != "clean":
                continue
            result["kid"] = generative.kid(fake, ref.feats)
            result["precision"], result["recall"] = generative.precision_recall(fake, ref.feats, PR_K)
            result["per_class_fid"] = dict(zip(spec.classes, generative.per_class_fid(
                fake, fake_y, ref.feats, ref.labels, spec.num_classes)))
            if probs is not None:
                result["inception_score"], result["inception_score_std"] = generative.inception_score(probs)
                result["inception_score_reason"] = None
            else:
                result["inception_score"] = result["inception_score_std"] = None
                result["inception_score_reason"] = (f"{net.name} has no logits layer; the Inception Score "
                                                    f"needs NVlabs' {feature_net.NVLABS_FILE}")
        result["precision_recall_note"] = (f"improved precision/recall (Kynkaenniemi et al. 2019), k={PR_K}, on "
                                           f"{net.name} features (the paper's VGG-16 weights are not used)")
        if not net.is_inception:
            result["network_note"] = "stand-in network: these values rank sets but match nothing published"
    result["generator_noise_seed"] = METRICS_SEED
    result.update(_diversity(fake_x, fake_y, raw, spec.classes, metrics))
    result.update({"dataset": spec.name, "generator": ckpt["arch"], "generator_seed": ckpt["meta"].get("seed"),
                   "fraction": float(data_meta.get("fraction", 1.0)), "n_train_real": int(data_meta["n_train"]),
                   "modes": list(metrics.fid_modes),
                   "generator_sha256": hashlib.sha256(Path(generator_path).read_bytes()).hexdigest()})
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2))
    _log(result)
    if html_path:
        _page(result, spec, html_path, fake_x, fake_y)
    return result


def _diversity(fake_x: np.ndarray, fake_y: np.ndarray, raw, classes: list[str], metrics: MetricsConfig) -> dict:
    """The pixel-space metrics: MS-SSIM diversity and the Likeness Score against the real train split."""
    real = (raw.train_x, raw.train_y)
    return {**msssim.per_class(fake_x, fake_y, *real, classes, metrics.msssim_pairs, METRICS_SEED),
            **likeness.per_class(fake_x, fake_y, *real, classes, metrics.likeness_images, METRICS_SEED)}


def _log(result: dict) -> None:
    metrics = {f"fid_{m}": v for m, v in result["fid"].items()}
    metrics.update({k: result.get(k) for k in ("kid", "precision", "recall", "inception_score", "msssim_generated",
                                                "msssim_real", "likeness_score")})
    for name in (result.get("per_class_fid") or result.get("per_class_likeness") or {}):
        key = name.replace("/", "-")  # MLflow reads '/' as a folder
        metrics[f"fid_class/{key}"] = (result.get("per_class_fid") or {}).get(name)
        metrics[f"likeness_class/{key}"] = (result.get("per_class_likeness") or {}).get(name)
        for kind, v in ((result.get("per_class_msssim") or {}).get(name) or {}).items():
            metrics[f"msssim_class/{key}/{kind}"] = v
    tracking.log_metrics({k: v for k, v in metrics.items() if v is not None})
    ms = result.get("msssim_setting") or {}
    tracking.log_params({"fid_network": (result["network"] or {}).get("name", "unavailable"),
                         "fid_n_generated": result["n_generated"], "fid_n_reference": result["n_reference"],
                         "fid_reference_split": result["reference_split"],
                         "msssim_setting": _setting_text(ms) if ms else result.get("msssim_reason"),
                         "likeness_images_per_class": (result.get("likeness_setting") or {}).get("images_per_class")})
    tracking.log_dict(result, "generator_metrics.json")


def _setting_text(ms: dict) -> str:
    """One line for an MS-SSIM setting (genaug.metrics.msssim.Setting.describe plus pairs and seed)."""
    return (f"{ms['side']} px: {ms['scales']} scales, {ms['window']}-pixel Gaussian window (sigma {ms['sigma']}), "
            f"betas {', '.join(map(str, ms['betas']))}; {ms['pairs_per_class']} pairs per class, seed {ms['seed']}")


def _fmt(v):
    return "unavailable" if v is None else v


def _per_class_rows(result: dict, classes: list[str]) -> list[dict]:
    """A row per class: FID, MS-SSIM of generated and of real pairs, and the Likeness Score."""
    fid, ls = result.get("per_class_fid") or {}, result.get("per_class_likeness") or {}
    ms = result.get("per_class_msssim") or {}
    return [{"class": name, "FID": _fmt(fid.get(name)), "MS-SSIM generated": _fmt(ms.get(name, {}).get("generated")),
             "MS-SSIM real": _fmt(ms.get(name, {}).get("real")), "Likeness Score": _fmt(ls.get(name))}
            for name in classes]


def _page(result: dict, spec, html_path: str, images=None, labels=None) -> None:
    rows = [{"metric": f"FID ({m})", "value": _fmt(v)} for m, v in result["fid"].items()]
    rows += [{"metric": name, "value": _fmt(result.get(key))} for name, key in (
        ("KID", "kid"), ("precision (k=3)", "precision"), ("recall (k=3)", "recall"),
        ("Inception Score", "inception_score"),
        ("MS-SSIM generated (mean over classes; lower is more diverse)", "msssim_generated"),
        ("MS-SSIM real (as many pairs, real training split)", "msssim_real"),
        ("Likeness Score (1: cannot be told apart from real)", "likeness_score"))]
    rows += [{"metric": "measured on", "value": f"{result['n_generated']} generated vs {result['n_reference']} "
              f"real ({result['reference_split']} split), {(result['network'] or {}).get('name', result.get('reason'))}"}]
    ms, ls = result.get("msssim_setting"), result.get("likeness_setting") or {}
    rows += [{"metric": "MS-SSIM setting", "value": _setting_text(ms) if ms else result.get("msssim_reason")},
             {"metric": "Likeness Score on", "value": result.get("likeness_reason") or
              f"{ls.get('images_per_class')} images per class and set (seed {ls.get('seed')}), pixel distances"}]
    parts = [("Generator metrics", html.table(rows)),
             ("Per class", html.table(_per_class_rows(result, spec.classes)))]
    with tempfile.TemporaryDirectory() as tmp:
        if result.get("per_class_msssim"):
            bars = Path(tmp) / "msssim.png"
            table = result["per_class_msssim"]
            plots.class_bars({kind: [table[c][kind] for c in spec.classes] for kind in ("generated", "real")},
                             spec.classes, bars, "mean MS-SSIM of same-class pairs",
                             "diversity per class: lower is more diverse; generated above real: collapse")
            parts.append(("MS-SSIM per class", bars))
        if images is not None:
            grid = Path(tmp) / "generated.png"
            plots.sample_grid(images, labels, spec.classes, grid, 10, "measured images (first 10 per class)")
            parts.append(("Generated samples", grid))
        figures.publish(html_path, f"evaluate_generator {spec.name}", parts)
