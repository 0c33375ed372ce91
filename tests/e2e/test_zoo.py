"""Every generator through the real pipeline (KFP local runner, S3, MLflow, Triton): trained,
synthesized from, exported with parity, promoted and served; DDIM also on CIFAR-10 fixtures.

The dcgan run lives in test_pipeline_local.py, which must run first (it checks the first
versions served on a fresh stack); pytest runs files in name order. FLOOR=0 so that every
generator is promoted and its served model can be asked for images, whatever its
smoke-sized quality.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.formats import write_cifar10
from tests.smoke_fixture import REAL_DATA, pipeline_env as _env

pytestmark = pytest.mark.e2e

# ddim before ddpm: ddpm then reuses the diffusion model that ddim's run trained.
GENERATORS = ("vanilla_gan", "ddim", "ddpm")
# wgan_gp's run is at 64 px in test_own_data.py, on a folder of images, as are dcgan's and
# ddim's second runs; at 28 px its layers are the unit tests' (test_generators.py).


def _pipeline(runs: Path, *args: str, env=None) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--floor", "0",
                           "--runs", str(runs), *args], cwd=REPO, capture_output=True, text=True,
                          env=env or _env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    return {"summary": summary, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, stack):
    if not REAL_DATA:
        pytest.skip("real Fashion-MNIST is missing: run `make test` as root or set GENAUG_DATA_DIR")
    runs = tmp_path_factory.mktemp("zoo")
    return {g: _pipeline(runs, "--generator", g) for g in GENERATORS}


def _served_images(model: str, labels: str, tmp_path: Path) -> np.ndarray:
    from PIL import Image

    out = tmp_path / f"{model}.png"
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "genaug"), "infer", "generator", "--model", model,
                           "--labels", labels, "--out", str(out)], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    return np.asarray(Image.open(out))


@pytest.mark.parametrize("generator", GENERATORS)
def test_each_generator_is_trained_exported_promoted_and_served(zoo, generator, tmp_path):
    s = zoo[generator]["summary"]
    assert s["generator"] == generator and s["n_train_synthetic"] > 0
    assert s["onnx_max_abs_diff"]["generator"] <= 1.0  # uint8 levels, PyTorch vs onnxruntime
    promo = s["promotions"]["generator"]
    assert promo["model"] == f"fashion_mnist-{generator}-generator"
    assert promo["decision"] == "promoted" and promo["served_version"] >= 1, promo
    picture = _served_images(promo["model"], "0,1,2,3,4,5,6,7,8,9", tmp_path)
    assert picture.ndim == 2 and picture.std() > 0  # ten tiles, not a blank canvas
    import onnxruntime as ort

    images = ort.InferenceSession(s["onnx_paths"]["generator"]).get_outputs()[0]
    assert list(images.shape[1:]) == [1, 28, 28] and picture.shape[0] > 28, (images.shape, picture.shape)


def test_diffusion_serves_its_whole_sampler_in_one_call(zoo):
    """The served diffusion model takes x_T plus one noise image per step: [K+1, C, H, W]."""
    import onnxruntime as ort

    from genaug.profiles import PROFILES

    k = PROFILES["smoke"].sampler.steps
    for generator in ("ddim", "ddpm"):
        path = zoo[generator]["summary"]["onnx_paths"]["generator"]
        noise = ort.InferenceSession(path).get_inputs()[1]
        assert list(noise.shape[1:]) == [k + 1, 1, 28, 28], (generator, noise.shape)


def test_ddpm_reuses_the_model_that_ddim_trained(zoo):
    """One diffusion model, two samplers: the checkpoint is keyed by the family, so the
    ddpm run finds ddim's finished training and only samples differently."""
    from genaug.profiles import PROFILES

    steps = PROFILES["smoke"].diffusion.steps
    assert zoo["ddim"]["summary"]["generator_resumed_from_step"] is None
    assert zoo["ddpm"]["summary"]["generator_resumed_from_step"] == steps
    assert f"resuming from step {steps}" in zoo["ddpm"]["stdout"] + zoo["ddpm"]["stderr"]
    assert zoo["ddpm"]["summary"]["generator_sampling"]["sampler"]["kind"] == "ddpm"
    assert zoo["ddim"]["summary"]["generator_sampling"]["sampler"]["kind"] == "ddim"


def test_ddim_on_cifar10_fixtures(stack, tmp_path):
    """CIFAR-10 in its real pickled format, small: the pipeline runs end to end at 3x32x32."""
    data = tmp_path / "data"
    md5 = write_cifar10(data, per_batch=60, n_test=100)
    (tmp_path / "md5.json").write_text(json.dumps(md5))
    site = REPO / "tests" / "e2e" / "cifar_fixture_site"
    env = _env(GENAUG_DATA_DIR=str(data), GENAUG_TEST_CIFAR_MD5=str(tmp_path / "md5.json"))
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env['PYTHONPATH']}"
    run = _pipeline(tmp_path / "runs", "--dataset", "cifar10", "--generator", "ddim", env=env)
    s = run["summary"]
    assert (s["dataset"], s["generator"]) == ("cifar10", "ddim")
    assert "GENAUG_DATA_DIR" in s["data_source"]
    assert s["onnx_max_abs_diff"]["generator"] <= 1.0
    assert s["promotions"]["generator"]["model"] == "cifar10-ddim-generator"
    picture = _served_images("cifar10-ddim-generator", "0,1,2", tmp_path)
    assert picture.ndim == 3 and picture.shape[-1] == 3  # RGB tiles
