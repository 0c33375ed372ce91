"""A 2-process (gloo, torchrun) diffusion run killed with SIGKILL, every process of it at
once as when its node dies, resumes from rank 0's checkpoint and ends bit-identical to a
2-process run that was never interrupted."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from genaug.services.store import Store
from genaug.train.checkpoints import Checkpointer
from tests import procs
from tests.conftest import REPO

WORKER = REPO / "tests" / "ddp_worker.py"


def _start(out: Path, key: str) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1",
           "GENAUG_TEST_CHECKPOINT": key}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(WORKER), "diffusion", str(out)], env=env, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)




def _finish(out: Path, key: str) -> tuple[dict, str]:
    proc = _start(out, key)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return torch.load(out / "rank0.pt", weights_only=False), err


def test_a_killed_two_process_run_resumes_bit_identical(stack, tmp_path):
    whole, _ = _finish(tmp_path / "whole", "ddp-resume-whole")

    store, key = Store(), "ddp-resume-killed"
    ckpt = Checkpointer(store, key, 2)
    killed = tmp_path / "killed"
    proc = _start(killed, key)
    try:
        procs.await_checkpoint(proc, store, ckpt)
    finally:
        for pid in [proc.pid, *procs.mentioning(str(killed))]:  # the node dies: every process at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    assert not procs.mentioning(str(killed)) and not (killed / "rank0.pt").exists()
    killed_at = ckpt.load()["step"]
    assert 0 < killed_at < 20

    resumed, err = _finish(killed, key)
    assert f"resuming from step" in err
    for part in ("model", "ema"):
        for name, tensor in whole[part].items():
            assert torch.equal(tensor, resumed[part][name]), f"{part}.{name} differs after resume"
    assert whole["history"]["loss"] == resumed["history"]["loss"]
