"""DistributedDataParallel on the CPU (gloo, 2 processes under torchrun) against one process
at the same global batch (genaug.train.distributed)."""

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "ddp_worker.py"
# Float tolerance of world size 2 against 1. The gradient all-reduce adds the two ranks' means
# in another order than one process's mean over the whole batch (about 1e-7 relative). Adam
# turns that into a difference of up to lr per step in the few parameters whose gradient is
# zero up to rounding (a conv bias that a GroupNorm cancels), which changes no output; so the
# networks are compared by what they predict, and the loss curve by value.
PREDICTION_ATOL, PREDICTION_RTOL = 1e-4, 1e-3
LOSS_RTOL = 1e-4


def _run(kind: str, out: Path, ranks: int) -> list[dict]:
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] \
        if ranks > 1 else [sys.executable]
    result = subprocess.run([*launcher, str(WORKER), kind, str(out)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(ranks)]


def _assert_close(a: dict, b: dict, **tol) -> float:
    """Assert two state dicts are close; return the largest absolute difference."""
    worst = 0.0
    for key in a:
        torch.testing.assert_close(a[key], b[key], **tol, msg=lambda m, k=key: f"{k}: {m}")
        if a[key].is_floating_point():
            worst = max(worst, float((a[key] - b[key]).abs().max()))
    return worst


def test_diffusion_on_two_ranks_takes_the_steps_of_one_process(tmp_path):
    (single,) = _run("diffusion", tmp_path / "w1", 1)
    first, second = _run("diffusion", tmp_path / "w2", 2)
    for part in ("model", "ema"):
        _assert_close(first[part], second[part], atol=0, rtol=0)  # the ranks are one model, bit for bit
        torch.testing.assert_close(first["predicted"][part], single["predicted"][part],
                                   atol=PREDICTION_ATOL, rtol=PREDICTION_RTOL)
        worst = float((first["predicted"][part] - single["predicted"][part]).abs().max())
        print(f"{part}: largest prediction difference, world size 2 against 1: {worst:.2e}")
    assert first["history"]["step"] == single["history"]["step"]
    torch.testing.assert_close(torch.tensor(first["history"]["loss"]), torch.tensor(single["history"]["loss"]),
                               atol=0, rtol=LOSS_RTOL)
