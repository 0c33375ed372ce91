"""The notebooks in notebooks/ run top to bottom on a real ipykernel kernel of this test's own
interpreter, against the session's stack and the models its smoke pipeline run promoted.

Each notebook gets the stack's endpoints the way a user's Jupyter would: from its
environment (the session stack's stack.env), without the admin keys that only promotion
holds. A test may override the cell tagged "parameters" by a cell injected after it (the
convention papermill follows), e.g. a work folder in tmp_path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from genaug.params import resolve
from genaug.services.endpoints import read_env_file
from tests.smoke_fixture import REPO, pipeline_env, smoke_summary

pytestmark = pytest.mark.e2e

NOTEBOOKS = REPO / "notebooks"
KERNEL = "genaug-test"
# A hang guard per cell, not a performance assertion.
CELL_TIMEOUT_S = 600


def test_the_notebooks_are_stored_without_outputs_or_execution_counts():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["classifier_inference.ipynb", "generator_inference.ipynb", "gpu_check.ipynb",
                     "train_generator.ipynb"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, \
                    f"{name} cell {i} holds outputs: clear them before committing (Jupyter: Clear All Outputs)"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name}: one cell tagged 'parameters', the one a test overrides"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """Only a kernel of this interpreter (python -m ipykernel_launcher): a fresh clone's venv
    has no kernelspec installed, and a user-level 'python3' may be another Python."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    (folder / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "genaug tests", "language": "python"}))
    return KernelSpecManager(kernel_dirs=[str(folder)])


@pytest.fixture(scope="module")
def kernel_env(stack) -> dict[str, str]:
    """The session stack's endpoints, as a user's environment holds them; no admin keys."""
    admin = read_env_file(stack.state_dir / "admin.env")
    return {**{k: v for k, v in pipeline_env().items() if k not in admin}, **stack.env}


def run_notebook(name: str, cwd: Path, specs: KernelSpecManager, env: dict, **parameters) -> nbformat.NotebookNode:
    """Execute notebooks/<name> in ``cwd`` with ``parameters`` overriding its parameters cell;
    return it with its outputs (an error in any cell raises nbclient's CellExecutionError)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters:
        (at,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
            "\n".join(f"{key} = {value!r}" for key, value in parameters.items()),
            metadata={"tags": ["injected-parameters"]}))
    client = NotebookClient(nb, km=KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs),
                            timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


def texts(nb) -> str:
    """Everything the cells printed."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def pictures(nb) -> int:
    """How many PNG images the cells displayed."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.outputs)


@pytest.fixture(scope="module")
def served_generator(smoke_run) -> str:
    """The smoke run's generator, served. At smoke its label fidelity (about 0.1) stays under
    the run's floor of 0.2 and the run rejects it (test_pipeline_local checks that), so it is
    promoted here through the same promote step, at floor 0, from the run's own files."""
    from genaug.steps.promote import promote

    summary = smoke_summary(smoke_run)
    run = summary["promotions"]["generator"]
    if run["decision"] == "promoted":
        return run["model"]
    art = summary["artifacts"]
    decided = promote("generator", art["data"], summary["onnx_paths"]["generator"],
                      json.loads(Path(art["generator_export"]).read_text()),
                      classifier_real_path=art["classifier_real"], promotion={"floor": 0.0, "margin": 0.0})
    assert decided["generator"]["served_version"], decided
    return decided["generator"]["model"]


def test_train_generator_trains_at_smoke_and_shows_its_samples_and_metrics(kernel_specs, kernel_env, tmp_path):
    # Seed 1: the smoke run trained seed 0 on the same data, whose checkpoint would be reused.
    work = tmp_path / "work"
    nb = run_notebook("train_generator.ipynb", tmp_path, kernel_specs, kernel_env, PROFILE="smoke", SEED=1,
                      WORK_DIR=str(work))
    out = texts(nb)
    steps = resolve({"profile": "smoke", "generator": "dcgan"}).gan.steps
    assert f"dcgan trained {steps} steps in " in out and "resumed" not in out, out
    assert pictures(nb) == 1 and (work / "samples.png").read_bytes()[:4] == b"\x89PNG"
    measured = json.loads((work / "metrics.json").read_text())
    assert measured["generator_seed"] == 1 and measured["fid"]["clean"] > 0
    assert f"{'fid':>16}: {measured['fid']}" in out and "stand-in" in out


def test_generator_inference_draws_the_chosen_classes_from_the_served_generator(kernel_specs, kernel_env, tmp_path,
                                                                               served_generator):
    nb = run_notebook("generator_inference.ipynb", tmp_path, kernel_specs, kernel_env,
                      CLASSES=["Sneaker", "Bag"], PER_CLASS=3)
    out = texts(nb)
    assert f"6 images from {served_generator}, labels [7, 7, 7, 8, 8, 8]: generated.png" in out, out
    assert pictures(nb) == 1 and (tmp_path / "generated.png").read_bytes()[:4] == b"\x89PNG"
    # A class the served model does not have: the error names it and the choices.
    with pytest.raises(Exception, match="unknown class 'Sandals'; choose one of T-shirt/top, Trouser"):
        run_notebook("generator_inference.ipynb", tmp_path, kernel_specs, kernel_env, CLASSES=["Sandals"])


def test_classifier_inference_shows_top_classes_and_a_confusion_matrix(kernel_specs, kernel_env, tmp_path,
                                                                       smoke_run):
    model = smoke_summary(smoke_run)["promotions"]["classifier"]["model"]
    nb = run_notebook("classifier_inference.ipynb", tmp_path, kernel_specs, kernel_env, TEST_IMAGES=120, SHOW=4)
    out = texts(nb)
    rows = [line for line in out.splitlines() if " -> " in line]
    assert len(rows) == 4 and all(line.count(", ") == 2 for line in rows), out
    assert "on 120 test images" in out and pictures(nb) == 2
    for picture in ("top-classes", "confusion"):
        assert (tmp_path / f"{model}-{picture}.png").read_bytes()[:4] == b"\x89PNG"
    (accuracy,) = re.findall(r"^accuracy ([0-9.]+), macro-F1 ", out, re.MULTILINE)
    assert 0.2 < float(accuracy) <= 1.0  # the served smoke classifier is well above 10% chance


def test_gpu_check_names_the_device_and_measures_bf16_throughput(kernel_specs, kernel_env, tmp_path):
    nb = run_notebook("gpu_check.ipynb", tmp_path, kernel_specs, kernel_env, MATMUL_N=256, CONV_BATCH=4, CALLS=3)
    out = texts(nb)
    import torch

    if not torch.cuda.is_available():
        assert "no GPU: running on the CPU" in out, out
    for op in ("matmul [256, 256] @ [256, 256] bfloat16 on ", "conv2d [4, 128, 32, 32] * 3x3 bfloat16 on "):
        (line,) = [line for line in out.splitlines() if line.startswith(op)]
        assert " TFLOP/s (3 calls in " in line, out
