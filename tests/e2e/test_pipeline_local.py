"""End to end: the real pipeline through KFP's local runner, as ``make pipeline`` runs it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from genaug import checkpoint
from genaug.export.onnx import ClassifierServing
from tests.conftest import REPO
from tests.smoke_fixture import pipeline_env as _env

pytestmark = pytest.mark.e2e

# The fixture smoke_run, the session's one smoke run: tests/smoke_fixture.py.


def test_a_folder_another_process_made_during_the_run_survives_it(smoke_run):
    proc, _ = smoke_run
    assert proc.bystander.name.startswith("tmp") and proc.bystander.is_dir(), proc.bystander
    proc.bystander.rmdir()


def test_the_terminal_shows_progress_and_the_log_file_the_detail(smoke_run):
    proc, runs = smoke_run
    shown = proc.stdout + proc.stderr
    assert "[genaug] step train_generator: finished in" in shown and "Got executor_input" not in shown
    (log,) = runs.glob("*/pipeline.log")
    assert "Got executor_input" in log.read_text() and "G step/s" not in log.read_text()
    assert len(shown.splitlines()) < 120, f"{len(shown.splitlines())} lines on the terminal"


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
    assert 0.0 <= summary["cas"] <= 1.0  # a classifier trained on the synthetic set alone
    assert "train_classifier_synthetic" in summary["step_seconds"] and "synthetic only (CAS)" in proc.stdout
    assert "Debian" in summary["data_source"] or "GENAUG_DATA_DIR" in summary["data_source"]
    assert set(summary["step_seconds"]) >= {"prepare_data", "train_generator", "synthesize", "evaluate",
                                            "train_classifier_real", "train_classifier_augmented", "export_generator",
                                            "export_classifier", "promote_generator", "promote_classifier"}
    assert "test accuracy" in proc.stdout and "real + synthetic" in proc.stdout
    # Generator metrics, on the smoke profile's stand-in network, and labelled as such.
    gm = summary["generator_metrics"]
    assert gm["fid"]["clean"] > 0 and gm["kid"] is not None and 0 <= gm["precision"] <= 1
    assert "stand-in" in gm["network"]["name"] and gm["n_generated"] > 0 and gm["reference_split"] == "train"
    assert "evaluate_generator" in summary["step_seconds"] and "FID[clean]" in proc.stdout


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
    # evaluate's, evaluate-generator's and train-generator's pages
    assert len(pages) == 3 and all("data:image/png" in p.read_text() for p in pages)
    ev = json.loads(Path(summary["artifacts"]["evaluation"]).read_text())
    assert np.array(ev["augmented"]["confusion_matrix"]).sum() == summary["n_test"]


def test_promoted_models_answer_genaug_infer(smoke_run, tmp_path):
    proc, _ = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    promos = summary["promotions"]
    assert promos["generator"]["model"] == "fashion_mnist-dcgan-generator"
    assert promos["classifier"]["model"] == "fashion_mnist-classifier"
    # The first run on a fresh stack has no champion: both clear the smoke floor of 0.2?
    # The classifier does (asserted above); the generator's label fidelity may not, and
    # then the summary must say why.
    for role, p in promos.items():
        assert p["decision"] in ("promoted", "rejected") and p["reason"], p
    assert promos["classifier"]["decision"] == "promoted" and promos["classifier"]["served_version"] == 1
    assert summary["mlflow_parent_run_id"] and summary["mlflow_run_url"].startswith("http://127.0.0.1:")
    # The printed line, pasted as a person would (with this checkout's genaug).
    lines = [l.strip() for l in proc.stdout.splitlines() if "genaug infer" in l]
    assert any("infer classifier" in l for l in lines)
    assert any("infer generator" in l for l in lines) == (promos["generator"]["decision"] == "promoted")
    for line in lines:
        out = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, env=_env())
        assert out.returncode == 0, out.stderr
        if "infer generator" in line:
            png = Path(out.stdout.strip().splitlines()[-1])
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert "example_test_image.png:" in out.stdout
    # The served classifier answers with class names.
    img = tmp_path / "probe.png"
    from PIL import Image

    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(img)
    out = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "infer", "classifier", "--model",
                          "fashion_mnist-classifier", str(img)], capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr
    assert str(img) in out.stdout and any(name in out.stdout for name in ("Bag", "Shirt", "Coat", "Pullover",
                                                                          "Dress", "Trouser", "Sandal",
                                                                          "Sneaker", "Ankle boot", "T-shirt/top"))


def test_the_int8_classifier_is_exported_judged_against_the_fp32_one_and_served_when_it_passes(smoke_run):
    from genaug.export.quantize import int8_census
    from genaug.profiles import PROFILES
    from genaug.services.triton import Triton
    from genaug.serving import scoring
    from genaug.serving.gates import INT8_TOLERANCE

    proc, _ = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    path = summary["onnx_paths"]["classifier_int8"]
    census = int8_census(path)
    assert census["quantize_linear"] > 0 and census["int8_initializers"] > 0 and summary["classifier_int8"]["census"] == census
    assert summary["classifier_int8"]["calibration_images"] == PROFILES["smoke"].classifier.int8_calibration
    fp32, int8 = summary["promotions"]["classifier"], summary["promotions"]["classifier_int8"]
    assert int8["model"] == "fashion_mnist-classifier-int8" and int8["metric"] == "test_accuracy"
    reference = int8["reference"]
    assert reference["model"] == fp32["model"] and reference["promoted"] == (fp32["decision"] == "promoted")
    passes = reference["promoted"] and int8["candidate_score"] >= reference["score"] - INT8_TOLERANCE
    assert int8["decision"] == ("promoted" if passes else "rejected"), int8["reason"]
    if passes:  # it answers over Triton as onnxruntime does on the file
        x = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
        np.testing.assert_allclose(Triton().classify(int8["model"], x), scoring.onnx_logits(Path(path), x), atol=1e-4)
        assert "infer classifier --model fashion_mnist-classifier-int8" in proc.stdout


def test_second_run_with_higher_margin_keeps_champions(smoke_run, tmp_path):
    proc, runs = smoke_run
    first = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    again = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--margin", "0.5",
                            "--runs", str(runs)], cwd=REPO, capture_output=True, text=True, env=_env())
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(Path(again.stdout.strip().splitlines()[-1]).read_text())
    clf = second["promotions"]["classifier"]
    assert clf["decision"] == "rejected" and "does not beat the champion" in clf["reason"]
    # Its INT8 file follows it: refused, whatever its accuracy.
    int8 = second["promotions"]["classifier_int8"]
    assert int8["decision"] == "rejected" and "was not promoted" in int8["reason"]
    assert clf["served_version"] == first["promotions"]["classifier"]["served_version"]
    assert "rejected" in again.stdout
    # Same data version, so prepare_data came from the cache: the first run's prepared copy.
    assert second["data_version"] == first["data_version"] and len(second["data_version"]) == 64  # a registry id
    assert second["artifacts"]["data"] == first["artifacts"]["data"]
    # The KFP run view and MLflow both say that the champion keeps serving.
    (verdict,) = Path(second["run_dir"]).glob("kfp/*/promote-classifier/verdict")
    assert "keep serving the previous version" in verdict.read_text() and "**rejected**" in verdict.read_text()
    import mlflow

    tags = mlflow.MlflowClient().get_run(second["mlflow_parent_run_id"]).data.tags
    champion = first["promotions"]["classifier"]["served_version"]
    assert tags["genaug.promotion.classifier"].startswith(f"rejected; champion v{champion} keeps serving")
    assert tags["genaug.final_status"] == "SUCCEEDED" and tags["genaug.data_version"] == second["data_version"]


def test_bad_generator_fails_before_any_work(tmp_path):
    # Through make: the stdlib check runs before the venv, servers or data are touched.
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", "GEN=nope", f"RUNS={tmp_path / 'runs'}"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown generator 'nope'; choose one of vanilla_gan, dcgan, wgan_gp, ddpm, ddim" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_parameter_stops_the_kfp_run_at_its_first_task(tmp_path, stack):
    # As if submitted from the KFP UI: no local pre-check, only the pipeline's own first task.
    import mlflow

    client = mlflow.MlflowClient(stack.mlflow_uri)
    before = {r.info.run_id for r in _runs_with_final_status(client, "FAILED")}
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
    # The exit handler ran anyway, and MLflow shows the failed run (it had no MLflow run yet).
    assert "Executing task 'record-final-status'" in log.replace("\x1b[96m", "").replace("\x1b[0m", "")
    (failed,) = [r for r in _runs_with_final_status(client, "FAILED") if r.info.run_id not in before]
    assert failed.info.status == "FAILED" and failed.info.run_name.startswith("failed-")
    assert "failed" in failed.data.tags["genaug.error"]


def test_a_missing_dataset_fails_in_seconds_and_the_last_lines_say_why(tmp_path, stack):
    """Offline without CIFAR-10: the data_version step, which looks for the data, runs once
    (no retries with back-off), and the run's last lines name the step, its error and the
    fix, not just KFP's inner task."""
    empty = tmp_path / "data"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--dataset", "cifar10",
                           "--cache", "0", "--runs", str(tmp_path / "runs")], cwd=REPO, capture_output=True,
                          text=True, env=_env(GENAUG_DATA_DIR=str(empty)))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-3:]
    assert "the run failed:" in last[0] and last[1].lstrip().startswith("data_version: failed after"), last
    assert "DataNotFound" in last[1] and f"GENAUG_DATA_DIR={empty}" in last[1], last
    (log,) = (tmp_path / "runs").glob("*/pipeline.log")
    assert last[2].strip() == f"full log: {log}"
    text = log.read_text()
    assert text.count("[genaug] step data_version: started") == 1 and "Retrying in" not in text
    assert "[genaug] step prepare_data: started" not in text
    # The terminal got the steps' lines; the executor inputs stayed in the log.
    assert '"parameterValues"' in text and '"parameterValues"' not in proc.stdout + proc.stderr


