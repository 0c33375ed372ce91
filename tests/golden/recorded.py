"""Recorded behaviour that a refactor must keep: a smoke run's summary.json and the compiled
pipelines' parameters, recorded before issue 19's configuration refactor (the summary
re-recorded after it for its four meant changes: the resolved ``config``, None instead of the
sampler settings' -1/0 stand-ins, ``resolve_config`` for ``validate_params``, and no
``profile`` inside ``generator_metrics``; and after issue 20 for three: ``data_version`` the
built-in dataset's registry version id instead of a file fingerprint, ``data_source`` naming
that version, and the new ``config.data.source``; the data's hash stayed the same; and after
issue 21 for its new keys only, every recorded value kept: the parameters ``resolution``,
``synth``, ``synth_target``, ``gate_metric`` and their places in ``config``, the profile's
``config.data.max_resolution``, ``balanced_accuracy_*``, ``f1_per_class``,
``recall_per_class`` and each promotion's ``metric``; and after issue 21's DCGAN change (an
auxiliary classifier in its objective, per-class batch norm in G), re-recorded whole: only
values that depend on the generator moved beyond the tolerances, ``cas``, ``kid``,
three classes' ``per_class_fid``, ``accuracy_delta`` and ``macro_f1_augmented``); and after
issue 26 for its new keys only, every recorded value kept: ``config.metrics.msssim_pairs`` and
``likeness_images``, and ``generator_metrics``' ``msssim_*``, ``per_class_msssim``,
``likeness_*`` and ``per_class_likeness``, added by hand from the smoke profile's steps called
directly on the same Fashion-MNIST (prepare_data, train_generator dcgan seed 0,
evaluate_generator; its FID 7.469 against the recorded 7.427), the stack not being at hand;
and ``generator_metrics``' ``generator_seed`` (the seed the generator trained with, 0), which
the experiment's GEN_SEEDS needs; and after issue 27 for its new keys only, every recorded
value kept: ``config.classifier.int8_calibration``, ``classifier_int8`` (how the INT8 file
was calibrated, and its census), ``onnx_paths``' ``classifier_int8`` and
``promotions.classifier_int8``, whose keys alone are compared (INT8_DECIDED_BY_NOISE); and,
added by hand (smoke has early stopping off), the parameter ``gan_early_stop`` (0),
``config.gan``'s ``early_stop`` (false), ``early_stop_every``, ``early_stop_patience`` and
``early_stop_samples`` (the smoke profile's), and ``generator_early_stop`` (null), with the
new parameter ``gan_early_stop`` of both compiled pipelines re-recorded.

    python -m tests.golden.recorded summary RUN_DIR/summary.json   re-record the summary
    python -m tests.golden.recorded parameters                     re-record the parameters

Re-record only for a change of behaviour that is meant, and say so in the commit.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
# The run parameters at the top of summary.json: compared exactly, even where they are floats.
PARAMETER_KEYS = {"dataset", "generator", "classifier", "profile", "seed", "ratio", "margin", "floor", "fraction",
                  "sample_steps", "eta", "guidance", "data_version"}
SUMMARY = HERE / "smoke_summary.json"
PARAMETERS = HERE / "pipeline_parameters.json"

# What differs between two runs of the same code: where files went, which ids the servers
# handed out, and how long things took. Only their keys are compared.
RUN_SPECIFIC = {"artifacts", "onnx_paths", "pages", "run_dir", "mlflow_parent_run_id", "mlflow_run_url",
                "pipeline_run_id", "pipeline_wall_seconds", "step_seconds"}
# Inside the generator metrics: the checkpoint file's hash (its bytes hold the training time).
GENERATOR_RUN_SPECIFIC = {"generator_sha256"}
# Registry and repository version numbers depend on what the stack served before the run.
PROMOTION_RUN_SPECIFIC = {"version", "mlflow_version", "champion_version_before", "champion_version_after",
                          "served_version"}
# The INT8 classifier's decision rests on a gap of a few test images against a tolerance of
# half a point (two smoke runs of one commit: -0.004 and +0.002), so float noise may flip it;
# only its keys are compared here, and tests/e2e checks the decision against its own figures.
INT8_DECIDED_BY_NOISE = {"classifier_int8"}


def comparable_summary(summary: dict) -> dict:
    """``summary`` with run-specific values replaced by their keys (or by None)."""
    out = {}
    for key, value in summary.items():
        if key in RUN_SPECIFIC:
            out[key] = sorted(value) if isinstance(value, dict) else None
        elif key == "generator_metrics" and isinstance(value, dict):
            out[key] = {k: (None if k in GENERATOR_RUN_SPECIFIC else v) for k, v in value.items()}
        elif key == "promotions":
            out[key] = {role: (sorted(d) if role in INT8_DECIDED_BY_NOISE else
                               {k: (None if k in PROMOTION_RUN_SPECIFIC else v) for k, v in d.items()})
                        for role, d in value.items()}
        else:
            out[key] = value
    return out


# Measured values move a little between runs of the same code: the local runner re-shares
# the cores as tasks start and end, and a different thread count sums floats in another
# order. Four test sessions' first smoke runs differed by up to 0.008 in accuracy and 3e-4
# relative in FID; a behaviour change moves them by far more. Everything else (parameters,
# counts, names, decisions, hashes of the data) must be equal.
MEASURED_ABS, MEASURED_REL = 0.02, 0.05
# The smoke run's CAS is a classifier trained on 30-step GAN samples, at chance level, where
# that noise flips whole test images: three fresh runs of one commit gave 0.100, 0.108 and 0.134.
NEAR_CHANCE = {"/cas": 0.05}
# A class's F1 or recall rests on its 50 test images: the 4 images that an accuracy move of
# 0.008 flips can all be one class's, moving its F1 or recall by up to about 0.08.
PER_CLASS = (("/f1_per_class/", "/recall_per_class/"), 0.1)
DECIMAL = re.compile(r"(\d+\.\d+)")


def differences(got, want, path: str = "") -> list[str]:
    """Where ``got`` differs from ``want`` (both as comparable_summary returns them)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}/{k}: missing" for k in want if k not in got]
        out += [f"{path}/{k}: not recorded" for k in got if k not in want]
        for k in want.keys() & got.keys():
            out += differences(got[k], want[k], f"{path}/{k}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in differences(g, w, f"{path}[{i}]")]
    parameter = path.count("/") == 1 and path[1:] in PARAMETER_KEYS
    tolerance = PER_CLASS[1] if path.startswith(PER_CLASS[0]) else NEAR_CHANCE.get(path, MEASURED_ABS)
    if got == want or not parameter and _close(got, want, tolerance):
        return []
    return [f"{path}: {got!r}, recorded {want!r}"]


def _close(got, want, absolute: float = MEASURED_ABS) -> bool:
    """Equal up to measurement noise: numbers within the tolerance; strings equal once the
    decimals in them (a decision's reason quotes the scores) are compared that way."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return abs(got - want) <= max(absolute, MEASURED_REL * abs(want))
    if isinstance(want, str) and isinstance(got, str):
        got_parts, want_parts = DECIMAL.split(got), DECIMAL.split(want)
        return (len(got_parts) == len(want_parts) and got_parts[::2] == want_parts[::2]
                and all(_close(float(g), float(w), absolute) for g, w in zip(got_parts[1::2], want_parts[1::2])))
    return False


def pipeline_parameters(compiled_dir: Path) -> dict:
    """{file: {parameter: {type, default, description}}} of every compiled pipeline."""
    import yaml

    out = {}
    for path in sorted(compiled_dir.glob("*.yaml")):
        spec = next(yaml.safe_load_all(path.read_text()))
        params = spec["root"]["inputDefinitions"]["parameters"]
        out[path.name] = {name: {k: p.get(k) for k in ("parameterType", "defaultValue", "description",
                                                       "isOptional")}
                          for name, p in sorted(params.items())}
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["summary"] and len(argv) == 2:
        SUMMARY.write_text(json.dumps(comparable_summary(json.loads(Path(argv[1]).read_text())), indent=1,
                                      sort_keys=True) + "\n")
        return 0
    if argv == ["parameters"]:
        import tempfile

        from pipelines.compile import compile_all

        with tempfile.TemporaryDirectory() as tmp:
            compile_all(Path(tmp))
            PARAMETERS.write_text(json.dumps(pipeline_parameters(Path(tmp)), indent=1, sort_keys=True) + "\n")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
