"""End to end: a folder of the user's images, snapshotted, through the real pipeline."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genaug.data import snapshots
from genaug.services.store import Store
from tests.conftest import REPO
from tests.images import CLASSES, make_folder

pytestmark = pytest.mark.e2e


def _run(runs, *params):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    return subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--runs", str(runs),
                           *params], cwd=REPO, capture_output=True, text=True, env=env)


def test_a_snapshot_trains_serves_and_answers_with_its_class_names(tmp_path, stack):
    folder = make_folder(tmp_path / "parts", per_class=60)
    version = snapshots.snapshot("parts", str(folder), Store())["version"]
    proc = _run(tmp_path / "runs", "--dataset", "parts", "--generator", "dcgan")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    summary = json.loads(open(proc.stdout.strip().splitlines()[-1]).read())
    assert summary["dataset"] == "parts" and summary["data_version"] == version
    assert summary["config"]["data"]["dataset"] == "parts"
    assert summary["n_train_real"] == sum(snapshots.show("parts", version, Store())["counts"]["train"].values())
    served = summary["promotions"]["classifier"]
    if served.get("served_version"):  # answers with the snapshot's class names
        image = tmp_path / "one.png"
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(image)
        out = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "infer", "classifier", "--model",
                              served["model"], str(image)], capture_output=True, text=True)
        assert out.returncode == 0 and any(c in out.stdout for c in CLASSES), out.stdout + out.stderr


def test_an_unknown_dataset_fails_in_the_first_steps_naming_the_known_ones(tmp_path, stack):
    proc = _run(tmp_path / "runs", "--dataset", "no_such_parts")
    assert proc.returncode != 0
    assert "no dataset 'no_such_parts'" in proc.stderr + proc.stdout
