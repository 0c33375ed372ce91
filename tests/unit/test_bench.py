"""The benchmarks' own machinery, without timing anything: the GPU script runs end to end at
toy sizes where only torch and numpy exist, the idx reader reads the real format, the matched
networks really match, and a report writes its record. (Speed is measured by `make bench`,
never asserted in tests.)"""

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO
from tests.formats import write_idx_dataset

# What the GPU machine lacks; importing any of them there would fail.
BLOCKER = '''
import importlib.machinery, sys
BLOCKED = {"kfp", "mlflow", "diffusers", "torchvision", "tqdm", "minio", "tritonclient", "onnx", "onnxruntime",
           "onnxscript", "cleanfid", "matplotlib", "PIL"}
class Hiding(importlib.machinery.PathFinder):
    # As if not installed: find_spec says None, import raises ModuleNotFoundError.
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] in BLOCKED else super().find_spec(name, path, target)
sys.meta_path[:] = [Hiding if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
'''


def test_gpu_script_runs_every_part_with_torch_and_numpy_alone(tmp_path):
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    write_idx_dataset(tmp_path / "fmnist", n_train=200, n_test=50)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHONPATH": str(tmp_path / "blocker"),
           "PYTHON": sys.executable, "GENAUG_DEVICE": "cpu"}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--smoke", "--fmnist", str(tmp_path / "fmnist")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    record = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for part in ("checks", "training", "sampling", "fmnist_ddim", "ddp_scaling"):
        assert "error" not in record[part], record[part]
    assert all(c["ok"] for c in record["checks"].values()), record["checks"]
    assert record["training"]["unet_train_eager"]["images_per_s"] > 0
    assert set(record["sampling"]) == {"ddim3_eager", "ddim3_compiled"}
    assert set(record["ddp_scaling"]) == {"1_proc", "2_proc"} and record["ddp_scaling"]["2_proc"]["images_per_s"] > 0
    samples = np.load(tmp_path / "out" / "fmnist_ddim_samples.npz")
    assert samples["images"].shape == (100, 1, 28, 28) and samples["images"].dtype == np.uint8


def test_a_missing_dataset_is_reported_and_fails_the_script(tmp_path):
    # Two parts are enough to show that one part's failure leaves the others reporting; the
    # full list runs in the test above.
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "GENAUG_DEVICE": "cpu"}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--smoke", "--fmnist", str(tmp_path / "none"),
                           "--parts", "fmnist_ddim,checks"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    record = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert proc.returncode == 1 and "FMNIST_DIR" in record["fmnist_ddim"]["error"]
    assert "error" not in record["checks"]  # the other parts still report
    assert not {"training", "sampling", "ddp_scaling"} & set(record)  # the parts not asked for did not run


def test_an_unknown_part_is_refused_naming_the_parts(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_run", "--out", str(tmp_path), "--parts", "checks,sampels"],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "unknown part 'sampels'; choose from checks, training, sampling" in proc.stderr
    assert not (tmp_path / "gpu.json").exists()


def test_idx_reader_reads_the_real_format(tmp_path):
    from bench import idx

    written = write_idx_dataset(tmp_path, n_train=30, n_test=10)
    data = idx.load(tmp_path)
    assert data["train_x"].shape == (30, 1, 28, 28) and data["test_y"].dtype == np.int64
    np.testing.assert_array_equal(data["train_x"][:, 0], written["train"][0])
    np.testing.assert_array_equal(data["test_y"], written["t10k"][1])


def test_the_diffusion_benchmark_compares_networks_of_matched_size():
    from bench import unets

    size = unets.sizes(unets.pair("cpu"))
    assert size["matched"], size
    assert abs(size["params_ratio"] - 1) < 0.01  # the layouts agree almost parameter for parameter


def test_a_report_prints_the_ratio_last_and_writes_its_record(tmp_path, monkeypatch, capsys):
    from bench import harness

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    report = harness.Report("example", "a made-up comparison")
    report.figure("ours", 2.0, "s")
    record = report.done("reference / ours", 1.5, ">= 1.0x", True)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("   RATIO reference / ours: 1.50x (target >= 1.0x: met)")
    saved = json.loads((tmp_path / "example.json").read_text())
    assert saved == record and {"torch", "date", "cpu", "host"} <= set(saved["machine"])


def test_the_diversity_benchmark_runs_the_steps_metrics_and_judges_only_quick(tmp_path, monkeypatch):
    from bench import diversity, harness

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    record = diversity.main(["--profile", "smoke", "--feature-images", "4"])
    assert [f["unit"] for f in record["figures"]] == ["s", "s"] and all(f["value"] > 0 for f in record["figures"])
    assert record["ratio"]["met"] is None  # its target is stated for quick only