def _runs_with_final_status(client, state: str) -> list:
    experiment = client.get_experiment_by_name("genaug")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], f"tags.`genaug.final_status` = '{state}'")


def test_promote_status_lists_the_champions(smoke_run):
    out = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "promote", "--status", "--json"],
                         capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr
    champions = json.loads(out.stdout)["models"]
    assert champions["fashion_mnist-classifier"]["version"] == 1


def test_the_run_folder_has_each_page_as_html_and_the_summary_lists_them(smoke_run):
    proc, _ = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    pages = summary["pages"]  # pipelines.pages.publish_pages, called by write_summary
    assert set(pages) >= {"train-generator/samples", "evaluate/page", "evaluate-generator/page"}
    assert all(p.endswith(".html") and Path(p).read_text().startswith("<!doctype html") for p in pages.values())
    assert f"page train-generator/samples: {pages['train-generator/samples']}" in proc.stdout
    assert 0.0 <= summary["label_fidelity"] <= 1.0 and "synthetic label fidelity" in proc.stdout


def test_a_smoke_run_behaves_as_recorded(smoke_run):
    """The guard of issue 19's refactor: the same summary as the run recorded before it, apart
    from timings, paths, ids and float noise (tests/golden/recorded.py says what and why)."""
    from tests.golden.recorded import SUMMARY, comparable_summary, differences

    proc, _ = smoke_run
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    assert not differences(comparable_summary(summary), json.loads(SUMMARY.read_text()))
