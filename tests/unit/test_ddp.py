"""DistributedDataParallel on the CPU (gloo, 2 processes under torchrun) against one process
at the same global batch (genaug.train.distributed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests import procs
from tests.ddp_worker import STEPS

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "ddp_worker.py"
# Float tolerance of world size 2 against 1. The gradient all-reduce adds the two ranks' means
# in another order than one process's mean over the whole batch (about 1e-7 relative). Adam
# turns that into a difference of up to lr per step in the few parameters whose gradient is
# zero up to rounding (a conv bias that a GroupNorm cancels), which changes no output; so the
# networks are compared by what they predict, and the loss curve by value.
PREDICTION_ATOL, PREDICTION_RTOL = 1e-4, 1e-3
LOSS_RTOL = 1e-4


def _run(kind: str, out: Path, ranks: int, **env_vars: str) -> list[dict]:
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1",
           "GENAUG_DDP_CHECK": "1", **env_vars}  # every step: the ranks compare their weights
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


@pytest.mark.parametrize("kind", ["dcgan", "wgan_gp", "classifier"])
def test_with_batchnorm_the_ranks_stay_one_model_after_every_step(tmp_path, kind):
    """With BatchNorm as it is (per-rank statistics on gloo): the ranks compare their weights
    after every step (GENAUG_DDP_CHECK=1 makes a difference fail the run) and end equal."""
    first, second = _run(kind, tmp_path / "w2", 2)
    for part in [k for k in first if k not in ("history", "predicted")]:
        _assert_close(first[part], second[part], atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["dcgan", "wgan_gp", "classifier"])
def test_without_batchnorm_two_ranks_predict_as_one_process(tmp_path, kind):
    """BatchNorm replaced by the identity (GENAUG_TEST_NO_BN=1), the one part that depends on
    the rows a rank sees: world size 2 then takes the steps of world size 1."""
    (single,) = _run(kind, tmp_path / "w1", 1, GENAUG_TEST_NO_BN="1")
    first, _ = _run(kind, tmp_path / "w2", 2, GENAUG_TEST_NO_BN="1")
    for part, value in single["predicted"].items():
        torch.testing.assert_close(first["predicted"][part], value, atol=PREDICTION_ATOL, rtol=PREDICTION_RTOL)




def test_early_stopping_measures_on_rank_0_and_every_rank_stops_at_its_step(tmp_path, monkeypatch, capfd):
    """Rank 0 alone measures FID; both ranks take its values (World.from_main), so they stop at
    the same step, keep the same generator and end; and when the measurement fails on rank 0,
    rank 1 fails too instead of waiting for it."""
    first, second = _run("gan_early_stop", tmp_path / "w2", 2)
    ours, theirs = ({k: v for k, v in r["early_stop"].items() if k != "seconds"} for r in (first, second))
    assert ours == theirs and ours["stopped_at"] is not None and ours["stopped_at"] < STEPS  # rank 1 measured nothing
    assert first["history"]["step"][-1] == ours["stopped_at"]
    _assert_close(first["G"], second["G"], atol=0, rtol=0)

    from genaug.steps import gpus

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    monkeypatch.setenv("GENAUG_TEST_MEASURE_FAILS", "1")
    out = tmp_path / "fails"
    out.mkdir()
    with pytest.raises(gpus.RankFailed) as caught:  # not a hang: rank 1 learns of rank 0's failure
        gpus.run_ranks([str(WORKER), "gan_early_stop", str(out)], 2, "the test run")
    assert re.search(r"rank\s*:\s*0 .*rank\s*:\s*1 |rank\s*:\s*1 .*rank\s*:\s*0 ", str(caught.value), re.S)
    err = capfd.readouterr().err  # each rank's own error: rank 0's, and rank 1's word that rank 0 failed
    assert "[rank0]: ZeroDivisionError" in err and "[rank1]: genaug.train.distributed.MainRankFailed: rank 0" in err
    assert not procs.mentioning(str(out)), "a rank outlived the failed run"


def test_a_rank_that_dies_fails_the_run_naming_it_and_leaves_no_process(tmp_path, monkeypatch):
    from genaug.steps import gpus

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    out = tmp_path / "dies"
    out.mkdir()
    # Hang guard only: torchrun stops rank 0 as soon as rank 1 exits.
    with pytest.raises(gpus.RankFailed) as caught:
        gpus.run_ranks([str(WORKER), "rank_dies", str(out)], 2, "the test run")
    message = str(caught.value)
    assert "the test run failed on 2 processes" in message
    assert re.search(r"Root Cause.*rank\s*:\s*1 .*exitcode\s*:\s*3 ", message, re.S), message
    assert not procs.mentioning(str(out)), "a rank outlived the failed run"


def test_a_step_with_two_processes_trains_on_both_and_rank_0_writes_the_outputs(tiny_fmnist, tmp_path, monkeypatch,
                                                                              capfd):
    from genaug import checkpoint
    from genaug.steps import get
    from tests.configs import smoke

    data, out = str(tmp_path / "prepared"), str(tmp_path / "clf")
    get("prepare_data")(data, data=smoke().data)
    monkeypatch.setenv("GENAUG_NPROC", "2")
    monkeypatch.setenv("GENAUG_DDP_CHECK", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    meta = get("train_classifier")(data, out, classifier=smoke().classifier, seed=0)
    assert "train_classifier: 2 processes (torchrun)" in capfd.readouterr().err
    _, saved = checkpoint.load(out, "classifier")
    assert saved["meta"]["val_accuracy"] == meta["val_accuracy"] and meta["epochs_run"] >= 1


@pytest.mark.parametrize("kind", ["diffusion", "classifier"])
def test_batch_per_gpu_accumulates_the_step_of_the_whole_share(tmp_path, kind):
    """GENAUG_BATCH_PER_GPU=4 on 2 ranks: each rank's 8 rows in two pieces of 4, their gradients
    summed before the one all-reduce; the step is still one process's (no BatchNorm, whose
    statistics would be the pieces')."""
    (single,) = _run(kind, tmp_path / "w1", 1, GENAUG_TEST_NO_BN="1")
    first, _ = _run(kind, tmp_path / "w2", 2, GENAUG_TEST_NO_BN="1", GENAUG_BATCH_PER_GPU="4")
    for part, value in single["predicted"].items():
        torch.testing.assert_close(first["predicted"][part], value, atol=PREDICTION_ATOL, rtol=PREDICTION_RTOL)
    loss = "loss" if kind == "diffusion" else "train_loss"  # each piece's loss weighted by its share
    torch.testing.assert_close(torch.tensor(first["history"][loss]), torch.tensor(single["history"][loss]),
                               atol=0, rtol=LOSS_RTOL)
