"""Resume after kill: SIGKILL a training process mid-run, rerun it, and get the same model
bit for bit as a run that was never interrupted."""

import os
import signal
import subprocess
import sys

import pytest
import torch

from genaug.services.store import Store
from genaug.train.checkpoints import Checkpointer
from tests import procs
from tests.conftest import REPO

WORKER = [sys.executable, "-m", "tests.integration.resume_worker"]


def _run(kind, key, out):
    return subprocess.run([*WORKER, kind, key, str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("kind", ["gan", "diffusion"])
def test_killed_run_resumes_bit_identical(stack, tmp_path, kind):
    whole = _run(kind, f"resume-test-{kind}-whole", tmp_path / "whole.pt")
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert "resuming" not in whole.stderr

    store, key = Store(), f"resume-test-{kind}-killed"
    ckpt = Checkpointer(store, key, 1)
    proc = subprocess.Popen([*WORKER, kind, key, str(tmp_path / "killed.pt")], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        procs.await_checkpoint(proc, store, ckpt)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "killed.pt").exists()
    killed_at = ckpt.load()["step"]
    assert 0 < killed_at < 60 * (5 if kind == "gan" else 1)  # critic steps for the GAN

    resumed = _run(kind, key, tmp_path / "killed.pt")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from step" in resumed.stderr  # the log says where it picked up

    a = torch.load(tmp_path / "whole.pt", weights_only=True)
    b = torch.load(tmp_path / "killed.pt", weights_only=True)
    parts = ("G", "D") if kind == "gan" else ("model", "ema")
    for part in parts:
        for name, tensor in a[part].items():
            assert torch.equal(tensor, b[part][name]), f"{part}.{name} differs after resume"
    assert a["history"][a["loss_key"]] == b["history"][b["loss_key"]]
