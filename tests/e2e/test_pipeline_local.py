"""End to end: the real pipeline through KFP's local runner, as ``make pipeline`` runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from genaug import checkpoint
from genaug.data.sources import DEBIAN_FASHION_MNIST
from genaug.export.onnx import ClassifierServing
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

REAL_DATA = DEBIAN_FASHION_MNIST.is_dir() or os.environ.get("GENAUG_DATA_DIR")


def _env(**extra):
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}", **extra}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    if not REAL_DATA:
        pytest.skip("real Fashion-MNIST is missing: run `make test` as root (it installs "
                    "dataset-fashion-mnist) or set GENAUG_DATA_DIR")
    runs = tmp_path_factory.mktemp("runs")
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--runs", str(runs)],
                          cwd=REPO, capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc, runs


def test_last_line_is_summary(smoke_run):
    proc, runs = smoke_run
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.name == "summary.json" and path.parent.parent == runs
    summary = json.loads(path.read_text())
    for key in ("dataset", "generator", "profile", "seed", "accuracy_real", "accuracy_augmented",
                "onnx_max_abs_diff", "onnx_paths", "step_seconds"):
        assert key in summary
    assert (summary["dataset"], summary["generator"], summary["profile"], summary["seed"]) == \
        ("fashion_mnist", "dcgan", "smoke", 0)
    # Real Fashion-MNIST, 1080 training images, 3 short epochs: well above 10% chance.
    assert summary["accuracy_real"] > 0.2 and summary["accuracy_augmented"] > 0.2
    assert "Debian" in summary["data_source"] or "GENAUG_DATA_DIR" in summary["data_source"]
    assert set(summary["step_seconds"]) >= {"prepare_data", "train_generator", "synthesize", "evaluate",
                                            "train_classifier_real", "train_classifier_augmented", "export_onnx"}
    assert "test accuracy" in proc.stdout and "real + synthetic" in proc.stdout


def test_onnx_files_match_pytorch(smoke_run):
    proc, _ = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    assert summary["onnx_max_abs_diff"]["classifier"] < 1e-4
    assert summary["onnx_max_abs_diff"]["generator"] <= 1.0
    # Independently of the pipeline's own check: rerun the exported classifier at batch 5.
    art = summary["artifacts"]
    chosen = art["classifier_" + summary["served_classifier_variant"]]
    model, _ = checkpoint.load(chosen, "classifier")
    images = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    with torch.no_grad():
        expected = ClassifierServing(model)(torch.from_numpy(images)).numpy()
    got = ort.InferenceSession(summary["onnx_paths"]["classifier"]).run(None, {"images": images})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    gen = ort.InferenceSession(summary["onnx_paths"]["generator"])
    assert [i.name for i in gen.get_inputs()] == ["labels", "noise"]
    assert gen.get_outputs()[0].name == "images"


def test_run_folder_holds_the_artifacts(smoke_run):
    proc, runs = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "run_options.json").read_text())["profile"] == "smoke"
    for path in summary["artifacts"].values():
        assert Path(path).is_file(), path
    pages = list(run_dir.glob("kfp/*/*/page")) + list(run_dir.glob("kfp/*/*/samples"))
    assert len(pages) == 2 and all("data:image/png" in p.read_text() for p in pages)
    ev = json.loads(Path(summary["artifacts"]["evaluation"]).read_text())
    assert np.array(ev["augmented"]["confusion_matrix"]).sum() == summary["n_test"]


def test_bad_generator_fails_before_any_work(tmp_path):
    # Through make: the stdlib check runs before the venv, servers or data are touched.
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", "GEN=nope", f"RUNS={tmp_path / 'runs'}"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown generator 'nope'; choose one of vanilla_gan, dcgan" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_parameter_stops_the_kfp_run_at_its_first_task(tmp_path):
    # As if submitted from the KFP UI: no local pre-check, only the pipeline's own first task.
    script = (
        "from kfp import local\n"
        "from pipelines.genaug_pipeline import genaug_pipeline\n"
        f"local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root={str(tmp_path)!r})\n"
        "genaug_pipeline(profile='smoke', ratio=42.0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, env=_env())
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ratio 42.0 is out of range" in log
    assert "Executing task 'prepare-data'" not in log.replace("\x1b[96m", "").replace("\x1b[0m", "")
    assert not list(tmp_path.glob("*/prepare-data"))
