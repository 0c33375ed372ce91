"""One smoke pipeline run per test session, shared by every test that needs its summary or
the models it promoted: the end-to-end pipeline tests and the notebooks' tests.

``smoke_run`` runs ``python -m pipelines.run_local --profile smoke`` once, on the session's
stack (tests/stack_fixture.py), as ``make pipeline PROFILE=smoke`` would; a second run costs
about a minute and a half on 2 cores, so no module starts its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genaug.data.sources import DEBIAN_FASHION_MNIST

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = DEBIAN_FASHION_MNIST.is_dir() or os.environ.get("GENAUG_DATA_DIR")


def pipeline_env(**extra) -> dict[str, str]:
    """This process's environment (the stack's endpoints included), with the checkout importable."""
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}", **extra}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, stack):
    """(the finished run_local process, its runs folder); the process also carries
    ``bystander``: a temporary folder another program made in /tmp during the run."""
    if not REAL_DATA:
        pytest.skip("real Fashion-MNIST is missing: run `make test` as root (it installs "
                    "dataset-fashion-mnist) or set GENAUG_DATA_DIR")
    runs = tmp_path_factory.mktemp("runs")
    # Another program makes a temporary folder in /tmp while the run goes on; it must survive.
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    bystander = subprocess.Popen([sys.executable, "-c", "import tempfile, time; time.sleep(8); "
                                  "print(tempfile.mkdtemp(dir='/tmp'), flush=True); time.sleep(3600)"],
                                 stdout=subprocess.PIPE, text=True, env=env)
    try:
        proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--profile", "smoke", "--runs",
                               str(runs)], cwd=REPO, capture_output=True, text=True, env=pipeline_env())
        proc.bystander = Path(bystander.stdout.readline().strip())
    finally:
        bystander.kill()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc, runs


def smoke_summary(smoke_run) -> dict:
    """The run's summary.json, whose path is the last line the run printed."""
    proc, _ = smoke_run
    return json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
