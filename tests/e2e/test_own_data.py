"""End to end: a folder of the user's images, uploaded to an "incoming" S3 prefix that each
run snapshots first (DATA_SOURCE), through the real pipeline to a served classifier."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genaug.data import snapshots
from genaug.services.names import DATASETS_BUCKET
from genaug.services.store import Store, promotion_store
from genaug.serving.repository import Repository
from tests.conftest import REPO
from tests.images import CLASSES, make_folder

pytestmark = pytest.mark.e2e


def _run(runs, *params):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--runs", str(runs),
                           *params], cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(open(proc.stdout.strip().splitlines()[-1]).read())


def _upload(folder, prefix):
    for path in sorted(folder.rglob("*.*")):
        Store().put_file(DATASETS_BUCKET, f"{prefix}{path.relative_to(folder).as_posix()}", path)


def _assert_served_shapes(run: dict, side: int):
    """Both exported models agree with PyTorch and carry [3, side, side] (the folder mixes grey
    and colour images, so it is RGB)."""
    import onnxruntime as ort

    assert run["onnx_max_abs_diff"]["generator"] <= 1.0 and run["onnx_max_abs_diff"]["classifier"] < 1e-3
    for kind in ("classifier", "generator"):
        session = ort.InferenceSession(run["onnx_paths"][kind])
        shape = (session.get_inputs()[0] if kind == "classifier" else session.get_outputs()[0]).shape
        assert list(shape[1:]) == [3, side, side], (kind, shape)


def _assert_serves_64px_images(run: dict, name: str, generator: str, tmp_path):
    """The run's generator is promoted under the 64 px name and its served model draws
    64 px tiles that are not blank."""
    _assert_served_shapes(run, side=64)
    promoted = run["promotions"]["generator"]
    assert promoted["model"] == f"{name}-64px-{generator}-generator", promoted
    assert promoted["decision"] == "promoted", promoted
    tiles = tmp_path / f"{generator}.png"
    out = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "infer", "generator", "--model",
                          promoted["model"], "--labels", "0,1,2", "--out", str(tiles)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    picture = np.asarray(Image.open(tiles))
    assert picture.shape[0] >= 64 and picture.std() > 0, picture.shape


def test_scheduled_runs_snapshot_the_incoming_prefix_train_and_serve_with_class_names(tmp_path, stack, request):
    name = "parts" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    prefix = f"incoming/{name}/"
    folder = make_folder(tmp_path / "parts", per_class=60, salt=7, learnable=True)
    _upload(folder, prefix)
    source = f"s3://{DATASETS_BUCKET}/{prefix}"
    # At the side derived from the images (40x30, so 32 under smoke's cap), served at that shape.
    args = ("--dataset", name, "--generator", "dcgan", "--data_source", source)
    runs = tmp_path / "runs"

    first = _run(runs, *args)  # the run's first steps snapshot the prefix: version 1
    store = Store()
    v1 = snapshots.resolve_version(name, "latest", store)
    assert first["dataset"] == name and first["data_version"] == v1
    _assert_served_shapes(first, side=32)
    assert first["n_train_real"] == sum(snapshots.show(name, v1, store)["counts"]["train"].values())
    # MLflow lineage: the run's input is the dataset, its digest the version, its source the manifest.
    import mlflow

    (used,) = mlflow.get_run(first["mlflow_parent_run_id"]).inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == (name, v1[:36]) and v1 in used.dataset.source
    # The served classifier: its version's metadata names the data, its labels file the classes.
    served = first["promotions"]["classifier"]
    assert served["decision"] == "promoted", served
    meta = Repository(promotion_store()).metadata(served["model"], served["served_version"])
    assert (meta["dataset"], meta["data_version"]) == (name, v1)
    image = tmp_path / "washer.png"
    Image.fromarray(np.full((32, 32, 3), 220, np.uint8)).save(image)  # in the washer's band
    out = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "infer", "classifier", "--model",
                          served["model"], str(image)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert all(c in out.stdout for c in CLASSES), out.stdout  # the top 3 of 3 classes, by name

    # New uploads: a new version, every old image in its old split, prepare_data run again.
    make_folder(folder, per_class=12, start=60, salt=7, learnable=True)
    _upload(folder, prefix)
    second = _run(runs, *args)
    v2 = second["data_version"]
    assert v2 != v1 and v2 == snapshots.resolve_version(name, "latest", store)
    old, new = (snapshots.load_manifest(name, v, store)[0]["entries"] for v in (v1, v2))
    split = {e["sha256"]: e["split"] for e in new}
    assert len(new) == len(old) + 36 and all(split[e["sha256"]] == e["split"] for e in old)
    assert second["artifacts"]["data"] != first["artifacts"]["data"]

    # Nothing new: the same version, and prepare_data's output reused from the cache.
    third = _run(runs, *args)
    assert third["data_version"] == v2 and third["artifacts"]["data"] == second["artifacts"]["data"]


def test_an_unknown_dataset_fails_in_the_first_steps_naming_the_known_ones(tmp_path, stack):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--runs",
                           str(tmp_path / "runs"), "--dataset", "no_such_parts"], cwd=REPO, capture_output=True,
                          text=True, env=env)
    assert proc.returncode != 0
    assert "no dataset 'no_such_parts'" in proc.stderr + proc.stdout


def test_a_rare_class_is_topped_up_to_the_others_and_the_gate_compares_macro_f1(tmp_path, stack, request):
    """One class with 10x fewer images: SYNTH=balance gives it the synthetic images (the
    others none), so real + synthetic counts are equal; GATE_METRIC=macro_f1 is what the
    classifier's promotion compares and records. At RESOLUTION=64 with dcgan: this is also
    dcgan's 64 px run (one run fewer than a test each)."""
    from genaug.data import imageset

    name = "rare" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    folder = tmp_path / name  # given splits, so the rare class has images in each
    make_folder(folder / "train", per_class=60, salt=11, learnable=True)
    for path in sorted((folder / "train" / CLASSES[2]).iterdir())[6:]:  # 6 of the rare class's 60 stay
        path.unlink()
    make_folder(folder / "val", per_class=6, start=60, salt=11, learnable=True)
    make_folder(folder / "test", per_class=10, start=66, salt=11, learnable=True)
    run = _run(tmp_path / "runs", "--dataset", name, "--data_source", str(folder), "--synth", "balance",
               "--gate_metric", "macro_f1", "--floor", "0", "--generator", "dcgan", "--resolution", "64")
    real, _ = imageset.load(run["artifacts"]["data"], "prepared dataset")
    synthetic, meta = imageset.load(run["artifacts"]["synthetic"], "synthetic dataset")
    real_counts = np.bincount(real["y_train"], minlength=3)
    assert real_counts.tolist() == [60, 60, 6]  # the rare class: 10x fewer
    together = real_counts + np.bincount(synthetic["y"], minlength=3)
    assert (together == real_counts.max()).all(), (real_counts, together)
    assert run["config"]["synthesis"]["mode"] == "balance" and run["n_train_synthetic"] == int(together.sum() -
                                                                                              real_counts.sum())
    assert meta["n_per_class"] == {c: int(n) for c, n in zip(CLASSES, together - real_counts)}, meta
    assert set(run["f1_per_class"]["augmented"]) == set(CLASSES)
    recall = run["recall_per_class"]["augmented"]  # every class is in the test split: the mean is balanced acc.
    assert run["balanced_accuracy_augmented"] == pytest.approx(np.mean([recall[c] for c in CLASSES]))
    decision = run["promotions"]["classifier"]
    assert decision["metric"] == "test_macro_f1" and "test_macro_f1" in decision["reason"], decision
    _assert_serves_64px_images(run, name, "dcgan", tmp_path)


def test_wgan_gp_and_ddim_train_export_and_serve_at_64_px_on_a_folder(tmp_path, stack, request):
    """RESOLUTION=64 on a test-made folder (40x30 images: a side asked for, not derived): the
    critic's third downsampling stage, the UNet's extra level and the CNN's strided stem,
    each exported with parity and served under the 64 px name (dcgan's 64 px run is the rare
    class test's). The two runs share one data version, so the second takes the prepared data
    and the real-data classifier from cache."""
    name = "px" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    folder = make_folder(tmp_path / name, per_class=40, salt=13, learnable=True)
    runs = tmp_path / "runs"
    for generator in ("wgan_gp", "ddim"):
        run = _run(runs, "--dataset", name, "--data_source", str(folder), "--generator", generator,
                   "--resolution", "64", "--floor", "0")
        _assert_serves_64px_images(run, name, generator, tmp_path)
